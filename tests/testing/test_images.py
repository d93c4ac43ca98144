"""The stand-in images: real files of the asked size and format, telling prompts apart."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from airflow_provider_segmind.testing.images import image_size_and_mode, normalise_format, render_image


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("size", [(1536, 1024), (1024, 1536), (8, 6), (300, 47)])
def test_exact_size_and_format(fmt: str, size: tuple[int, int]) -> None:
    data = render_image("a red fox", *size, fmt)
    assert image_size_and_mode(data) == (fmt, *size, "RGB")


@pytest.mark.parametrize(("fmt", "mode"), [("png", "RGBA"), ("webp", "RGBA"), ("jpeg", "RGB")])
def test_transparency(fmt: str, mode: str) -> None:
    data = render_image("a floating balloon", 400, 300, fmt, transparent=True)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode
        if mode == "RGBA":
            assert image.getchannel("A").getextrema() == (0, 255)


def test_deterministic_per_prompt_and_variant() -> None:
    first = render_image("same prompt", 128, 128, "png")
    assert render_image("same prompt", 128, 128, "png") == first
    assert render_image("another prompt", 128, 128, "png") != first
    assert render_image("same prompt", 128, 128, "png", variant=1) != first


def test_quality_changes_lossy_output() -> None:
    low = render_image("quality", 512, 512, "jpeg", quality=10)
    high = render_image("quality", 512, 512, "jpeg", quality=95)
    assert len(low) < len(high)


@pytest.mark.parametrize(
    "prompt",
    ["", "x" * 32000, "caf\u00e9 \u2603 \u65e5\u672c " * 20, "averyveryverylongwordwithoutspaces" * 10],
)
def test_awkward_prompts(prompt: str) -> None:
    assert image_size_and_mode(render_image(prompt, 640, 480, "png"))[1:3] == (640, 480)


def test_fast_enough() -> None:
    render_image("warm-up", 64, 64, "png")
    started = time.perf_counter()
    render_image("A lighthouse made of glass at dusk, " * 4, 1536, 1024, "png")
    assert time.perf_counter() - started < 1.5  # generous: shared CI machines are slow


@pytest.mark.parametrize(
    ("given", "expected"), [("PNG", "png"), ("jpg", "jpeg"), ("JPEG", "jpeg"), ("webp", "webp")]
)
def test_normalise_format(given: str, expected: str) -> None:
    assert normalise_format(given) == expected


@pytest.mark.parametrize(("fmt", "size"), [("gif", (10, 10)), ("png", (0, 10)), ("png", (10, 9000))])
def test_rejects_what_it_cannot_draw(fmt: str, size: tuple[int, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages differ per case
        render_image("x", *size, fmt)
