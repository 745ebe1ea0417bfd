"""A real Gradio Blocks app laid out like the Phi-4-multimodal Space, reporting what it receives.

Runs inside a dedicated venv holding one Gradio version (5.x or 6.x); it imports nothing of
this project. Layout: a `messages` chatbot, a multimodal textbox whose `submit` adds the turn
(not queued), chained with `.then` to a streaming answer function taking two inputs, the chat
history and a second (hidden) chatbot holding this turn's file messages. `--extra-events N`
defines N unrelated events first, so the chat functions are not numbered as on the public Space.

The answer is a JSON report of exactly what arrived, streamed a few characters at a time:
`{"gradio", "texts", "files": [{"name", "size", "sha256", "input"}], "counts": {sha256: n}}`
(`input` is `history` or `turn`). A text containing one of these words picks a failure:
`#quota` raises `gr.Error` with ZeroGPU's quota sentence, `#crash` raises a plain exception
after a few chunks (Gradio reports it as `"error": null` since `show_error` is off), `#slow`
streams a chunk every half second for a minute (for cancel and queue tests) and records when
it was cancelled, and `#summary` answers
with one plain sentence instead of JSON (for tests that read the answer in a Telegram chat).

Usage: ``python space_app.py --port 7861 [--extra-events 5] [--record events.jsonl]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import Counter
from typing import Any

import gradio as gr

MAJOR = int(gr.__version__.split(".")[0])
QUOTA_SENTENCE = (
    "You have exceeded your GPU quota (60s requested vs. 0s left). "
    "Create a free account to get more daily usage quota."
)
CHUNK = 6


def chatbot(**kwargs: Any) -> gr.Chatbot:
    """A messages chatbot: Gradio 5 needs `type="messages"`, Gradio 6 knows no other kind."""
    if MAJOR < 6:
        kwargs["type"] = "messages"
    return gr.Chatbot(**kwargs)


def parts(content: Any) -> list[Any]:
    """The pieces of one message's content as the answer function was given them."""
    if isinstance(content, list):
        return content
    return [content]


def file_path(part: Any) -> str | None:
    """The local path of a file piece: a tuple in Gradio 5, a `{"type": "file"}` dict in 6."""
    if isinstance(part, tuple) and part and isinstance(part[0], str):
        return part[0]
    if isinstance(part, dict) and isinstance(part.get("file"), dict):
        path = part["file"].get("path")
        return path if isinstance(path, str) else None
    if isinstance(part, dict) and isinstance(part.get("path"), str):
        return str(part["path"])
    return None


def text_of(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and part.get("type") == "text":
        return str(part.get("text", ""))
    return None


def describe(history: list[dict[str, Any]], turn: list[dict[str, Any]]) -> dict[str, Any]:
    """The report: every text and every file the two inputs carried."""
    texts: list[list[str]] = []
    files: list[dict[str, Any]] = []
    for source, messages in (("history", history or []), ("turn", turn or [])):
        for message in messages:
            for part in parts(message.get("content")):
                text = text_of(part)
                if text is not None:
                    texts.append([message.get("role", ""), text])
                    continue
                path = file_path(part)
                if path is None:
                    texts.append([message.get("role", ""), f"<unreadable {type(part).__name__}>"])
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
                files.append(
                    {
                        "name": os.path.basename(path),
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "input": source,
                    }
                )
    counts = Counter(f["sha256"] for f in files)
    return {"gradio": gr.__version__, "texts": texts, "files": files, "counts": dict(counts)}


def summary(report: dict[str, Any]) -> str:
    """The report in words that survive Markdown rendering."""
    names = [f["name"].lower() for f in report["files"]]
    images = sum(n.endswith((".png", ".jpg", ".jpeg", ".webp", ".gif")) for n in names)
    repeats = max(report["counts"].values(), default=0)
    return (
        f"summary: {len(names)} files, {images} images, {len(names) - images} other, "
        f"each at most {repeats} times, {len(report['texts'])} texts"
    )


def add_message(
    history: list[dict[str, Any]] | None, message: dict[str, Any] | None, turn: Any
) -> tuple[Any, Any, Any]:
    """Put the turn into the chatbot as the Space's UI does (files first, then the text)."""
    history = list(history or [])
    message = message or {}
    file_messages = [{"role": "user", "content": {"path": f}} for f in message.get("files", [])]
    history.extend(file_messages)
    if message.get("text"):
        history.append({"role": "user", "content": message["text"]})
    return history, gr.MultimodalTextbox(value=None), file_messages


def make_answer(record: str | None) -> Any:
    def note(event: dict[str, Any]) -> None:
        if record:
            with open(record, "a", encoding="utf-8") as sink:
                sink.write(json.dumps(event) + "\n")

    def answer(history: list[dict[str, Any]], turn: list[dict[str, Any]]) -> Any:
        report = describe(history, turn)
        said = " ".join(text for role, text in report["texts"] if role == "user")
        note({"event": "started", "report": report})
        if "#quota" in said:
            raise gr.Error(QUOTA_SENTENCE)
        body = summary(report) if "#summary" in said else json.dumps(report)
        slow = "#slow" in said
        if slow:
            body = body.ljust(120 * CHUNK)
        shown = [*history, {"role": "assistant", "content": ""}]
        sent = 0
        try:
            for start in range(0, len(body), CHUNK):
                if "#crash" in said and start >= 3 * CHUNK:
                    raise RuntimeError("the model crashed mid-answer")
                sent += 1
                shown[-1] = {"role": "assistant", "content": body[: start + CHUNK]}
                yield shown
                time.sleep(0.5 if slow else 0.002)
        except GeneratorExit:
            note({"event": "cancelled", "chunks": sent})
            raise
        note({"event": "finished", "chunks": sent})

    return answer


def build(extra_events: int, record: str | None) -> gr.Blocks:
    with gr.Blocks(title="Phi-4-multimodal (test double)") as demo:
        dummies = [gr.Button(f"dummy {i}") for i in range(extra_events)]
        dummy_out = gr.Textbox(visible=False)
        for i, button in enumerate(dummies):
            button.click(lambda i=i: f"dummy {i}", None, dummy_out, queue=False)
        history = chatbot(label="Phi-4-multimodal")
        turn_files = chatbot(visible=False)
        box = gr.MultimodalTextbox(
            file_types=["image", "audio"], file_count="multiple", show_label=False
        )
        box.submit(
            add_message, [history, box, turn_files], [history, box, turn_files], queue=False
        ).then(make_answer(record), [history, turn_files], history)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--extra-events", type=int, default=5)
    parser.add_argument("--record", default=None, help="append answer events to this JSONL file")
    args = parser.parse_args()
    demo = build(args.extra_events, args.record)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=False)


if __name__ == "__main__":
    main()
