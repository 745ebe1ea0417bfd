"""settle_unfinished: a partial answer renders as the finished one will, never with raw
markers."""

from __future__ import annotations

import pytest

from bot.telegram.streaming.render import render_markdown
from bot.telegram.streaming.unfinished import settle_unfinished

FINISHED = (
    "The **capital** of Peru is `Lima`, ~~Cusco~~.\n\n"
    "```python\nprint('hi')\n```\n\n"
    "Use __both__ **and `code` here**.\n\n"
    "## Steps\n\n- first **one**\n- then [the docs](https://example.org/a_b) and 2 * 3\n\n"
    "~~~\nraw ** text\n~~~\n\nDone: `x = 2 ** 3`."
)


@pytest.mark.parametrize(
    ("partial", "settled"),
    [
        ("The **capi", "The **capi**"),
        ("The **capital ", "The **capital**"),
        ("The *", "The"),
        ("The **", "The"),
        ("see `Li", "see `Li`"),
        ("**and `code", "**and `code`**"),
        ("~~Cus", "~~Cus~~"),
        ("```python\nprint(", "```python\nprint(\n```"),
        ("```python\nprint('hi')\n", "```python\nprint('hi')\n```"),
        ("Text\n\n```pyt", "Text"),
        ("a **b** c", "a **b** c"),
        ("2 * 3 = 6 and snake_case", "2 * 3 = 6 and snake_case"),
        ("**one\n\ntwo **thr", "**one\n\ntwo **thr**"),
        ("`a ** b` and c", "`a ** b` and c"),
        ("see [the docs](https://exa", "see the docs"),
        ("see [the do", "see the do"),
        ("see [the docs](https://example.org) now", "see [the docs](https://example.org) now"),
    ],
)
def test_open_spans_are_closed_and_markers_being_typed_left_out(partial: str, settled: str) -> None:
    assert settle_unfinished(partial) == settled


def test_every_prefix_of_an_answer_renders_without_a_marker_the_answer_does_not_show() -> None:
    final = render_markdown(FINISHED).text
    for cut in range(1, len(FINISHED) + 1):
        shown = render_markdown(settle_unfinished(FINISHED[:cut])).text
        stray = [c for c in "*_`~" if shown.count(c) > final.count(c)]
        assert not stray, f"{FINISHED[:cut]!r} shows {shown!r}"
