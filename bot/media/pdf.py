"""Reads a PDF for the model: its text layer as page-marked text, its scanned pages as images.

PDFium (through pypdfium2) does the parsing; it is not thread-safe, so one lock keeps every
call into it to one thread at a time.
"""

from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass

import pypdfium2 as pdfium

from bot.media.errors import EncryptedDocument, UnreadableDocument
from bot.media.image import PreparedImage, prepare_image
from bot.media.text_file import cut_note

MIN_PAGE_TEXT = 16
"""A page with fewer visible characters than this is taken as a scan and shown as an image."""

MAX_PAGES_READ = 300
"""Pages looked at in all: a document of thousands of empty pages must not cost minutes."""

RENDER_DPI = 150
RENDER_LONG_SIDE = 1600
"""Pages are rendered at 150 dpi, but never with a longer side than this (a poster-sized
page would otherwise cost hundreds of megapixels)."""

_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_JPEG_QUALITY = 85
_PDFIUM = threading.Lock()


@dataclass(frozen=True)
class ReadDocument:
    """A PDF as the model reads it: text (page-marked, cut to the limit) and page images."""

    text: str
    pages: tuple[PreparedImage, ...]
    page_count: int
    cut: bool


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == _PASSWORD_ERROR:
            raise EncryptedDocument(f"encrypted PDF: {exc}") from exc
        raise UnreadableDocument(f"cannot open PDF: {exc}") from exc


def _page_text(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        raw: str = textpage.get_text_range()
    finally:
        textpage.close()
    return raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def _render(page: pdfium.PdfPage, filename: str) -> PreparedImage:
    width, height = page.get_size()
    scale = min(RENDER_DPI / 72, RENDER_LONG_SIDE / max(width, height, 1.0))
    bitmap = page.render(scale=scale)
    try:
        image = bitmap.to_pil()
    finally:
        bitmap.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=_JPEG_QUALITY)
    return prepare_image(out.getvalue(), filename=filename)


def read_pdf(data: bytes, *, filename: str, max_chars: int, max_pages: int) -> ReadDocument:
    """Page by page: text pages give their text, pages without text (scans) are rendered as
    images, at most `max_pages` of them; reading stops once `max_chars` of text are taken
    (page marks count) or `MAX_PAGES_READ` pages have been looked at."""
    stem = filename.rsplit(".", 1)[0] or "document"
    parts: list[str] = []
    pages: list[PreparedImage] = []
    unshown = 0
    used = 0
    cut = False
    with _PDFIUM:
        document = _open(data)
        try:
            count = len(document)
            for number in range(min(count, MAX_PAGES_READ)):
                page = document[number]
                try:
                    text = _page_text(page)
                    if sum(not c.isspace() for c in text) < MIN_PAGE_TEXT:
                        if len(pages) >= max_pages:
                            unshown += 1
                            continue
                        pages.append(_render(page, f"{stem}_page{number + 1}.jpg"))
                        text = ""
                    mark = f"--- Page {number + 1}{f': image {len(pages)}' if not text else ''} ---"
                    block = f"{mark}\n{text}" if text else mark
                    if used + len(block) > max_chars:
                        parts.append(block[: max(0, max_chars - used)])
                        parts.append(cut_note(max_chars, pages_left=count - number - 1))
                        cut = True
                        break
                    parts.append(block)
                    used += len(block) + 1
                finally:
                    page.close()
        except pdfium.PdfiumError as exc:
            raise UnreadableDocument(f"cannot read PDF: {exc}") from exc
        finally:
            document.close()
    if count == 0:
        raise UnreadableDocument("a PDF without pages")
    if unshown:
        parts.append(
            f"[{unshown} more scanned page{'s' if unshown != 1 else ''} not shown: "
            f"only the first {max_pages} pages without text are included as images.]"
        )
    if count > MAX_PAGES_READ and not cut:
        parts.append(f"[Only the first {MAX_PAGES_READ} of {count} pages were read.]")
    header = f"Document {filename} ({count} page{'s' if count != 1 else ''}):"
    return ReadDocument("\n".join([header, *parts]), tuple(pages), count, cut)


async def read_pdf_async(
    data: bytes, *, filename: str, max_chars: int, max_pages: int
) -> ReadDocument:
    """`read_pdf` in a worker thread."""
    return await asyncio.to_thread(
        read_pdf, data, filename=filename, max_chars=max_chars, max_pages=max_pages
    )
