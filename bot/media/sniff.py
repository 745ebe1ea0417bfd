"""Tells what a file is (image, audio, video, PDF, text), by content first and by name second."""

from __future__ import annotations

from pathlib import PurePosixPath

from bot.media.text_file import is_text_file
from bot.shared import MediaForm, MediaKind

_BY_SUFFIX = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jfif": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}

# Names senders use for the same types; everything maps to one canonical MIME type.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "audio/opus": "audio/ogg",
    "audio/x-opus+ogg": "audio/ogg",
    "audio/vorbis": "audio/ogg",
    "application/ogg": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "audio/aacp": "audio/aac",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
}

KNOWN_TYPES = frozenset(_BY_SUFFIX.values())
"""Every MIME type `sniff_media` can answer; the images are those `prepare_image` may take."""

_M4A_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1")


def _from_magic(data: bytes) -> str | None:
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _M4A_BRANDS:
            return "audio/mp4"
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in _HEIF_BRANDS:
            return "image/heic"
        return None  # mp4/mov brands are usually video; the name or declared type decides
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync: layer bits 00 mean ADTS AAC, anything else MP3.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    return None


def _canonical(mime_type: str | None) -> str | None:
    if not mime_type:
        return None
    base = mime_type.split(";", 1)[0].strip().lower()
    base = _ALIASES.get(base, base)
    return base if base in KNOWN_TYPES else None


def _from_name(filename: str | None) -> str | None:
    if not filename:
        return None
    return _BY_SUFFIX.get(PurePosixPath(filename).suffix.lower())


def sniff_media(
    data: bytes, filename: str | None = None, declared_mime: str | None = None
) -> str | None:
    """The MIME type of image or audio bytes, or None for anything else.

    Magic bytes win because senders mislabel files; the file name and then the declared
    type only decide when the content has no recognisable signature.
    """
    return _from_magic(data) or _from_name(filename) or _canonical(declared_mime)


def media_kind(mime_type: str | None, filename: str | None = None) -> MediaKind | None:
    """Whether a Telegram document is an image or audio, judged before downloading it.

    The declared type wins; a generic one (`application/octet-stream`) falls back to the
    file name's suffix. Video, documents and unknown types are None.
    """
    mime = _canonical(mime_type) or _from_name(filename)
    if mime is None:
        return None
    return "image" if mime.startswith("image/") else "audio"


VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".webm"})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def document_form(mime_type: str | None, filename: str | None = None) -> MediaForm | None:
    """How a Telegram document becomes model input, judged before downloading it: an image
    or audio, a video (frames and sound), a PDF, a text or code file; None for anything else.

    The declared type decides; a generic one falls back to the file name's suffix.
    """
    kind = media_kind(mime_type, filename)
    if kind is not None:
        return kind
    base = (mime_type or "").split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(filename or "").suffix.lower()
    generic = base in _GENERIC_TYPES
    if base.startswith("video/") or (generic and suffix in VIDEO_SUFFIXES):
        return "video"
    if base == "application/pdf" or (generic and suffix == ".pdf"):
        return "pdf"
    if is_text_file(None if generic else base, filename):
        return "text"
    return None
