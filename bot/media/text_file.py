"""Reads text and code files for the model: decoded (any charset) and inlined as a fenced block."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import charset_normalizer

from bot.media.errors import UndecodableText

# Languages named by their usual suffix; the suffix itself is the fence's language tag.
TEXT_SUFFIXES = frozenset(
    """
    txt text md markdown rst org log csv tsv json jsonl ndjson xml yaml yml toml ini cfg conf
    env properties srt vtt tex bib diff patch sql graphql proto
    py pyi ipynb js mjs cjs jsx ts tsx java kt kts scala groovy gradle c h cc cpp cxx hpp hh cs
    go rs rb php pl pm lua r m mm swift dart sh bash zsh fish ps1 bat cmd html htm css scss
    sass less vue svelte hs ml ex exs erl clj lisp el vim dockerfile makefile cmake nix tf
    """.split()
)
TEXT_NAMES = frozenset({"dockerfile", "makefile", "readme", "license", "changelog"})
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/x-sh",
        "application/x-shellscript",
        "application/sql",
        "application/x-python",
        "application/x-python-code",
        "application/x-tex",
        "application/x-subrip",
        "application/x-ipynb+json",
    }
)


@dataclass(frozen=True)
class InlinedText:
    """A file's text as the model reads it, and whether it had to be cut."""

    text: str
    cut: bool


def is_text_file(mime_type: str | None, filename: str | None) -> bool:
    """A text or code file, judged by its declared type or, failing that, its name."""
    base = (mime_type or "").split(";", 1)[0].strip().lower()
    if base.startswith("text/") or base in TEXT_TYPES:
        return True
    if not filename:
        return False
    path = PurePosixPath(filename.lower())
    return path.suffix.lstrip(".") in TEXT_SUFFIXES or path.name in TEXT_NAMES


def decode_text(data: bytes) -> str:
    """UTF-8 when it is (with or without a BOM), else the charset that reads best; bytes
    that are no text at all (binary data under a text name) are refused."""
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UndecodableText("NUL bytes: binary data")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise UndecodableText("no charset reads these bytes")
    return str(best)


def cut_note(max_chars: int, *, pages_left: int = 0) -> str:
    """Tells the model the text stops early, so it can say so rather than guess the rest."""
    rest = f" ({pages_left} more page{'s' if pages_left != 1 else ''} not included)"
    return (
        f"[The text was cut here: only the first {max_chars} characters are included"
        f"{rest if pages_left else ''}. Tell the user you read only this part.]"
    )


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def inline_text_file(data: bytes, *, filename: str, max_chars: int) -> InlinedText:
    """The file as a fenced block headed by its name, at most `max_chars` of its text."""
    text = decode_text(data).replace("\r\n", "\n")
    cut = len(text) > max_chars
    shown = text[:max_chars]
    suffix = PurePosixPath(filename).suffix.lstrip(".").lower()
    fence = _fence(shown)
    block = f"File {filename}:\n{fence}{suffix}\n{shown.rstrip()}\n{fence}"
    if cut:
        block += "\n" + cut_note(max_chars)
    return InlinedText(block, cut)


async def inline_text_file_async(data: bytes, *, filename: str, max_chars: int) -> InlinedText:
    """`inline_text_file` in a worker thread (charset detection of a large file takes a while)."""
    return await asyncio.to_thread(inline_text_file, data, filename=filename, max_chars=max_chars)
