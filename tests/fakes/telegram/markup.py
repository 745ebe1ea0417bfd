"""Best-effort parsing of `parse_mode` markup (HTML, MarkdownV2, Markdown) into entities.

Not a copy of Telegram's parsers: well-formed markup becomes the text and entities Telegram
would produce, and obviously broken markup (unclosed or mismatched markers, unknown HTML tags,
unescaped MarkdownV2 reserved characters) is refused with Telegram's "can't parse entities"
wording. That is enough to catch a bot that streams half-finished Markdown with parse_mode.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request, cant_parse
from .text import Entity, utf16_len


def parse_markup(source: str, parse_mode: str) -> tuple[str, list[Entity]]:
    """Turn `source` written in `parse_mode` into (text, entities), or raise Telegram's 400."""
    mode = parse_mode.strip().lower()
    if mode == "html":
        return _parse_html(source)
    if mode == "markdownv2":
        return _parse_markdown_v2(source)
    if mode == "markdown":
        return _parse_markdown(source)
    raise bad_request(f"unsupported parse_mode {parse_mode!r}")


class _Output:
    """Plain text under construction, with its length kept in UTF-16 units."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.pos += utf16_len(piece)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            length = self.pos - start
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[Entity]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _byte(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


# --- HTML -------------------------------------------------------------------------------

_HTML_KINDS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG = re.compile(r"([A-Za-z][\w-]*)(.*)", re.DOTALL)
_ATTR = re.compile(r"([A-Za-z-]+)\s*(?:=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_CHAR_REF = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")
_HTML_PLAIN = re.compile(r"[^<&]+")


@dataclass
class _OpenTag:
    name: str
    kind: str | None
    start: int
    extra: dict[str, Any] = field(default_factory=dict)


def _parse_html(source: str) -> tuple[str, list[Entity]]:
    out = _Output()
    stack: list[_OpenTag] = []
    i = 0
    while i < len(source):
        plain = _HTML_PLAIN.match(source, i)
        if plain:
            out.add(plain.group())
            i = plain.end()
        elif source[i] == "&":
            ref = _CHAR_REF.match(source, i)
            out.add(html.unescape(ref.group()) if ref else "&")
            i = ref.end() if ref else i + 1
        else:
            end = source.find(">", i)
            if end < 0:
                raise cant_parse(f"Unclosed start tag at byte offset {_byte(source, i)}")
            _html_tag(source, i, source[i + 1 : end].strip(), out, stack)
            i = end + 1
    if stack:
        raise cant_parse(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _html_tag(source: str, at: int, body: str, out: _Output, stack: list[_OpenTag]) -> None:
    if body.startswith("/"):
        name = body[1:].strip().lower()
        if not stack:
            raise cant_parse(f'Unexpected end tag "{name}" at byte offset {_byte(source, at)}')
        tag = stack.pop()
        if tag.name != name:
            raise cant_parse(
                f"Unmatched end tag at byte offset {_byte(source, at)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        if tag.kind is not None:
            out.entity(tag.kind, tag.start, **tag.extra)
        return
    where = f"at byte offset {_byte(source, at)}"
    match = _TAG.match(body)
    name, rest = (match.group(1).lower(), match.group(2)) if match else ("", "")
    if name not in _HTML_KINDS:
        raise cant_parse(f'Unsupported start tag "{name}" {where}')
    attrs = {m[0].lower(): m[1] or m[2] or m[3] for m in _ATTR.findall(rest)}
    tag = _OpenTag(name, _HTML_KINDS[name], out.pos)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise cant_parse(f'Tag "span" must have class "tg-spoiler" {where}')
    if name == "a":
        tag.kind = "text_link" if attrs.get("href") else None
        tag.extra = {"url": attrs["href"]} if tag.kind else {}
    elif name == "tg-emoji":
        if not attrs.get("emoji-id"):
            raise cant_parse(f'Tag "tg-emoji" must have attribute "emoji-id" {where}')
        tag.extra = {"custom_emoji_id": attrs["emoji-id"]}
    elif name == "blockquote" and "expandable" in attrs:
        tag.kind = "expandable_blockquote"
    elif name == "code" and stack and stack[-1].name == "pre" and stack[-1].start == out.pos:
        language = (attrs.get("class") or "").removeprefix("language-")
        if language:
            stack[-1].extra["language"] = language
            tag.kind = None
    stack.append(tag)


# --- MarkdownV2 -------------------------------------------------------------------------

_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_V2_MARKERS = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}
_V2_KINDS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
    "[": "text_link",
}
_V2_PLAIN = re.compile(r"[^\\`\[\]()*_~|>\n#+\-={}.!]+")


def _parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    out = _Output()
    stack: list[tuple[str, int, int]] = []  # (marker, start in output, byte offset in source)
    quote: int | None = None
    i = 0
    while i < len(source):
        ch = source[i]
        plain = _V2_PLAIN.match(source, i)
        if plain:
            out.add(plain.group())
            i = plain.end()
        elif ch == ">" and (i == 0 or source[i - 1] == "\n"):
            quote = out.pos if quote is None else quote
            i += 1
        elif ch == "\n":
            if quote is not None and not source.startswith(">", i + 1):
                out.entity("blockquote", quote)
                quote = None
            out.add(ch)
            i += 1
        elif ch == "\\":
            if i + 1 >= len(source):
                raise _v2_reserved("\\")
            out.add(source[i + 1])
            i += 2
        elif ch == "`":
            i = _v2_code(source, i, out)
        elif ch == "[":
            stack.append(("[", out.pos, _byte(source, i)))
            i += 1
        elif ch == "]" and stack and stack[-1][0] == "[":
            i = _v2_link_end(source, i, out, stack.pop())
        elif ch in "*_~" or source.startswith("||", i):
            marker = "__" if source.startswith("__", i) else "||" if ch == "|" else ch
            if stack and stack[-1][0] == marker:
                out.entity(_V2_KINDS[marker], stack.pop()[1])
            elif any(open_marker == marker for open_marker, _, _ in stack):
                raise _v2_unclosed(stack[-1])
            else:
                stack.append((marker, out.pos, _byte(source, i)))
            i += len(marker)
        else:
            raise _v2_reserved(ch)
    if stack:
        raise _v2_unclosed(stack[-1])
    if quote is not None:
        out.entity("blockquote", quote)
    return out.result()


def _v2_reserved(ch: str) -> Exception:
    return cant_parse(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def _v2_unclosed(opened: tuple[str, int, int]) -> Exception:
    name = _V2_MARKERS.get(opened[0], "TextUrl")
    return cant_parse(f"Can't find end of {name} entity at byte offset {opened[2]}")


def _v2_code(source: str, i: int, out: _Output) -> int:
    """Inline code or a ``` block; inside them only ` and \\ are escaped."""
    fence = "```" if source.startswith("```", i) else "`"
    body_start = i + len(fence)
    j = body_start
    while True:
        j = source.find(fence, j)
        if j < 0:
            kind = "Pre" if fence == "```" else "Code"
            raise cant_parse(f"Can't find end of {kind} entity at byte offset {_byte(source, i)}")
        if source[j - 1] != "\\" or j == body_start:
            break
        j += 1
    body = source[body_start:j]
    language = ""
    if fence == "```":
        first, newline, rest = body.partition("\n")
        if newline and first and not any(c.isspace() for c in first):
            language, body = first, rest
    start = out.pos
    out.add(re.sub(r"\\([`\\])", r"\1", body))
    if fence == "```":
        out.entity("pre", start, **({"language": language} if language else {}))
    else:
        out.entity("code", start)
    return j + len(fence)


def _v2_link_end(source: str, i: int, out: _Output, opened: tuple[str, int, int]) -> int:
    if not source.startswith("(", i + 1):
        raise cant_parse(f"Can't find end of a URL at byte offset {_byte(source, i)}")
    j = i + 2
    while j < len(source) and source[j] != ")":
        j += 2 if source[j] == "\\" else 1
    if j >= len(source):
        raise cant_parse(f"Can't find end of a URL at byte offset {_byte(source, i + 1)}")
    url = re.sub(r"\\(.)", r"\1", source[i + 2 : j])
    out.entity("text_link", opened[1], url=url)
    return j + 1


# --- legacy Markdown --------------------------------------------------------------------

_MD_KINDS = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}
_MD_PLAIN = re.compile(r"[^\\*_`\[]+")
_MD_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def _parse_markdown(source: str) -> tuple[str, list[Entity]]:
    out = _Output()
    i = 0
    while i < len(source):
        ch = source[i]
        plain = _MD_PLAIN.match(source, i)
        if plain:
            out.add(plain.group())
            i = plain.end()
        elif ch == "\\" and source[i + 1 : i + 2] in ("*", "_", "`", "["):
            out.add(source[i + 1])
            i += 2
        elif ch == "[":
            link = _MD_LINK.match(source, i)
            if link is None:
                raise _md_unclosed(source, i)
            start = out.pos
            out.add(link.group(1))
            out.entity("text_link", start, url=link.group(2))
            i = link.end()
        elif ch == "\\":
            out.add(ch)
            i += 1
        else:
            marker = "```" if source.startswith("```", i) else ch
            end = source.find(marker, i + len(marker))
            if end < 0:
                raise _md_unclosed(source, i)
            body = source[i + len(marker) : end]
            extra: dict[str, Any] = {}
            first, newline, rest = body.partition("\n")
            if marker == "```" and newline and first and " " not in first:
                extra, body = {"language": first}, rest
            start = out.pos
            out.add(body)
            out.entity(_MD_KINDS[marker], start, **extra)
            i = end + len(marker)
    return out.result()


def _md_unclosed(source: str, i: int) -> Exception:
    return cant_parse(f"Can't find end of the entity starting at byte offset {_byte(source, i)}")
