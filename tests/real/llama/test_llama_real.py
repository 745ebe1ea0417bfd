"""`phi4bot chat`, `check` and `run` against llama.cpp's real server and the tiny model.

The server's window is 512 tokens; the tiny model answers every prompt with
" Hello from the tiny llama!" (six tokens), so what each test sees is predictable.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.e2e.bot_process import ROOT
from tests.e2e.conftest import StartBot
from tests.fakes.server_shapes import recording
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_png
from tests.real.llama.record import CASES, Case, silence_wav
from tests.real.llama.record import ask as ask_server
from tests.real.llama.server import MODEL_ALIAS, LlamaServer

ANSWER = "Hello from the tiny llama!"
pytestmark = pytest.mark.timeout(3600)  # the first test may wait for llama.cpp to compile


async def run_cli(
    server: LlamaServer, tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> tuple[int, str, str]:
    """Run `phi4bot ARGS` against the server; its exit code, stdout and stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4", "OPENAI", "HF_"))}
    base.update(
        PYTHONPATH=str(ROOT),
        PHI4_BACKEND="openai",
        OPENAI_BASE_URL=server.base_url,
        PHI4_MODEL=MODEL_ALIAS,
        **env,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=base,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


DROPPED = "(the attached files were dropped)"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def told(stderr: str) -> list[str]:
    """What `chat` told the user on stderr: every line but the log's."""
    return [line for line in stderr.splitlines() if not LOG_LINE.match(line)]


def chat_posts(server: LlamaServer) -> int:
    """How many chat requests the server has logged so far (uvicorn's access lines)."""
    return server.log_path.read_text(errors="replace").count('"POST /v1/chat/completions HTTP')


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_recorded_answers_the_fake_replays_are_what_the_server_answers(
    llama_server: LlamaServer, case: Case
) -> None:
    now, then = ask_server(llama_server.base_url, case), recording(case.name)
    assert (now["status"], now["headers"]) == (then["status"], then["headers"])
    assert now["body"][:300] == then["body"][:300]
    assert abs(now["body_bytes"] - then["body_bytes"]) <= then["body_bytes"] // 20


async def test_check_says_the_server_answers(llama_server: LlamaServer, tmp_path: Path) -> None:
    code, out, err = await run_cli(llama_server, tmp_path, "check", OPENAI_API_KEY="x")
    assert code == 0, out + err
    assert "answers" in out and ANSWER[:20] in out
    assert "OK: 1 of 1 can answer." in out
    assert "LOG_FORMAT = text" in out, "a one-letter key must not mangle other words"


async def test_a_20_turn_chat_over_a_512_token_window_answers_every_turn(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    lines = [f"Turn {n}: tell me something about the number {n}, please." for n in range(20)]
    code, out, err = await run_cli(llama_server, tmp_path, "chat", stdin="\n".join(lines) + "\n")
    answers = [line.strip() for line in out.splitlines()]
    assert answers == [ANSWER] * len(lines), (out, err)
    assert code == 0
    assert told(err) == [], "no failure, no notice"


async def test_an_image_to_the_text_only_model_is_one_sentence_and_no_retry(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(make_png(40, 30, (255, 0, 0)))
    before = chat_posts(llama_server)
    code, out, err = await run_cli(
        llama_server, tmp_path, "chat", "--image", str(image), "-p", "What is this?"
    )
    assert code == 1
    assert out.strip() == ""
    assert told(err) == ["This model takes text and audio, not images.", DROPPED]
    assert chat_posts(llama_server) - before == 1
    assert "retrying" not in err


async def test_an_audio_part_to_the_text_only_model_is_one_sentence_and_no_retry(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    audio = tmp_path / "voice.wav"
    audio.write_bytes(silence_wav(1.0))
    before = chat_posts(llama_server)
    code, out, err = await run_cli(
        llama_server, tmp_path, "chat", "--audio", str(audio), "-p", "What is said?"
    )
    assert code == 1
    assert out.strip() == ""
    assert told(err) == ["This model takes text and images, not audio.", DROPPED]
    assert chat_posts(llama_server) - before == 1
    assert "retrying" not in err


async def test_a_tiny_max_tokens_shows_the_cut_off_notice(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    code, out, err = await run_cli(
        llama_server, tmp_path, "chat", "-p", "Hello?", PHI4_MAX_TOKENS="3"
    )
    assert code == 0
    assert out.strip() == "Hello from the"
    assert "(the answer was cut at the model's length limit)" in told(err)


async def test_after_a_failed_stream_the_next_request_needs_no_retry(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    long = "Tell me everything about the history of tea, in detail. " * 60
    code, out, err = await run_cli(
        llama_server, tmp_path, "chat", stdin=f"{long}\nHello?\n", LOG_LEVEL="INFO"
    )
    assert code == 0, "the last answer was given"
    assert out.strip() == ANSWER, err
    assert "closed the answer without sending anything" in err
    assert "retrying" not in err


async def test_the_bot_answers_in_telegram_and_tells_a_photo_it_cannot_take(
    llama_server: LlamaServer, tg: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(OPENAI_BASE_URL=llama_server.base_url, PHI4_MODEL=MODEL_ALIAS)
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "Hello there")
    await tg.wait_until(
        lambda: any(m.text == ANSWER for m in tg.messages(42)), timeout=120, what="an answer"
    )
    tg.send_photo(alice.chat, alice, make_png(40, 30, (0, 0, 255)), caption="What is this?")
    await tg.wait_until(
        lambda: any("not images" in m.text for m in tg.messages(42)),
        timeout=120,
        what="the refusal",
    )
    tg.send_text(alice.chat, alice, "And now?")
    await tg.wait_until(
        lambda: sum(m.text == ANSWER for m in tg.messages(42)) == 2, timeout=120, what="answer"
    )
