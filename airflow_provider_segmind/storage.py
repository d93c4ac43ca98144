"""Where images land: any fsspec URI through Airflow's ObjectStoragePath, written atomically.

``write_atomically`` never lets a reader see half an image, on any scheme, by writing the image
under a hidden temporary name in the target's folder, ``.<name>.<random hex>.partial``, and moving
it into place only once ``write`` has returned and the temporary file is closed:

* Local disk: the temporary file is flushed and fsync'ed, then ``os.replace``d onto the target
  (one atomic rename on POSIX).
* Every other scheme (``s3://``, ``gs://``, ``memory://``, ...): the temporary object is written
  with the filesystem's ordinary ``open("wb")``, then moved with the filesystem's own ``mv``. On
  object stores that is a server-side copy followed by a delete of the temporary, and the copy
  publishes the whole object at once; on ``memory://`` it is a copy of the finished bytes.
  fsspec's buffered files upload what they hold when closed, even when ``write`` raised, so a
  failed write is uploaded to the temporary name only, then deleted; the target is never opened.

The temporary is hidden by its name only: a listing of the folder can show it while it exists
(on a local disk and ``memory://`` from the start; on S3 once its upload completes).

When ``write``, the close or the move raises (any ``BaseException``, ``KeyboardInterrupt``
included), the temporary is deleted and the error re-raised; the target keeps its previous
content, or stays absent. A failed delete is logged as a warning naming the temporary, and the
original error is still the one raised.

When the worker process dies without an exception (SIGKILL, an out-of-memory kill, a lost
machine; Airflow 3's SIGTERM handler calls the operator's ``on_kill()`` and raises nothing),
nothing deletes the temporary. Left behind: on a local disk, the ``.partial`` file holding what
was written so far; on S3 through s3fs, nothing while the body is below s3fs's block size (50 MiB
by default: it is still in the worker's memory), past it an unfinished multipart upload, absent
from listings but stored until aborted (a bucket lifecycle rule with
``AbortIncompleteMultipartUpload`` does that); after the upload completed and before the move's
delete, a complete ``.partial`` object. On the local disk, S3 and ``memory://`` the target holds its
previous content or the whole new one, never part of an image.

Airflow registers only ``file://`` and the schemes of installed providers; any other scheme fsspec
knows (``memory://`` in tests, for one) is attached on first use, so every fsspec URI works.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)
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
    """Create ``target`` with ``write(fileobj)``; readers see the old content or the whole new one.

    ``write`` gets a file opened for binary writing under a hidden temporary name next to
    ``target``; the temporary becomes ``target`` only after ``write`` returned and the file was
    closed. When anything raises, the temporary is deleted and an existing ``target`` is untouched.
    """
    fs = target.fs  # the filesystem Airflow resolves for the path and its connection, for every step
    fs.makedirs(target.parent.path, exist_ok=True)
    temporary = (target.parent / f".{target.name}.{uuid.uuid4().hex}.partial").path
    if is_local(target):
        return _write_local(target.path, temporary, write)
    return _write_object(fs, target.path, temporary, write)


def _write_local(final: str, tmp: str, write: Callable[[BinaryIO], T]) -> T:
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


def _write_object(fs: AbstractFileSystem, final: str, tmp: str, write: Callable[[BinaryIO], T]) -> T:
    try:
        with fs.open(tmp, "wb") as fileobj:
            result = write(fileobj)
        fs.mv(tmp, final)
    except BaseException:
        _remove_object_quietly(fs, tmp)
        raise
    return result


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("Could not delete the temporary file %s: %s", path, err)


def _remove_object_quietly(fs: AbstractFileSystem, path: str) -> None:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
    except Exception as err:  # clean-up must not hide the error that got us here
        log.warning("Could not delete the temporary object %s://%s: %s", protocol, path, err)


def write_bytes_atomically(target: ObjectStoragePath, data: bytes) -> int:
    """``write_atomically`` for bytes already in memory; returns the size written."""

    def _write(fileobj: Any) -> int:
        fileobj.write(data)
        return len(data)

    return write_atomically(target, _write)
