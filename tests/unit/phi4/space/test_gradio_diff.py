"""Gradio diff replay and answer extraction, as the Space client relies on them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.phi4.space.gradio_diff import (
    AnswerTracker,
    DiffError,
    apply_diff,
    content_text,
    last_assistant_text,
)

HISTORY: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


def test_append_extends_the_string_at_a_path() -> None:
    value = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}]
    assert apply_diff(value, [["append", [1, "content"], "lo"]])[1]["content"] == "Hello"


def test_apply_diff_leaves_the_old_value_untouched() -> None:
    value = [{"role": "assistant", "content": "a"}]
    new = apply_diff(value, [["append", [0, "content"], "b"], ["add", [1], {"role": "user"}]])
    assert value == [{"role": "assistant", "content": "a"}]
    assert new == [{"role": "assistant", "content": "ab"}, {"role": "user"}]


def test_replace_add_and_delete_work_on_lists_and_dicts() -> None:
    value: Any = {"a": [1, 2, 3], "b": {"c": "x"}}
    value = apply_diff(
        value,
        [
            ["replace", ["b", "c"], "y"],
            ["add", ["a", 1], 9],
            ["delete", ["a", 0], None],
            ["add", ["b", "d"], True],
            ["delete", ["b", "c"], None],
        ],
    )
    assert value == {"a": [9, 2, 3], "b": {"d": True}}


def test_edits_with_an_empty_path_act_on_the_whole_value() -> None:
    assert apply_diff("ab", [["append", [], "c"]]) == "abc"
    assert apply_diff("ab", [["replace", [], ["new"]]]) == ["new"]


def test_edits_that_do_not_fit_raise_diff_error() -> None:
    with pytest.raises(DiffError):
        apply_diff([{"content": "a"}], [["append", [3, "content"], "b"]])
    with pytest.raises(DiffError):
        apply_diff({"a": 1}, [["frobnicate", ["a"], 2]])
    with pytest.raises(DiffError):
        apply_diff("text", [["append", ["x"], "y"]])
    with pytest.raises(DiffError):
        apply_diff([], [["append", []]])


def test_content_text_reads_every_shape_gradio_uses() -> None:
    assert content_text("plain") == "plain"
    assert content_text({"text": "wrapped"}) == "wrapped"
    assert content_text(["a", {"type": "text", "text": "b"}, {"file": {"path": "/x"}}]) == "ab"
    assert content_text({"file": {"path": "/x"}}) == ""
    assert content_text(None) == ""


def test_last_assistant_text_ignores_an_older_answer_when_a_user_message_is_last() -> None:
    value = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "q2"},
    ]
    assert last_assistant_text(value) == ""
    assert last_assistant_text([*value, {"role": "assistant", "content": "new"}]) == "new"


def test_last_assistant_text_reads_the_legacy_pairs_form() -> None:
    assert last_assistant_text([["hi", "hello"]]) == "hello"
    assert last_assistant_text([]) == ""


def test_tracker_yields_the_full_value_then_the_appended_pieces() -> None:
    tracker = AnswerTracker()
    first = [[*HISTORY, {"role": "assistant", "content": "He"}]]
    assert tracker.update(first) == "He"
    assert tracker.update([[["append", [1, "content"], "llo"]]]) == "llo"
    final = [[*HISTORY, {"role": "assistant", "content": "Hello!"}]]
    assert tracker.finish(final) == "!"
    assert tracker.answer == "Hello!" and not tracker.diverged


def test_tracker_holds_back_after_a_rewrite_until_the_answer_extends_again() -> None:
    tracker = AnswerTracker()
    assert (
        tracker.update([[*HISTORY, {"role": "assistant", "content": "Hello wor"}]]) == "Hello wor"
    )
    assert tracker.update([[["replace", [1, "content"], "Hello"]]]) == ""
    assert tracker.update([[["append", [1, "content"], " world"]]]) == "ld"
    assert tracker.finish([[*HISTORY, {"role": "assistant", "content": "Hello world."}]]) == "."
    assert tracker.answer == "Hello world."


def test_tracker_keeps_streamed_text_when_the_final_answer_contradicts_it() -> None:
    tracker = AnswerTracker()
    tracker.update([[*HISTORY, {"role": "assistant", "content": "Hello  "}]])
    assert tracker.finish([[*HISTORY, {"role": "assistant", "content": "Hello"}]]) == ""
    assert tracker.diverged and tracker.answer == "Hello  "


def test_tracker_picks_the_chatbot_among_several_outputs() -> None:
    tracker = AnswerTracker()
    assert tracker.update([None, [*HISTORY, {"role": "assistant", "content": "x"}]]) == "x"
    assert tracker.update([[], [["append", [1, "content"], "y"]]]) == "y"


def test_tracker_rejects_a_change_in_the_number_of_outputs() -> None:
    tracker = AnswerTracker()
    tracker.update([[*HISTORY]])
    with pytest.raises(DiffError):
        tracker.update([[], []])


def _gradio_diff(old: str, new: str) -> list[list[Any]]:
    """Gradio's own rule: appends when the text grew at its end, else replace."""
    if new.startswith(old):
        return [["append", [1, "content"], new[len(old) :]]] if new != old else []
    return [["replace", [1, "content"], new]]


@given(st.lists(st.text(max_size=8), max_size=30))
def test_diffs_computed_from_a_growing_string_reproduce_it(pieces: list[str]) -> None:
    tracker = AnswerTracker()
    text = ""
    given_out = [tracker.update([[*HISTORY, {"role": "assistant", "content": ""}]])]
    for piece in pieces:
        given_out.append(tracker.update([_gradio_diff(text, text + piece)]))
        text += piece
    assert "".join(given_out) == text
    assert tracker.outputs == [[*HISTORY, {"role": "assistant", "content": text}]]


@given(st.lists(st.text(max_size=6), min_size=1, max_size=20), st.data())
def test_streamed_text_is_always_a_prefix_of_what_the_space_shows(
    states: list[str], data: st.DataObject
) -> None:
    tracker = AnswerTracker()
    shown = ""
    streamed = tracker.update([[*HISTORY, {"role": "assistant", "content": ""}]])
    for state in states:
        streamed += tracker.update([_gradio_diff(shown, state)])
        shown = state
        assert streamed == tracker.answer
    final = data.draw(st.sampled_from([shown, shown + "!", "rewritten"]))
    streamed += tracker.finish([[*HISTORY, {"role": "assistant", "content": final}]])
    assert streamed == tracker.answer
    assert streamed == final or tracker.diverged
