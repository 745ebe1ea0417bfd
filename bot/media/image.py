"""Verifies that downloaded images are real and safe to open, converting formats Phi-4 lacks."""

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

MAX_IMAGE_PIXELS = 50_000_000
"""Above this an image costs hundreds of MB to decode: refused as a likely decompression bomb."""

_TOO_BIG = Sentence(
    "That image is too large to open safely; I can take at most {megapixels} megapixels.",
    megapixels=MAX_IMAGE_PIXELS // 1_000_000,
)


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
    """PNG keeps lossless sources and transparency exact; photos from lossy formats go to JPEG."""
    upright = ImageOps.exif_transpose(image)
    alpha = _has_alpha(upright)
    out = io.BytesIO()
    if source_format in _LOSSY_SOURCES and not alpha:
        upright.convert("RGB").save(out, "JPEG", quality=90)
        return PreparedImage("image/jpeg", upright.width, upright.height, out.getvalue())
    if upright.mode not in _PNG_MODES:
        upright = upright.convert("RGBA" if alpha else "RGB")
    upright.save(out, "PNG")
    return PreparedImage("image/png", upright.width, upright.height, out.getvalue())


def prepare_image(data: bytes, *, filename: str | None = None) -> PreparedImage:
    """Open, size-check and fully decode the image, so only real images reach the model.

    JPEG, PNG, GIF and WEBP are returned unchanged (re-encoding would cost quality for
    nothing); BMP, TIFF, AVIF and HEIF are converted. The pixel cap is checked from the
    header, before any pixel is decoded.
    """
    if not data:
        raise UnreadableMedia("empty image", user_message=Sentence("That image file is empty."))
    try:
        with Image.open(io.BytesIO(data), formats=_openable_formats()) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableMedia(f"image of {width}x{height} pixels", user_message=_TOO_BIG)
            source_format = image.format or ""
            if source_format in ("JPEG", "MPO"):
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
    except Image.DecompressionBombError as exc:
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


async def prepare_image_async(data: bytes, *, filename: str | None = None) -> PreparedImage:
    """`prepare_image` in a worker thread, so decoding a large photo never stalls the loop."""
    return await asyncio.to_thread(prepare_image, data, filename=filename)
