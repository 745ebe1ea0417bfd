"""Verifies that downloaded images are real and safe to open, converting formats Phi-4 lacks
and scaling down what is larger than the model can use."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from PIL import Image, ImageOps

from bot.media.errors import UnreadableMedia
from bot.shared import Sentence

ACCEPTED_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG from phone cameras; a plain JPEG to any reader
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
"""Formats every backend reads (PROTOCOLS §1); these pass through byte for byte."""

_CONVERTED_FORMATS = ("BMP", "TIFF", "AVIF", "HEIF")
"""Formats opened and re-encoded; HEIF only when a plugin such as pillow-heif registered it."""

_LOSSY_SOURCES = frozenset({"AVIF", "HEIF"})
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_SUFFIXES = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
}

MAX_IMAGE_PIXELS = 100_000_000
"""Above this an image is refused as a decompression bomb, whatever its format."""

MAX_PIXELS_PER_BYTE = 100
"""Pixels per byte of file no picture has: a photo takes about a byte for 1-10 pixels, a flat
screenshot a byte for 20-60. An image decoded whole (every format but JPEG) with a higher
ratio is built to exhaust memory, and is refused once it is big enough to matter."""

RATIO_CHECKED_FROM = 16_000_000
"""Pixels from which the ratio is checked: below, decoding costs under 64 MB anyway."""

MAX_SIDE = 2048
"""Default longest side of an image given to the model (`PHI4BOT_IMAGE_MAX_SIDE`): Phi-4
reads a few megapixels at most, so larger ones are scaled down before they are stored."""

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's own warning would come before our check

_TOO_BIG = Sentence(
    "That image is too large to open safely; I can take at most {megapixels} megapixels.",
    megapixels=MAX_IMAGE_PIXELS // 1_000_000,
)
_BOMB = Sentence(
    "That image has far more pixels than its file size allows for a picture, so I did not open it."
)
_DRAFTABLE = frozenset({"JPEG", "MPO"})
"""Formats Pillow can decode straight at a reduced scale (`draft`): their memory stays small."""


@dataclass(frozen=True)
class PreparedImage:
    """An image a backend can read, with the name it should carry (suffix matching its type)."""

    mime_type: str
    width: int
    height: int
    data: bytes
    filename: str | None = None


def _renamed(filename: str | None, mime_type: str) -> str | None:
    """Keep the user's name, but make its suffix tell the truth about the bytes."""
    if not filename:
        return None
    path = PurePosixPath(filename)
    if path.suffix.lower() in _SUFFIXES[mime_type]:
        return filename
    return f"{path.stem or 'image'}{_SUFFIXES[mime_type][0]}"


def _openable_formats() -> list[str]:
    """Only our formats' openers may run (never EPS, which starts Ghostscript); asked per
    call so a HEIF plugin registered at start-up counts. MPO opens through the JPEG opener."""
    Image.init()
    return [name for name in (*ACCEPTED_FORMATS, *_CONVERTED_FORMATS) if name in Image.OPEN]


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _convert(image: Image.Image, source_format: str) -> PreparedImage:
    """PNG keeps lossless sources and transparency exact; photos from lossy formats (and any
    JPEG scaled down) go to JPEG."""
    upright = ImageOps.exif_transpose(image)
    alpha = _has_alpha(upright)
    out = io.BytesIO()
    if source_format in (_LOSSY_SOURCES | _DRAFTABLE) and not alpha:
        upright.convert("RGB").save(out, "JPEG", quality=90)
        return PreparedImage("image/jpeg", upright.width, upright.height, out.getvalue())
    if upright.mode not in _PNG_MODES:
        upright = upright.convert("RGBA" if alpha else "RGB")
    upright.save(out, "PNG")
    return PreparedImage("image/png", upright.width, upright.height, out.getvalue())


def _scaled(image: Image.Image, max_side: int) -> Image.Image:
    """`image` with its longest side `max_side`, aspect kept: a JPEG is decoded at the smallest
    of 1/2, 1/4 or 1/8 scale still at least that large (`draft`), then box-reduced by a whole
    factor and resampled the rest of the way."""
    width, height = image.size
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if (image.format or "") in _DRAFTABLE:
        image.draft(None, size)
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _refuse_bombs(width: int, height: int, size: int, source_format: str) -> None:
    """Refuse, from the header alone, what no picture is: over `MAX_IMAGE_PIXELS`, or an image
    decoded whole whose pixels per byte no picture reaches."""
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        raise UnreadableMedia(f"image of {width}x{height} pixels", user_message=_TOO_BIG)
    if (
        source_format not in _DRAFTABLE
        and pixels >= RATIO_CHECKED_FROM
        and pixels > MAX_PIXELS_PER_BYTE * size
    ):
        raise UnreadableMedia(
            f"image of {width}x{height} pixels in {size} bytes", user_message=_BOMB
        )


def prepare_image(
    data: bytes, *, filename: str | None = None, max_side: int = MAX_SIDE
) -> PreparedImage:
    """Open, bomb-check and decode the image, so only real images reach the model, at most
    `max_side` pixels on its longest side.

    JPEG, PNG, GIF and WEBP that fit are returned unchanged (re-encoding would cost quality
    for nothing); BMP, TIFF, AVIF and HEIF are converted; larger images are scaled down,
    aspect kept, upright as their EXIF says. Bombs are refused from the header, before any
    pixel is decoded, and a JPEG is decoded straight at a reduced scale (`draft`), so a
    36-megapixel photo costs a few tens of MB, not hundreds.
    """
    if not data:
        raise UnreadableMedia("empty image", user_message=Sentence("That image file is empty."))
    try:
        with Image.open(io.BytesIO(data), formats=_openable_formats()) as image:
            width, height = image.size
            source_format = image.format or ""
            _refuse_bombs(width, height, len(data), source_format)
            if max(width, height) > max_side:
                scaled = _convert(_scaled(image, max_side), source_format)
                return replace(scaled, filename=_renamed(filename, scaled.mime_type))
            if source_format in _DRAFTABLE:
                # Decoding at 1/8 scale still reads every byte of the stream, so damage
                # shows, without allocating the full-size picture.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
            if source_format in ACCEPTED_FORMATS:
                mime_type = ACCEPTED_FORMATS[source_format]
                return PreparedImage(mime_type, width, height, data, _renamed(filename, mime_type))
            converted = _convert(image, source_format)
    except UnreadableMedia:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check at open (a warning, or an error where warnings are errors)
        raise UnreadableMedia(str(exc), user_message=_TOO_BIG) from exc
    except Exception as exc:
        # Pillow reports damaged input through many exception types (OSError, SyntaxError,
        # ValueError, struct.error, ...); all of them mean the same thing to the user.
        raise UnreadableMedia(
            f"cannot read image: {exc!r}",
            user_message=Sentence(
                "I could not read that image. It may be damaged, or in a format I do not know "
                "(I take JPEG, PNG, GIF, WEBP, BMP and TIFF)."
            ),
        ) from exc
    return replace(converted, filename=_renamed(filename, converted.mime_type))


async def prepare_image_async(
    data: bytes, *, filename: str | None = None, max_side: int = MAX_SIDE
) -> PreparedImage:
    """`prepare_image` in a worker thread, so decoding a large photo never stalls the loop."""
    return await asyncio.to_thread(prepare_image, data, filename=filename, max_side=max_side)
