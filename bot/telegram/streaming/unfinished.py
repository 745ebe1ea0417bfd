"""Markdown cut off mid-stream, settled so that its partial rendering reads as it will end.

An answer is shown while it is written, and the model's text stops anywhere: inside a code
block, after the `**` that opens a bold phrase, halfway through the two asterisks. Rendered
as it is, that flashes raw markers (`The **capi`) until the next edit. Settled first, the
open code block and the open inline spans of the last paragraph are closed, and a marker
still being typed is left out (a link being written shows its text), so each edit shows
what the finished answer will show.
Only the partial renderings pass through here; the final text is rendered as written.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_DANGLING = re.compile(r"(?:^|(?<=\s))[*_`~]+$")
"""Markers at the very end after a space: an opening being typed (`The *`), nothing yet to
format."""
_OPEN_LINK = re.compile(r"\[([^\[\]\n]*)(?:\](?:\([^)\s]*)?)?$")
"""A link still being written (`[the docs](https://exa`): its text alone, until it closes."""
_PAIRED = ("**", "__", "~~")
"""Inline markers that open and close alike and cannot mean anything else in prose (a lone
`*` or `_` can: 2 * 3, snake_case)."""


def settle_unfinished(md: str) -> str:
    """`md` with its open code block or its last paragraph's open spans closed."""
    fences = list(_FENCE.finditer(md))
    if len(fences) % 2:
        opening = fences[-1]
        if "\n" not in md[opening.start() :]:  # the fence line itself is being written
            return md[: opening.start()].rstrip()
        fence = opening.group(1)
        body, _, last_line = md.rpartition("\n")
        if last_line.strip() and not last_line.strip().strip(fence[0]):
            md = body  # the closing fence is being written: `print(1)\n``
        return md + ("" if md.endswith("\n") else "\n") + fence
    body_start = fences[-1].end() if fences else 0
    gap = md.rfind("\n\n", body_start)
    paragraph_start = gap + 2 if gap >= 0 else body_start
    head, paragraph = md[:paragraph_start], md[paragraph_start:]
    paragraph = _OPEN_LINK.sub(r"\1", _DANGLING.sub("", paragraph)).rstrip()
    if not paragraph:
        return head.rstrip()
    closers = _closers(paragraph)
    if closers[:2] in _PAIRED and paragraph.endswith(closers[0]):
        closers = closers[1:]  # the closing pair is half written: `**capital*`
    return head + paragraph + closers


def _closers(paragraph: str) -> str:
    """What closes the paragraph's open inline spans, innermost first."""
    opened: list[tuple[int, str]] = []
    if paragraph.count("`") % 2:
        opened.append((paragraph.rfind("`"), "`"))
        paragraph = paragraph[: paragraph.rfind("`")]
    prose = _CODE_SPAN.sub(lambda span: " " * len(span.group()), paragraph)
    for marker in _PAIRED:
        if prose.count(marker) % 2:
            opened.append((prose.rfind(marker), marker))
    return "".join(marker for _, marker in sorted(opened, reverse=True))
