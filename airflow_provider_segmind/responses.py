"""What Segmind's answers contain, and checks that an image really is one.

The v1 answer is under-documented (the product page says "Text/JSON", Segmind's SDK and public
code read raw image bytes), so it is decided by Content-Type: ``image/*`` is the image itself,
JSON may carry base64 image(s) or URL(s), anything else is refused. Every image is checked by its
magic bytes before anything is written, so a gateway's HTML page never lands in storage as a
``.png``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_segmind.exceptions import SegmindBadResponseError

#: File extension for each image format Segmind returns.
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}


def detect_image_format(head: bytes) -> str | None:
    """The image format from the first bytes of a file, or None when it is no known image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def check_image(data: bytes, expected_format: str | None, *, source: str) -> str:
    """Return the format of ``data``; raise when it is not an image or not the asked format."""
    found = detect_image_format(data[:16])
    if found is None:
        preview = data[:40]
        raise SegmindBadResponseError(
            f"{source} did not return an image ({len(data)} bytes starting {preview!r}).",
        )
    if expected_format is not None and found != expected_format:
        raise SegmindBadResponseError(
            f"{source} returned a {found} image, but output_format={expected_format!r} was asked for.",
        )
    return found


@dataclass(frozen=True)
class GeneratedImage:
    """One image: its bytes and format, and the CDN URL it came from when there was one."""

    data: bytes = field(repr=False)
    format: str
    source_url: str | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.format, self.format)

    @property
    def size_bytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class GenerationResult:
    """What one synchronous generation produced, and what the answer said about it."""

    model: str
    images: list[GeneratedImage]
    elapsed_seconds: float
    remaining_credits: float | None = None
    request_id: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadedImage:
    """An image streamed from an output URL into a file object."""

    url: str
    format: str
    size_bytes: int


@dataclass(frozen=True)
class V1Payload:
    """The images a v1 answer carried: inline bytes, or URLs still to download."""

    images: list[bytes] = field(default_factory=list, repr=False)
    urls: list[str] = field(default_factory=list)


def parse_v1_answer(content_type: str | None, body: bytes, *, source: str) -> V1Payload:
    """Split a successful v1 answer into inline images and output URLs (see the module docstring)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("", "application/octet-stream"):
        # No useful label: decide by the bytes themselves.
        ctype = "image/*" if detect_image_format(body[:16]) else "application/json"
    if ctype.startswith("image/"):
        return V1Payload(images=[body])
    if ctype in ("application/json", "text/json") or ctype.endswith("+json"):
        try:
            data = json.loads(body)
        except ValueError as err:
            raise SegmindBadResponseError(
                f"{source} answered Content-Type {ctype} with a body that is not valid JSON ({err})."
            ) from None
        payload = _payload_from_json(data)
        if not payload.images and not payload.urls:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise SegmindBadResponseError(
                f"{source} answered JSON without an image or an image URL (keys: {keys})."
            )
        return payload
    raise SegmindBadResponseError(
        f"{source} answered with Content-Type {content_type!r}; expected an image or JSON.",
    )


_IMAGE_KEYS = ("image", "images", "output", "outputs", "data", "url", "urls", "image_url", "b64_json")


def _payload_from_json(data: Any) -> V1Payload:
    images: list[bytes] = []
    urls: list[str] = []
    for item in _candidate_values(data):
        if item.startswith(("http://", "https://")):
            urls.append(item)
            continue
        decoded = _decode_base64_image(item)
        if decoded is not None:
            images.append(decoded)
    return V1Payload(images=images, urls=urls)


def _candidate_values(data: Any) -> Iterable[str]:
    """Strings under the keys where image models put their output, in order."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, list):
        for item in data:
            yield from _candidate_values(item)
    elif isinstance(data, dict):
        for key in _IMAGE_KEYS:
            if key in data:
                yield from _candidate_values(data[key])


def _decode_base64_image(text: str) -> bytes | None:
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if detect_image_format(raw[:16]) else None


def remaining_credits(headers: dict[str, str]) -> float | None:
    """``X-remaining-credits`` as a number, when the answer carried it."""
    for key, value in headers.items():
        if key.lower() == "x-remaining-credits":
            try:
                return float(value)
            except ValueError:
                return None
    return None
