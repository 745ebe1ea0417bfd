"""Gradio 5 streaming values: applying diff operations and reading the answer they carry.

A queued Gradio function that streams sends its output's full value once, then lists of
`[op, path, value]` edits against the value so far. `apply_diff` replays them without touching
the old value; `last_assistant_text` reads the answer out of a chatbot "messages" value; and
`AnswerTracker` turns the sequence of values into the text increments a caller is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PathKey = int | str


class DiffError(ValueError):
    """An edit that does not fit the value it is applied to: the stream cannot be trusted."""


def apply_diff(value: Any, edits: Sequence[Sequence[Any]]) -> Any:
    """Return `value` with every `[op, path, new]` edit applied in order.

    Containers along each edited path are copied, so the caller's value is never mutated and
    an earlier value can be kept for comparison.
    """
    for edit in edits:
        if not isinstance(edit, (list, tuple)) or len(edit) != 3:
            raise DiffError(f"malformed edit {edit!r}")
        op, path, new = edit
        if not isinstance(path, (list, tuple)):
            raise DiffError(f"malformed path {path!r}")
        value = _edit(value, op, list(path), new)
    return value


def _edit(target: Any, op: str, path: list[PathKey], new: Any) -> Any:
    if not path:
        if op == "replace":
            return new
        if op == "append":
            return _appended(target, new)
        raise DiffError(f"{op!r} needs a path")
    key, rest = path[0], path[1:]
    index: Any  # a list position or a dict key, by the container
    if isinstance(target, list):
        copy: Any = list(target)
        index = _list_index(key, len(copy), inserting=op == "add" and not rest)
    elif isinstance(target, dict):
        copy, index = dict(target), key
    else:
        raise DiffError(f"cannot follow {key!r} into {type(target).__name__}")
    try:
        if rest:
            copy[index] = _edit(copy[index], op, rest, new)
        elif op == "replace":
            copy[index] = new
        elif op == "append":
            copy[index] = _appended(copy[index], new)
        elif op == "add":
            if isinstance(copy, list):
                copy.insert(index, new)
            else:
                copy[index] = new
        elif op == "delete":
            del copy[index]
        else:
            raise DiffError(f"unknown operation {op!r}")
    except (KeyError, IndexError) as exc:
        raise DiffError(f"{op!r} at missing {key!r}") from exc
    return copy


def _list_index(key: PathKey, length: int, *, inserting: bool) -> int:
    try:
        index = int(key)
    except (TypeError, ValueError) as exc:
        raise DiffError(f"list index {key!r} is not a number") from exc
    if index < 0:
        index += length
    if not 0 <= index < length + (1 if inserting else 0):
        raise DiffError(f"list index {key!r} out of range")
    return index


def _appended(current: Any, new: Any) -> Any:
    if isinstance(current, str) and isinstance(new, str):
        return current + new
    if isinstance(current, list) and isinstance(new, list):
        return current + new
    if current is None:
        return new
    raise DiffError(f"cannot append {type(new).__name__} to {type(current).__name__}")


def content_text(content: Any) -> str:
    """The text of one message's `content`, whichever shape this Gradio version used.

    Plain strings are the common case; some versions wrap text as `{"text": ...}` or a list of
    parts (`"..."` or `{"type": "text", "text": ...}`); file and component contents carry no text.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, (list, tuple)):
        return "".join(content_text(part) for part in content)
    return ""


def is_messages_value(value: Any) -> bool:
    """Whether an output looks like a chatbot in `type="messages"` form."""
    return isinstance(value, list) and all(
        isinstance(item, dict) and "role" in item for item in value
    )


def last_assistant_text(value: Any) -> str:
    """The answer in a chatbot value: the last message's text when the assistant wrote it.

    A value ending in a user message means the answer has not started, so an older assistant
    message is deliberately not returned. The legacy pairs form (`[[user, bot], ...]`) is read too.
    """
    if not isinstance(value, list) or not value:
        return ""
    last = value[-1]
    if isinstance(last, dict):
        return content_text(last.get("content")) if last.get("role") == "assistant" else ""
    if isinstance(last, (list, tuple)) and len(last) == 2:
        return content_text(last[1])
    return ""


def chat_output(outputs: Sequence[Any]) -> Any:
    """The chatbot among a function's outputs: the first messages-shaped one, else the first."""
    for output in outputs:
        if is_messages_value(output) and output:
            return output
    return outputs[0] if outputs else None


class AnswerTracker:
    """Keeps a function's running outputs and hands out only the answer text not yet given.

    Rule for rewrites: text already handed out is never taken back. When the Space replaces
    earlier text, nothing is handed out until its answer again extends what was given; at the
    end the rest of the final answer is handed out if it extends it. If the final answer
    contradicts what was given, `diverged` is set and the given text stands as the answer.
    """

    def __init__(self) -> None:
        self.outputs: list[Any] | None = None
        self._given = ""
        self.diverged = False

    def update(self, data: Sequence[Any]) -> str:
        """Take one `process_generating` data list and return the new text (maybe empty)."""
        if self.outputs is None:
            self.outputs = list(data)
        else:
            if len(data) != len(self.outputs):
                raise DiffError("the number of outputs changed mid-stream")
            self.outputs = [
                apply_diff(current, edits)
                for current, edits in zip(self.outputs, data, strict=True)
            ]
        return self._advance(last_assistant_text(chat_output(self.outputs)))

    def finish(self, data: Sequence[Any]) -> str:
        """Take `process_completed`'s full data list and return whatever is still owed."""
        self.outputs = list(data)
        answer = last_assistant_text(chat_output(self.outputs))
        rest = self._advance(answer)
        self.diverged = not answer.startswith(self._given)
        return rest

    @property
    def answer(self) -> str:
        """The answer text given so far."""
        return self._given

    def _advance(self, current: str) -> str:
        if not current.startswith(self._given):
            return ""
        new = current[len(self._given) :]
        self._given = current
        return new
