"""Output storage: URIs normalised, names deterministic, writes atomic, failures leave no trace.

The atomic-write tests run on three backends: the local disk, fsspec's ``memory://``, and a real
S3-compatible HTTP server on loopback (moto's server mode, reached through s3fs; see
``tests/storage_servers.py``).
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from tests.storage_servers import S3Server

MiB = 2**20


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


# -- atomic writes, on every backend -------------------------------------------------------------

# The class of file object ``write`` must receive on each backend: proof that a test reached the
# storage write it is named after, on the filesystem it claims.
FILE_CLASS = {"local": "BufferedWriter", "memory": "MemoryFile", "s3": "S3File"}


def storage_file(fileobj: Any) -> Any:
    """The filesystem's own file object (Airflow's ObjectStoragePath.open wraps it for lineage)."""
    return getattr(fileobj, "_obj", fileobj)


@dataclass
class Backend:
    name: str
    directory: ObjectStoragePath
    s3: S3Server | None = None

    def names(self) -> list[str]:
        """What a listing of the folder shows, plus, on S3, any multipart upload left open."""
        fs = self.directory.fs
        try:
            found = sorted(
                os.path.basename(p.rstrip("/"))
                for p in fs.ls(self.directory.path, detail=False, refresh=True)
            )
        except FileNotFoundError:
            found = []
        if self.s3 is not None:
            prefix = self.directory.path.split("/", 1)[1] + "/"
            found += [
                f"unfinished upload: {u['Key']}"
                for u in self.s3.fs.list_multipart_uploads(self.s3.bucket)
                if u["Key"].startswith(prefix)
            ]
        return found


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return Backend("local", to_storage_path(tmp_path / "out"))
    if request.param == "memory":
        return Backend("memory", to_storage_path(f"memory://storage-tests/{uuid.uuid4().hex}"))
    uri = request.getfixturevalue("s3_bucket")
    return Backend("s3", to_storage_path(uri), s3=request.getfixturevalue("s3_server"))


class BrokenDownload(Exception):
    pass


@dataclass
class Writer:
    """A ``write`` callable like the hook's download: streams ``body`` in chunks, and raises once
    ``fail_after`` bytes are written (0: before the first byte; ``len(body)``: after the last)."""

    body: bytes
    fail_after: int | None = None
    chunk: int = 256 * 1024
    written: int = 0
    fileobj: Any = field(default=None, repr=False)

    def __call__(self, fileobj: Any) -> int:
        self.fileobj = fileobj
        for start in range(0, len(self.body), self.chunk):
            self._maybe_fail()
            self.written += fileobj.write(self.body[start : start + self.chunk])
        self._maybe_fail()
        return self.written

    def _maybe_fail(self) -> None:
        if self.fail_after is not None and self.written >= self.fail_after:
            raise BrokenDownload(f"connection lost after {self.written} bytes")


def body(size: int, seed: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(size - 8)


def fingerprint(data: bytes) -> tuple[int, str]:
    """Size and hash: a readable assertion on MiB of bytes (a partial image shows as its size)."""
    return len(data), hashlib.sha256(data).hexdigest()[:16]


OLD = body(3 * MiB, seed=1)
NEW = body(3 * MiB, seed=2)
# Larger than the test S3 filesystem's 5 MiB block, so it goes up as a multipart upload.
BIG = body(12 * MiB, seed=3)


@pytest.mark.parametrize(
    ("new", "fail_after"),
    [
        pytest.param(NEW, 0, id="before-first-byte"),
        pytest.param(NEW, 1 * MiB, id="mid-stream-1-of-3-MiB"),
        pytest.param(BIG, 7 * MiB, id="mid-multipart-7-of-12-MiB"),
        pytest.param(NEW, 3 * MiB, id="after-last-byte"),
    ],
)
def test_failed_write_keeps_previous_image(backend: Backend, new: bytes, fail_after: int) -> None:
    target = backend.directory / "img.png"
    write_bytes_atomically(target, OLD)
    writer = Writer(new, fail_after=fail_after)
    with pytest.raises(BrokenDownload):
        write_atomically(target, writer)
    assert fingerprint(target.read_bytes()) == fingerprint(OLD)
    assert backend.names() == ["img.png"]
    assert type(storage_file(writer.fileobj)).__name__ == FILE_CLASS[backend.name]
    assert writer.written == fail_after


def test_write_failing_before_first_byte_creates_nothing(backend: Backend) -> None:
    """A body that is not an image fails before a byte is written: no empty object appears."""
    target = backend.directory / "img.png"
    writer = Writer(NEW, fail_after=0)
    with pytest.raises(BrokenDownload):
        write_atomically(target, writer)
    assert not target.exists()
    assert backend.names() == []
    assert type(storage_file(writer.fileobj)).__name__ == FILE_CLASS[backend.name]


def test_success_replaces_previous_image(backend: Backend) -> None:
    target = backend.directory / "img.png"
    write_bytes_atomically(target, OLD)
    writer = Writer(NEW)
    assert write_atomically(target, writer) == len(NEW)
    assert fingerprint(target.read_bytes()) == fingerprint(NEW)
    assert backend.names() == ["img.png"]
    assert type(storage_file(writer.fileobj)).__name__ == FILE_CLASS[backend.name]


def test_multipart_image_arrives_whole(backend: Backend) -> None:
    target = backend.directory / "img.png"
    writer = Writer(BIG, chunk=MiB)
    assert write_atomically(target, writer) == len(BIG)
    assert fingerprint(target.read_bytes()) == fingerprint(BIG)
    assert backend.names() == ["img.png"]
    fileobj = storage_file(writer.fileobj)
    assert type(fileobj).__name__ == FILE_CLASS[backend.name]
    if backend.name == "s3":
        assert len(fileobj.parts) == 3  # 5 + 5 + 2 MiB: a real multipart upload


def test_half_written_image_is_never_visible(backend: Backend) -> None:
    target = backend.directory / "img.png"
    seen: list[tuple[bool, list[str]]] = []

    def write(fileobj: Any) -> None:
        fileobj.write(NEW[: 2 * MiB])
        seen.append((target.exists(), backend.names()))
        fileobj.write(NEW[2 * MiB :])

    write_atomically(target, write)
    ((target_existed, visible),) = seen
    assert not target_existed
    # Only the hidden temporary may show meanwhile (local, memory; S3 shows nothing until complete).
    assert all(name.startswith(".img.png.") and name.endswith(".partial") for name in visible)
    assert fingerprint(target.read_bytes()) == fingerprint(NEW)
    assert backend.names() == ["img.png"]


def test_failed_publish_removes_temporary(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """When moving the finished temporary into place fails, the temporary goes and the old image stays."""
    target = backend.directory / "img.png"
    write_bytes_atomically(target, OLD)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("storage refused the move")

    if backend.name == "local":
        monkeypatch.setattr(os, "replace", refuse)
    else:
        monkeypatch.setattr(target.fs, "mv", refuse)
    writer = Writer(NEW)
    with pytest.raises(OSError, match="refused the move"):
        write_atomically(target, writer)
    assert writer.written == len(NEW)
    assert fingerprint(target.read_bytes()) == fingerprint(OLD)
    assert backend.names() == ["img.png"]


def test_s3_bucket_fixture_is_real_s3_over_http(s3_bucket: str, s3_server: S3Server) -> None:
    """What the fixture hands out works with to_storage_path, and the bytes sit on the HTTP server."""
    import boto3

    target = to_storage_path(s3_bucket) / "img.png"
    assert target.fs is s3_server.fs
    write_bytes_atomically(target, b"\x89PNG\r\n\x1a\nimage")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="eu-west-1",
    )
    key = s3_bucket.removeprefix(f"s3://{s3_server.bucket}/") + "/img.png"
    obj = client.get_object(Bucket=s3_server.bucket, Key=key)
    assert obj["Body"].read() == b"\x89PNG\r\n\x1a\nimage"
