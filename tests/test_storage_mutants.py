"""Storage behaviours that mutation testing (scripts/mutation.sh) found untested.

A failed clean-up must not hide why the write failed, and its warning must name the temporary a
person has to delete by hand; with no AIRFLOW_HOME set, images land under ``~/airflow``.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_segmind import storage
from airflow_provider_segmind.storage import default_output_dir, to_storage_path, write_atomically

if TYPE_CHECKING:
    from pathlib import Path


class BrokenDownload(Exception):
    pass


class Warnings:
    """Stands in for the module's logger (Airflow's log set-up decides what caplog sees)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, msg: str, *args: Any) -> None:
        self.messages.append(msg % args)


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> Warnings:
    recorder = Warnings()
    monkeypatch.setattr(storage, "log", recorder)
    return recorder


def broken_write(fileobj: Any) -> None:
    fileobj.write(b"\x89PNG\r\n\x1a\nhalf an image")
    raise BrokenDownload("connection lost mid-image")


def test_local_temporary_that_cannot_be_deleted_is_named_in_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warnings: Warnings
) -> None:
    target = to_storage_path(tmp_path / "out") / "img.png"

    def refuse(path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "remove", refuse)
    with pytest.raises(BrokenDownload, match="connection lost"):
        write_atomically(target, broken_write)
    assert not target.exists()
    (leftover,) = os.listdir(tmp_path / "out")
    temporary = f"{tmp_path}/out/{leftover}"
    assert re.fullmatch(r"\.img\.png\.[0-9a-f]{32}\.partial", leftover)
    assert warnings.messages == [
        f"Could not delete the temporary file {temporary}: [Errno 13] Permission denied: '{temporary}'"
    ]


@pytest.mark.parametrize("scheme", ["memory", "s3"])
def test_object_temporary_that_cannot_be_deleted_is_named_in_a_warning(
    scheme: str, request: pytest.FixtureRequest, warnings: Warnings
) -> None:
    """``memory`` names its protocol as a string, s3fs as a tuple (``s3``, ``s3a``): both read ``s3://``."""
    if scheme == "memory":
        directory = to_storage_path(f"memory://storage-mutants/{uuid.uuid4().hex}")
    else:
        directory = to_storage_path(request.getfixturevalue("s3_bucket"))
    target = directory / "img.png"
    fs = target.fs
    removed: list[str] = []

    def refuse(path: str) -> None:
        removed.append(path)
        raise OSError("storage refused the delete")

    request.getfixturevalue("monkeypatch").setattr(fs, "rm_file", refuse)
    with pytest.raises(BrokenDownload, match="connection lost"):
        write_atomically(target, broken_write)
    assert not target.exists()
    (temporary,) = removed
    assert re.fullmatch(re.escape(f"{directory.path}/.img.png.") + r"[0-9a-f]{32}\.partial", temporary)
    assert warnings.messages == [
        f"Could not delete the temporary object {scheme}://{temporary}: storage refused the delete"
    ]


def test_default_output_dir_without_airflow_home_is_under_home_airflow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_output_dir("my dag", "run/1") == f"{tmp_path}/airflow/segmind_output/my_dag/run_1"


def test_a_scheme_a_provider_registers_keeps_the_provider_filesystem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fsspec's own filesystem is attached only for schemes no provider serves: an ``s3://`` path
    must keep the Amazon provider's filesystem (and its ``aws_default`` credentials). Here a stand-in
    provider serves ``memory://``."""
    from airflow.sdk.io import fs as airflow_fs
    from airflow.sdk.io import store
    from fsspec.implementations.memory import MemoryFileSystem

    provider_fs = MemoryFileSystem(skip_instance_cache=True)
    asked: list[str | None] = []

    def get_fs(conn_id: str | None, storage_options: Any = None) -> MemoryFileSystem:
        asked.append(conn_id)
        return provider_fs

    monkeypatch.setitem(airflow_fs._register_filesystems(), "memory", get_fs)
    monkeypatch.setattr(store, "_STORE_CACHE", {})
    path = to_storage_path("memory://provider-bucket/images")
    assert path.fs is provider_fs
    assert asked == [None]
    # output_conn_id reaches the provider: images go to that connection's account.
    assert to_storage_path("memory://provider-bucket/images", conn_id="my_storage").fs is provider_fs
    assert asked == [None, "my_storage"]


def test_safe_names_keep_letters_at_the_ends() -> None:
    """Only dots and underscores are trimmed: "Xmas" and "mas" must not share a file name."""
    assert storage.safe_name("Xmas_posterX") == "Xmas_posterX"
    assert storage.image_file_name("Xmas", None, 0, "png") != storage.image_file_name("mas", None, 0, "png")
