"""Where a task's images go, and storing a finished request's outputs there.

One code path for both places that store a queued request's images: the worker
(``SegmindGenerateImageOperator.execute_complete``) and the triggerer (``SegmindRequestTrigger``
with ``end_from_trigger``), so the file names, the format check, the atomic write and the
metadata are the same wherever the task ends. ``ImageTargets`` is small and JSON-safe, because it
travels in a trigger's kwargs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_segmind.deadline import Deadline
    from airflow_provider_segmind.hooks.segmind import SegmindHook


@dataclass(frozen=True)
class ImageTargets:
    """Where the images of one task instance are written: ``<directory>/<task>_<map>_<n>.<ext>``.

    :param directory: the rendered ``output_dir``: a local path or a URI (only these travel in a
        trigger's kwargs), or an ObjectStoragePath.
    :param conn_id: the storage's Airflow connection (``output_conn_id``), if any.
    :param expected_format: the format the request asked for; checked against the bytes, and the
        file extension when set.
    """

    directory: str | ObjectStoragePath
    conn_id: str | None
    task_id: str
    map_index: int
    expected_format: str | None

    def path(self, image_index: int, extension: str) -> ObjectStoragePath:
        from airflow_provider_segmind.storage import image_file_name, to_storage_path

        directory = to_storage_path(self.directory, conn_id=self.conn_id)
        return directory / image_file_name(self.task_id, self.map_index, image_index, extension)

    def path_for_url(self, image_index: int, url: str) -> ObjectStoragePath:
        from airflow_provider_segmind.responses import extension_for

        return self.path(image_index, extension_for(self.expected_format, url=url))

    def to_kwargs(self) -> dict[str, Any]:
        if not isinstance(self.directory, str):
            raise TypeError("only a directory given as a string can travel in a trigger's kwargs")
        return asdict(self)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> ImageTargets:
        return cls(**kwargs)

    def all_exist(self, urls: list[str]) -> bool:
        """Whether every output of ``urls`` is already stored (a finished earlier try wrote them)."""
        return bool(urls) and all(self.path_for_url(index, url).exists() for index, url in enumerate(urls))


def store_outputs(
    hook: SegmindHook, targets: ImageTargets, urls: list[str], deadline: Deadline
) -> list[dict[str, Any]]:
    """Download each output URL into its target, atomically; ``uri``, ``format`` and ``bytes`` of
    each image, in order. Every download ends by ``deadline``."""
    from airflow_provider_segmind.storage import uri_of, write_atomically

    images: list[dict[str, Any]] = []
    for index, url in enumerate(urls):
        target = targets.path_for_url(index, url)
        downloaded = write_atomically(
            target, partial(hook.download, url, expected_format=targets.expected_format, deadline=deadline)
        )
        images.append({"uri": uri_of(target), "format": downloaded.format, "bytes": downloaded.size_bytes})
    return images


def request_metadata(
    *,
    model: str,
    body: dict[str, Any],
    images: list[dict[str, Any]],
    request_id: str | None,
    elapsed: float | None,
    credits: float | None,
    api: str,
) -> dict[str, Any]:
    """The ``segmind_metadata`` XCom: what was asked, what came back, nothing secret."""
    return {
        "model": model,
        "prompt": body.get("prompt"),
        "parameters": {k: v for k, v in body.items() if k != "prompt"},
        "api": api,
        "request_id": request_id,
        "elapsed_seconds": round(elapsed, 3) if elapsed is not None else None,
        "remaining_credits": credits,
        "images": images,
    }
