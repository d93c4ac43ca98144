"""Output storage: URIs normalised, names deterministic, writes atomic, failures leave no trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_segmind.storage import (
    default_output_dir,
    image_file_name,
    safe_name,
    to_storage_path,
    uri_of,
    write_atomically,
    write_bytes_atomically,
)


def test_plain_path_becomes_file_uri(tmp_path: Path) -> None:
    assert uri_of(to_storage_path(str(tmp_path / "a"))) == f"file://{tmp_path}/a"
    assert uri_of(to_storage_path(tmp_path / "b")) == f"file://{tmp_path}/b"
    assert uri_of(to_storage_path(f"file://{tmp_path}/c")) == f"file://{tmp_path}/c"


def test_memory_scheme_is_attached_from_fsspec() -> None:
    target = to_storage_path("memory://storage-tests/x") / "a.bin"
    write_bytes_atomically(target, b"abc")
    assert to_storage_path("memory://storage-tests/x/a.bin").read_bytes() == b"abc"


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="nosuchscheme"):
        to_storage_path("nosuchscheme://bucket/x").fs  # noqa: B018


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("poster", -1, 0, "png"), "poster_0.png"),
        (("poster", None, 1, "webp"), "poster_1.webp"),
        (("render", 3, 0, "jpg"), "render_3_0.jpg"),
        (("group.task", 0, 0, "png"), "group.task_0_0.png"),
    ],
)
def test_file_names_are_deterministic(args: tuple, expected: str) -> None:  # type: ignore[type-arg]
    assert image_file_name(*args) == expected


def test_safe_names_and_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert safe_name("manual__2026-11-25T10:00:00+00:00") == "manual__2026-11-25T10_00_00_00_00"
    assert safe_name("../..") == "_"
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_output_dir("my dag", "run/1") == f"{tmp_path}/segmind_output/my_dag/run_1"


def test_atomic_replace(tmp_path: Path) -> None:
    target = to_storage_path(tmp_path / "out") / "img.png"
    write_bytes_atomically(target, b"old")
    write_bytes_atomically(target, b"new")
    assert (tmp_path / "out" / "img.png").read_bytes() == b"new"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["img.png"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = to_storage_path(tmp_path) / "img.png"
    write_bytes_atomically(target, b"complete image")

    def half_then_fail(fileobj):  # type: ignore[no-untyped-def]
        fileobj.write(b"half")
        raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError):
        write_atomically(target, half_then_fail)
    assert (tmp_path / "img.png").read_bytes() == b"complete image"
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]


def test_half_written_file_is_never_visible(tmp_path: Path) -> None:
    target = to_storage_path(tmp_path) / "img.png"
    seen: list[bool] = []

    def write(fileobj):  # type: ignore[no-untyped-def]
        fileobj.write(b"part")
        seen.append((tmp_path / "img.png").exists())
        fileobj.write(b"rest")

    write_atomically(target, write)
    assert seen == [False]
    assert (tmp_path / "img.png").read_bytes() == b"partrest"
