"""Markdown rendering and splitting: what is sent is what Telegram shows, in pieces that fit."""

from __future__ import annotations

import pytest
import telegramify_markdown
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity

from bot.telegram.streaming.render import (
    RenderedText,
    italic,
    join,
    plain,
    render_markdown,
    split_for_telegram,
    utf16_len,
)

FRAGMENTS = [
    "**",
    "*",
    "_",
    "`",
    "```",
    "```python\n",
    "\n```\n",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\t",
    "[link",
    "](https://example.org/a)",
    "# ",
    "- ",
    "> ",
    "1. ",
    "||",
    "~~",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "𝔘𝔫𝔦",
    "é",
    "\u0301",
    "word",
    "Paris ",
    "a" * 70,
    "x = 1  # comment\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
]
markdown = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=120).map(
    "".join
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key(entity: MessageEntity) -> tuple[object, ...]:
    return (entity.type, entity.offset, entity.length, entity.url, entity.language)


def check_split(
    rendered: RenderedText, pieces: list[RenderedText], limit: int, max_entities: int = 100
) -> None:
    """Every documented promise of `split_for_telegram`, checked exactly."""
    text = rendered.text.strip()
    lead = utf16_len(rendered.text) - utf16_len(rendered.text.lstrip())
    position = 0
    for index, piece in enumerate(pieces):
        assert piece.text, "no empty pieces"
        assert piece.text == piece.text.strip(), "no whitespace at a piece's ends"
        assert piece.utf16_len <= limit
        assert len(piece.entities) <= max_entities, "Telegram would drop the rest"
        gap = text[position : text.index(piece.text, position)] if index else ""
        assert gap == "" or gap.isspace(), "only whitespace lies between two pieces"
        assert text.startswith(piece.text, position + len(gap))
        start = position + len(gap)
        # Entities: exactly the original ones clipped to the piece, shifted to its start.
        first = lead + utf16_len(text[:start])
        stop = first + piece.utf16_len
        expected = []
        for entity in rendered.entities:
            begin, end = max(entity.offset, first), min(entity.offset + entity.length, stop)
            if end > begin:
                expected.append(
                    (entity.type, begin - first, end - begin, entity.url, entity.language)
                )
        assert [key(e) for e in piece.entities] == expected
        for entity in piece.entities:
            assert entity.length > 0 and entity.offset + entity.length <= piece.utf16_len
        position = start + len(piece.text)
    assert position == len(text), "nothing is lost at the end"


# -- rendering ---------------------------------------------------------------------------


def test_markdown_becomes_text_with_entities() -> None:
    rendered = render_markdown(
        "Paris is the capital of **France**. It lies on the *Seine*.\n\n"
        "```python\nprint('bonjour')\n```\n\nSee [the map](https://example.org/paris)."
    )
    assert rendered.text == (
        "Paris is the capital of France. It lies on the Seine.\n\nprint('bonjour')\n\nSee the map."
    )
    kinds = {(e.type, e.language, e.url) for e in rendered.entities}
    assert ("bold", None, None) in kinds and ("italic", None, None) in kinds
    assert ("pre", "python", None) in kinds
    assert ("text_link", None, "https://example.org/paris") in kinds
    assert all(isinstance(e, MessageEntity) for e in rendered.entities)


def test_offsets_count_utf16_units() -> None:
    rendered = render_markdown("😀 **bold**")
    (bold,) = rendered.entities
    assert (bold.offset, bold.length) == (3, 4)
    assert rendered.utf16_len == 7


@pytest.mark.parametrize(
    "partial",
    ["**bold without end", "```py\nunterminated", "[link](", "*", "`", "||spoiler", "> "],
)
def test_partial_markdown_never_raises(partial: str) -> None:
    rendered = render_markdown(partial)
    assert rendered.text == rendered.text.strip()


def test_a_converter_failure_falls_back_to_the_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(md: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(telegramify_markdown, "convert", broken)
    assert render_markdown("  **kept** as is ") == RenderedText("**kept** as is")


def test_lone_surrogates_are_replaced_rather_than_crash() -> None:
    rendered = render_markdown("a \ud800 b")
    rendered.text.encode("utf-8")
    assert rendered.text.startswith("a ")


def test_rendering_trims_like_telegram_and_keeps_entities_on_their_characters() -> None:
    rendered = render_markdown("```\n   code\n```")
    assert rendered.text == "code"
    assert [(e.type, e.offset, e.length) for e in rendered.entities] == [("pre", 0, 4)]


def test_equality_compares_every_entity_field() -> None:
    a = RenderedText("x", (MessageEntity("text_link", 0, 1, url="https://a.example"),))
    b = RenderedText("x", (MessageEntity("text_link", 0, 1, url="https://b.example"),))
    assert a != b
    assert a == RenderedText("x", (MessageEntity("text_link", 0, 1, url="https://a.example"),))


def test_join_shifts_the_second_part() -> None:
    joined = join(render_markdown("😀 hi"), italic("note"))
    assert joined.text == "😀 hi\n\nnote"
    assert [(e.type, e.offset, e.length) for e in joined.entities] == [("italic", 7, 4)]
    assert join(plain(""), italic("note")) == italic("note")


@SETTINGS
@given(markdown)
def test_any_markdown_renders_to_trimmed_text_with_entities_inside(md: str) -> None:
    rendered = render_markdown(md)
    assert rendered.text == rendered.text.strip()
    for entity in rendered.entities:
        assert entity.length > 0
        assert 0 <= entity.offset and entity.offset + entity.length <= rendered.utf16_len


# -- splitting ---------------------------------------------------------------------------


def test_short_text_is_one_piece() -> None:
    rendered = render_markdown("just **this**")
    assert split_for_telegram(rendered) == [rendered]


def test_whitespace_gives_no_pieces() -> None:
    assert split_for_telegram(RenderedText(" \n\n ")) == []
    assert split_for_telegram(RenderedText("")) == []


def test_paragraphs_are_kept_whole_and_the_break_dropped() -> None:
    paragraphs = [f"Paragraph {n}: " + "word " * 150 for n in range(12)]
    answer = "\n\n".join(p.strip() for p in paragraphs)
    pieces = split_for_telegram(render_markdown(answer))
    assert len(pieces) == 3
    assert "\n\n".join(p.text for p in pieces) == answer
    assert all(p.text.startswith("Paragraph") for p in pieces)


def test_without_paragraphs_a_line_break_is_used_then_a_space() -> None:
    lines = RenderedText("\n".join(["alpha beta"] * 10))
    assert [p.text for p in split_for_telegram(lines, limit=25)] == ["alpha beta\nalpha beta"] * 5
    spaced = RenderedText("alpha beta gamma delta")
    assert [p.text for p in split_for_telegram(spaced, limit=12)] == ["alpha beta", "gamma delta"]


def test_a_cut_filling_half_a_piece_beats_an_early_paragraph_break() -> None:
    text = "Hi\n\n" + "\n".join(["line of text"] * 30)
    pieces = split_for_telegram(RenderedText(text), limit=100)
    assert pieces[0].utf16_len > 50


def test_a_long_word_is_cut_hard_at_the_limit() -> None:
    pieces = split_for_telegram(RenderedText("a" * 10_000))
    assert [p.utf16_len for p in pieces] == [4096, 4096, 1808]
    assert "".join(p.text for p in pieces) == "a" * 10_000


def test_astral_characters_are_never_torn_apart() -> None:
    text = "😀" * 5000
    pieces = split_for_telegram(RenderedText(text))
    assert all(p.utf16_len <= 4096 for p in pieces)
    assert "".join(p.text for p in pieces) == text
    assert [p.utf16_len for p in split_for_telegram(RenderedText("😀😀😀"), limit=3)] == [2, 2, 2]


def test_emoji_sequences_and_accents_are_not_torn_apart() -> None:
    family = "👨\u200d👩\u200d👧"  # 8 UTF-16 units
    for limit in (4095, 4093, 4091):
        pieces = split_for_telegram(RenderedText(family * 1000), limit=limit)
        assert all(p.text.startswith("👨") and p.text.endswith("👧") for p in pieces)
    accented = "e\u0301" * 3000
    pieces = split_for_telegram(RenderedText(accented))
    assert all(p.text.startswith("e") and p.text.endswith("\u0301") for p in pieces)
    assert "".join(p.text for p in pieces) == accented


def test_a_code_block_that_fits_is_not_cut() -> None:
    code = "```python\n" + "\n".join(f"x{n} = {n}" for n in range(300)) + "\n```"
    rendered = render_markdown("Intro line. " * 100 + "\n\n" + code + "\n\nThe end.")
    pieces = split_for_telegram(rendered)
    holding = [p for p in pieces if any(e.type == "pre" for e in p.entities)]
    assert len(holding) == 1
    (pre,) = [e for e in holding[0].entities if e.type == "pre"]
    assert pre.length == next(e.length for e in rendered.entities if e.type == "pre")


def test_a_code_block_longer_than_a_piece_is_cut_at_lines_each_part_keeping_its_language() -> None:
    code = (
        "```python\n" + "\n".join(f"value_{n} = compute({n})  # step" for n in range(400)) + "\n```"
    )
    rendered = render_markdown("Here:\n\n" + code)
    pieces = split_for_telegram(rendered)
    assert len(pieces) >= 4
    assert pieces[0].text == "Here:"
    for piece in pieces[1:]:
        (pre,) = piece.entities
        assert (pre.type, pre.language, pre.offset, pre.length) == (
            "pre",
            "python",
            0,
            piece.utf16_len,
        )
        assert piece.text.startswith("value_") and piece.text.endswith("# step")
    check_split(rendered, pieces, 4096)


def test_a_gap_that_starts_right_after_code_is_outside_it() -> None:
    rendered = render_markdown("`code` word " * 5)
    pieces = split_for_telegram(rendered, limit=12)
    check_split(rendered, pieces, 12)
    assert all(not p.entities or p.entities[0].type == "code" for p in pieces)


@SETTINGS
@given(markdown, st.integers(min_value=2, max_value=300))
def test_any_rendering_splits_into_exact_fitting_pieces(md: str, limit: int) -> None:
    rendered = render_markdown(md)
    check_split(rendered, split_for_telegram(rendered, limit), limit)


@SETTINGS
@given(markdown, st.integers(min_value=1, max_value=60))
def test_long_answers_split_exactly_at_telegrams_limit(md: str, copies: int) -> None:
    rendered = render_markdown((md + "\n\n") * copies + "a" * 5000)
    check_split(rendered, split_for_telegram(rendered), 4096)


@SETTINGS
@given(
    st.text(alphabet=st.sampled_from(["a", " ", "\n", "😀", "é", "\t", "\xa0"]), max_size=400),
    st.integers(min_value=2, max_value=40),
)
def test_raw_text_with_any_whitespace_splits_exactly(text: str, limit: int) -> None:
    rendered = RenderedText(text)
    check_split(rendered, split_for_telegram(rendered, limit), limit)


@SETTINGS
@given(
    st.lists(
        st.sampled_from(["**b**", "*i*", "`c`", "[l](https://x.org)", " ", "\n"]), max_size=400
    )
)
def test_many_entities_stay_inside_their_pieces(parts: list[str]) -> None:
    rendered = render_markdown("".join(parts))
    check_split(rendered, split_for_telegram(rendered, 50), 50)


def test_an_answer_with_300_entities_is_cut_so_no_message_carries_more_than_100() -> None:
    rendered = render_markdown(" ".join(f"**w{n}**" for n in range(300)))
    assert len(rendered.entities) == 300 and rendered.utf16_len < 4096
    pieces = split_for_telegram(rendered)
    check_split(rendered, pieces, 4096)
    assert [len(p.entities) for p in pieces] == [100, 100, 100]


def test_an_entity_reaching_into_a_piece_counts_towards_its_limit() -> None:
    rendered = render_markdown("**" + " ".join(f"*w{n}*" for n in range(30)) + "**")
    pieces = split_for_telegram(rendered, max_entities=10)
    check_split(rendered, pieces, 4096, max_entities=10)
    assert len(pieces) > 3
    assert all(any(e.type == "bold" for e in p.entities) for p in pieces)


@SETTINGS
@given(
    st.lists(
        st.sampled_from(["**b**", "*i*", "`c`", "[l](https://x.org)", " ", "\n", "😀"]),
        max_size=300,
    ),
    st.integers(min_value=5, max_value=12),
    st.integers(min_value=2, max_value=400),
)
def test_any_rendering_keeps_each_piece_under_the_entity_limit(
    parts: list[str], most: int, limit: int
) -> None:
    rendered = render_markdown("".join(parts))
    check_split(rendered, split_for_telegram(rendered, limit, most), limit, most)
