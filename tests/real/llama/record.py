"""Provoke llama.cpp's server into each failure the bot must handle, and keep its answer.

Each case is one request and what the real server answered: status, content type and the
body byte for byte (the request's base64 audio, which the server repeats in its validation
dump, is replaced by `AUDIO_PLACEHOLDER`). `tests/fixtures/model_servers/` holds them for the
fake OpenAI server to replay; `tests/real/llama/test_recordings.py` checks they still match
the real server, and ``python -m tests.real.llama.record`` writes them anew.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.server_shapes import AUDIO_PLACEHOLDER, FIXTURES
from tests.real.llama.envs import LLAMA_CPP_PYTHON, ensure_llama_env
from tests.real.llama.server import MODEL_ALIAS, N_CTX, LlamaServer

LONG_PROMPT = "Tell me everything about the history of tea, in detail. " * 60
"""About 3,000 tokens for the tiny model's tokenizer: far over a 512-token window."""
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def silence_wav(seconds: float = 1.0) -> bytes:
    """16 kHz mono 16-bit WAV of silence, as the bot sends audio."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(int(32000 * seconds)))
    return out.getvalue()


AUDIO_B64 = base64.b64encode(silence_wav()).decode()


@dataclass(frozen=True)
class Case:
    """One request to provoke one answer; `name` is its fixture's file name."""

    name: str
    why: str
    content: str | list[dict[str, Any]]
    stream: bool
    max_tokens: int | None = None

    def body(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": MODEL_ALIAS,
            "messages": [{"role": "user", "content": self.content}],
            "stream": self.stream,
        }
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        return request


CASES = (
    Case(
        "llama_cpp_stream_overflow",
        f"a streamed prompt of ~3,000 tokens to a {N_CTX}-token window",
        LONG_PROMPT,
        stream=True,
    ),
    Case(
        "llama_cpp_overflow",
        f"the same prompt, not streamed, to a {N_CTX}-token window",
        LONG_PROMPT,
        stream=False,
    ),
    Case(
        "llama_cpp_image_part",
        "an image_url part, not streamed, to a text-only model (Phi-4's chat template)",
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}},
        ],
        stream=False,
    ),
    Case(
        "llama_cpp_image_part_streamed",
        "an image_url part, streamed, to a text-only model",
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}},
        ],
        stream=True,
    ),
    Case(
        "llama_cpp_audio_part",
        "an input_audio part (1 s of 16 kHz WAV), streamed, to a text-only model",
        [
            {"type": "text", "text": "What is said?"},
            {"type": "input_audio", "input_audio": {"data": AUDIO_B64, "format": "wav"}},
        ],
        stream=True,
    ),
)


def ask(base_url: str, case: Case) -> dict[str, Any]:
    """Send the case's request; its answer as a fixture holds it."""
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(case.body()).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            status, headers, raw = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as refused:
        status, headers, raw = refused.code, refused.headers, refused.read()
    body = raw.decode("utf-8").replace(AUDIO_B64, AUDIO_PLACEHOLDER)
    return {
        "server": f"llama-cpp-python {LLAMA_CPP_PYTHON} (python -m llama_cpp.server)",
        "request": case.why,
        "status": status,
        "headers": {"content-type": headers.get("content-type", "")},
        "body": body,
        "body_bytes": len(raw),
    }


def record_all(base_url: str, into: Path = FIXTURES) -> list[dict[str, Any]]:
    """Ask every case and write its fixture."""
    into.mkdir(parents=True, exist_ok=True)
    answers = []
    for case in CASES:
        answer = ask(base_url, case)
        text = json.dumps(answer, indent=1, ensure_ascii=False) + "\n"
        (into / f"{case.name}.json").write_text(text, encoding="utf-8")
        answers.append(answer)
    return answers


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as workdir:
        with LlamaServer(ensure_llama_env(), Path(workdir)) as server:
            for recorded in record_all(server.base_url):
                print(recorded["status"], recorded["body_bytes"], recorded["request"])
