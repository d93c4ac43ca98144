"""Validation of generation bodies, the way Segmind answers them with 400.

A client of the provider must be tested against a server that refuses what Segmind refuses
(a bad enum value, an empty prompt), or a bug that only the real API catches, at a cost, slips
through. The server also needs to know what to draw for an accepted body; both are decided
here, once, when the request is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_PROMPT_CHARS = 32000
MAX_SIDE = 4096

#: What gpt-image-* slugs accept, per Segmind's product page.
GPT_IMAGE_ENUMS: dict[str, frozenset[str]] = {
    "size": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
    "quality": frozenset({"low", "medium", "high", "auto"}),
    "background": frozenset({"transparent", "opaque"}),
    "moderation": frozenset({"low", "auto"}),
    "output_format": frozenset({"png", "jpeg", "webp"}),
}
GPT_IMAGE_DEFAULT_SIZE = "1536x1024"

#: Format spellings other models accept, mapped to the format the image is drawn in.
IMAGE_FORMATS: dict[str, str] = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}


class BadRequest(Exception):
    """A request body Segmind would answer 400 to; the message becomes the ``error``."""


@dataclass(frozen=True)
class GenerationParams:
    """What is needed to draw a request's images, decided once when the request is accepted."""

    prompt: str
    width: int
    height: int
    fmt: str
    transparent: bool
    quality: int


def parse_generation(slug: str, body: Any) -> GenerationParams:
    """Validate a generation body for model ``slug`` and decide what to draw.

    Raises :class:`BadRequest` with a message naming the offending field.
    """
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt is required and must be a non-empty string")
    if slug.startswith("gpt-image"):
        return _parse_gpt_image(prompt, body)
    return _parse_other_model(prompt, body)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_size(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    width, _, height = size.partition("x")
    return int(width), int(height)


def _parse_gpt_image(prompt: str, body: dict[str, Any]) -> GenerationParams:
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt must be at most {MAX_PROMPT_CHARS} characters")
    for name, allowed in GPT_IMAGE_ENUMS.items():
        if name in body and body[name] not in allowed:
            raise BadRequest(f"{name} must be one of {', '.join(sorted(allowed))}; got {body[name]!r}")
    compression = body.get("output_compression", 100)
    if not _is_int(compression) or not 0 <= compression <= 100:
        raise BadRequest(f"output_compression must be an integer from 0 to 100; got {compression!r}")
    width, height = _parse_size(body.get("size", GPT_IMAGE_DEFAULT_SIZE))
    return GenerationParams(
        prompt=prompt,
        width=width,
        height=height,
        fmt=body.get("output_format", "png"),
        transparent=body.get("background") == "transparent",
        quality=compression,
    )


def _parse_other_model(prompt: str, body: dict[str, Any]) -> GenerationParams:
    sides = []
    for name in ("width", "height"):
        value = body.get(name, 1024)
        if not _is_int(value) or not 0 < value <= MAX_SIDE:
            raise BadRequest(f"{name} must be an integer from 1 to {MAX_SIDE}; got {value!r}")
        sides.append(value)
    fmt = body.get("output_format", "png")
    if fmt not in IMAGE_FORMATS:
        raise BadRequest(f"output_format must be one of png, jpeg, webp; got {fmt!r}")
    quality = body.get("output_compression", body.get("quality", 95))
    return GenerationParams(
        prompt=prompt,
        width=sides[0],
        height=sides[1],
        fmt=IMAGE_FORMATS[fmt],
        transparent=body.get("background") == "transparent",
        quality=quality if _is_int(quality) else 95,
    )
