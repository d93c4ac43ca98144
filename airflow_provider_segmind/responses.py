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
import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Generic, TypeVar

from airflow_provider_segmind.exceptions import SegmindBadResponseError

#: Longest error text quoted from a server in a message.
MAX_ERROR_TEXT = 300
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
        # The bytes themselves are never quoted: a server that echoes request headers would put
        # the API key in the message (and a preview cut mid-key escapes any redaction).
        raise SegmindBadResponseError(
            f"{source} did not return an image ({len(data)} bytes that look like {_kind_of(data)}).",
        )
    if expected_format is not None and found != expected_format:
        raise SegmindBadResponseError(
            f"{source} returned a {found} image, but output_format={expected_format!r} was asked for.",
        )
    return found


def _kind_of(data: bytes) -> str:
    """A word for what a non-image body is, for error messages that must not quote it."""
    text = data[:64].lstrip()
    if not text:
        return "nothing"
    if text[:1] in (b"{", b"["):
        return "JSON"
    if text[:1] == b"<":
        return "HTML or XML"
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of no known image format"
    return "text"


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


ImageT = TypeVar("ImageT")


@dataclass(frozen=True)
class Generation(Generic[ImageT]):
    """What one synchronous generation produced, and what the answer said about it.

    ``images`` are ``GeneratedImage``s (bytes in memory) from ``SegmindHook.generate``, and
    ``DownloadedImage``s (what was written, no bytes) from ``SegmindHook.generate_into``.
    """

    model: str
    images: list[ImageT]
    elapsed_seconds: float
    remaining_credits: float | None = None
    request_id: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadedImage:
    """An image streamed into a file object: from an output URL, or from the answer itself."""

    url: str | None
    format: str
    size_bytes: int


#: Where the images of a generation go: ``sink(index, extension, fill)`` opens the target of the
#: ``index``-th image, calls ``fill(fileobj)`` to write it, and returns what ``fill`` returned.
ImageSink = Callable[[int, str, Callable[[BinaryIO], DownloadedImage]], DownloadedImage]


#: A generation with its images in memory.
GenerationResult = Generation[GeneratedImage]
#: A generation whose images went through a sink (no image bytes are kept).
WrittenGeneration = Generation[DownloadedImage]


def extension_for(
    image_format: str | None, *, url: str | None = None, content_type: str | None = None
) -> str:
    """The file extension for an image: from its format when known, else from the URL's or the
    Content-Type's, else ``img``."""
    if image_format:
        return EXTENSIONS.get(image_format, image_format)
    if content_type:
        subtype = content_type.split(";")[0].strip().lower().removeprefix("image/")
        if subtype in EXTENSIONS or subtype == "jpg":
            return EXTENSIONS.get(subtype, subtype)
    if url:
        tail = url.split("?", 1)[0].rsplit("/", 1)[-1].rsplit(".", 1)
        if len(tail) == 2 and 2 <= len(tail[1]) <= 4 and tail[1].isalnum():
            return tail[1].lower()
    return "img"


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


# -- error bodies: what a failed answer says --------------------------------------------------


def extract_error_text(body: bytes | str | None, content_type: str | None = None) -> str | None:
    """Pull a human message out of an error body, whatever its shape.

    Segmind answers ``{"error": "..."}``; gateways in front of it answer HTML or nothing.
    """
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None
    ctype = (content_type or "").lower()
    if "json" in ctype or text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "detail", "msg"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return _shorten(value.strip())
                if isinstance(value, (dict, list)) and value:
                    return _shorten(json.dumps(value))
            return _shorten(text)
        if data is not None:
            return _shorten(text)
    if "html" in ctype or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        if title and title.group(1).strip():
            return _shorten(html.unescape(title.group(1).strip()))
        stripped = re.sub(r"<[^>]+>", " ", text)
        stripped = " ".join(html.unescape(stripped).split())
        return _shorten(stripped) if stripped else None
    return _shorten(" ".join(text.split()))


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def body_status(body: bytes | str | None) -> tuple[str | None, str | None]:
    """The ``status`` and ``error`` fields of a JSON body, when it has them."""
    if not body:
        return None, None
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    status = data.get("status")
    error = data.get("error")
    return (
        status.upper() if isinstance(status, str) else None,
        error if isinstance(error, str) else None,
    )


def is_failed_answer(status_code: int, body: bytes | str | None) -> bool:
    """True for Segmind's way of reporting a finished-but-failed v2 request (422 + FAILED).

    Such an answer is a result to hand back, not a transport error to raise or retry.
    """
    return status_code == 422 and body_status(body)[0] == "FAILED"
