"""Pillow rendering of the local server's "generated" images.

The images are cheap stand-ins for real generations, but they are real, decodable files of the
asked size and format, so clients can be tested on what they actually check (magic bytes, size,
alpha). The prompt is written on each image and picks its colours, so a person opening the output
of a demo DAG can tell which prompt produced which file.

This is the only module of the package that imports Pillow.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata

from PIL import Image, ImageDraw, ImageFont

#: Pillow's names for the formats Segmind answers in.
PIL_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

MAX_SIDE = 8192
_MAX_CAPTION_CHARS = 600
_MIN_SIDE_FOR_TEXT = 48

_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont | ImageFont.TransposedFont


def normalise_format(fmt: str) -> str:
    """Map ``jpg``/``JPEG``-style spellings to the server's canonical ``png``/``jpeg``/``webp``."""
    name = fmt.lower()
    name = "jpeg" if name == "jpg" else name
    if name not in PIL_FORMATS:
        raise ValueError(f"unsupported image format {fmt!r}")
    return name


def render_image(
    prompt: str,
    width: int,
    height: int,
    fmt: str,
    transparent: bool = False,
    quality: int = 100,
    variant: int = 0,
) -> bytes:
    """Draw the stand-in image for ``prompt`` and encode it.

    ``variant`` tells apart the images of one request that asked for several: same caption,
    different colours. ``transparent`` is ignored for JPEG, which has no alpha channel.
    """
    fmt = normalise_format(fmt)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"image size {width}x{height} out of range (1..{MAX_SIDE})")
    keep_alpha = transparent and fmt != "jpeg"
    image = _gradient(width, height, _palette(prompt, variant))
    if keep_alpha:
        image.putalpha(_vignette_alpha(width, height))
    if min(width, height) >= _MIN_SIDE_FOR_TEXT:
        image = _with_caption(image, prompt, f"{width}x{height} {fmt}")
    return _encode(image if keep_alpha else image.convert("RGB"), fmt, quality)


def _palette(prompt: str, variant: int) -> tuple[tuple[int, int, int], ...]:
    """Three colours that depend only on the prompt, so reruns give identical pictures."""
    digest = hashlib.sha256(f"{variant}\x00{prompt}".encode()).digest()
    return tuple((digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 9, 3))


def _gradient(width: int, height: int, colours: tuple[tuple[int, int, int], ...]) -> Image.Image:
    """A two-axis gradient, built from Pillow's 256x256 ramps (no per-pixel Python)."""
    first, second, third = colours
    size = (width, height)
    vertical = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    image = Image.composite(Image.new("RGB", size, second), Image.new("RGB", size, first), vertical)
    ramp = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90)
    horizontal = ramp.resize(size, Image.Resampling.BILINEAR)
    half = horizontal.point(lambda value: value // 2)
    image = Image.composite(Image.new("RGB", size, third), image, half)
    return image.convert("RGBA")


def _vignette_alpha(width: int, height: int) -> Image.Image:
    """Opaque centre fading to fully transparent corners, so alpha is easy to assert on."""
    radial = Image.radial_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    # radial_gradient is 0 at the centre and reaches 255 before the corners; invert it.
    return radial.point(lambda value: 255 - value)


def _load_font(size: int) -> _Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        # Pillow < 10.1 has no size argument; without FreeType only the bitmap font exists.
        return ImageFont.load_default()


def _with_caption(image: Image.Image, prompt: str, footer: str) -> Image.Image:
    """Write the prompt, word-wrapped, on a translucent band across the middle."""
    width, height = image.size
    margin = max(4, min(width, height) // 16)
    font = _load_font(max(10, min(width, height) // 18))
    small = _load_font(max(8, min(width, height) // 36))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    line_height = _line_height(font)
    max_lines = max(1, (height - 4 * margin) // line_height)
    text = _drawable(prompt) or "(empty prompt)"
    lines = _wrap(draw, text, font, width - 4 * margin, max_lines)
    block = line_height * len(lines)
    top = (height - block) // 2
    draw.rectangle(
        (margin, top - margin // 2, width - margin, top + block + margin // 2), fill=(0, 0, 0, 150)
    )
    for number, line in enumerate(lines):
        draw.text((2 * margin, top + number * line_height), line, font=font, fill=(255, 255, 255, 255))
    draw.text((2 * margin, top + block + margin // 2 + 2), footer, font=small, fill=(255, 255, 255, 255))
    return Image.alpha_composite(image, overlay)


def _drawable(prompt: str) -> str:
    """The prompt as plain ASCII on one line: Pillow's default font has no accented glyphs."""
    flat = " ".join(prompt.split())[:_MAX_CAPTION_CHARS]
    decomposed = unicodedata.normalize("NFKD", flat)
    kept = (char for char in decomposed if not unicodedata.combining(char))
    return "".join(char if " " <= char <= "~" else "?" for char in kept)


def _line_height(font: _Font) -> int:
    top, bottom = font.getbbox("Ag")[1::2]
    return max(1, int(bottom - top) + max(2, int(bottom - top) // 4))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: _Font, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by rendered width; words wider than a line are split by character."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if draw.textlength(candidate, font=font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while (
            len(lines) <= max_lines and len(current) > 1 and draw.textlength(current, font=font) > max_width
        ):
            cut = _longest_fitting_prefix(draw, current, font, max_width)
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) > max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, len(lines[-1]) - 1)] + "\u2026"
    return lines


def _longest_fitting_prefix(draw: ImageDraw.ImageDraw, word: str, font: _Font, max_width: int) -> int:
    """Binary search: a 600-character word must not cost 600 text measurements."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if draw.textlength(word[:middle], font=font) <= max_width:
            low = middle
        else:
            high = middle - 1
    return low


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """Encode with speed favoured over size: these files only live for the length of a test."""
    buffer = io.BytesIO()
    quality = min(100, max(1, quality))
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="WEBP", quality=quality, method=0)
    return buffer.getvalue()


def image_size_and_mode(data: bytes) -> tuple[str, int, int, str]:
    """Decode ``data`` and report (format, width, height, mode): a helper for tests and demos."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return (image.format or "").lower(), image.width, image.height, image.mode
