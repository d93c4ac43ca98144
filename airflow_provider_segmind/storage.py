"""Where images land: any fsspec URI through Airflow's ObjectStoragePath, written atomically.

A reader must never see half an image. On a local disk each file is written under a temporary
name in the same folder and renamed into place (``os.replace``, atomic on POSIX), so a re-run
replaces the old image in one step. Object stores (s3://, gs://, ...) publish an object only when
its upload completes, which is the same guarantee, so they are written directly.

Airflow registers only ``file://`` and the schemes of installed providers; any other scheme
fsspec knows (``memory://`` in tests, for one) is attached on first use, so every fsspec URI works.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from airflow.sdk import ObjectStoragePath

T = TypeVar("T")
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe version of a DAG id, run id or task id (run ids carry ':' and '+')."""
    return _UNSAFE.sub("_", text).strip("._") or "_"


def default_output_dir(dag_id: str, run_id: str) -> str:
    """``$AIRFLOW_HOME/segmind_output/<dag_id>/<run_id>``: one folder per run, no set-up needed."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return os.path.join(home, "segmind_output", safe_name(dag_id), safe_name(run_id))


def image_file_name(task_id: str, map_index: int | None, image_index: int, extension: str) -> str:
    """Deterministic from the task, so a re-run replaces its images instead of adding more."""
    parts = [safe_name(task_id)]
    if map_index is not None and map_index >= 0:
        parts.append(str(map_index))
    parts.append(str(image_index))
    return f"{'_'.join(parts)}.{extension}"


def to_storage_path(
    location: str | os.PathLike[str] | ObjectStoragePath, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """Normalise a string, a local path or an ObjectStoragePath; a plain path becomes ``file://``.

    :param conn_id: the Airflow connection of the storage (e.g. ``aws_default`` for ``s3://``).
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(location, ObjectStoragePath):
        return location
    text = os.fspath(location)
    scheme = urlsplit(text).scheme
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return ObjectStoragePath(f"file://{os.path.abspath(os.path.expanduser(text))}")
    _attach_fsspec_scheme(scheme)
    return ObjectStoragePath(text, conn_id=conn_id)


def _attach_fsspec_scheme(scheme: str) -> None:
    """Make a scheme that Airflow has no provider for usable, when fsspec itself knows it."""
    try:
        from airflow.sdk.io import attach, has_fs
    except ImportError:  # Airflow 2.x
        from airflow.io import attach, has_fs  # type: ignore[no-redef]

    if has_fs(scheme):
        return
    import fsspec

    try:
        fs = fsspec.filesystem(scheme)
    except (ImportError, ValueError):
        return  # let ObjectStoragePath raise its own clear "no filesystem" error
    attach(protocol=scheme, fs=fs)


def uri_of(path: ObjectStoragePath) -> str:
    """The string handed to XCom: always a URI with its scheme."""
    text = str(path)
    return text if "://" in text else f"file://{text}"


def is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in LOCAL_PROTOCOLS


def write_atomically(target: ObjectStoragePath, write: Callable[[BinaryIO], T]) -> T:
    """Create ``target`` with ``write(fileobj)``; readers see the old file or the whole new one.

    When ``write`` raises, nothing is left behind and an existing ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if not is_local(target):
        with target.open("wb") as fileobj:
            return write(fileobj)
    final = target.path
    tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as fileobj:
            result = write(fileobj)
            fileobj.flush()
            os.fsync(fileobj.fileno())
        os.replace(tmp, final)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return result


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def write_bytes_atomically(target: ObjectStoragePath, data: bytes) -> int:
    """``write_atomically`` for bytes already in memory; returns the size written."""

    def _write(fileobj: Any) -> int:
        fileobj.write(data)
        return len(data)

    return write_atomically(target, _write)
