"""The `phi4bot chat` and `phi4bot check` commands as a user runs them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.e2e.bot_process import ROOT
from tests.fakes.openai_server import FakeOpenAIServer


async def run_cli(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4", "OPENAI", "HF_"))}
    base.update(env, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=base,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_chat_answers_a_prompt_on_stdout(tmp_path: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.answer = "Forty-two."
        code, out, _ = await run_cli(
            tmp_path,
            "chat",
            "-p",
            "What is six times seven?",
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=model.base_url,
        )
        assert code == 0
        assert out.strip() == "Forty-two."
        assert model.chat_requests[-1].json["messages"][-1]["content"] == "What is six times seven?"


async def test_check_succeeds_when_the_backend_answers_and_hides_secrets(tmp_path: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.answer = "OK"
        model.api_key = "sk-hidden-value"
        code, out, err = await run_cli(
            tmp_path,
            "check",
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY="sk-hidden-value",
            TELEGRAM_BOT_TOKEN="1:secret-token-value",
        )
        assert code == 0, out + err
        assert "sk-hidden-value" not in out + err
        assert "secret-token-value" not in out + err


async def test_check_fails_with_one_line_when_the_backend_is_down(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        tmp_path,
        "check",
        PHI4_BACKEND="openai",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        PHI4_CONNECT_TIMEOUT="2",
    )
    assert code == 1
    assert "Traceback" not in out + err
    assert "FAILED" in out + err


async def test_a_configuration_mistake_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    code, out, err = await run_cli(tmp_path, "chat", "-p", "?", PHI4_OPENAI_MEDIA="images")
    assert code != 0
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "PHI4_OPENAI_MEDIA" in lines[0] and "images" in lines[0]


async def test_allowed_chats_without_allowed_users_stops_the_start_with_one_sentence(
    tmp_path: Path,
) -> None:
    code, _, err = await run_cli(
        tmp_path,
        "run",
        TELEGRAM_BOT_TOKEN="1:unused-token-value",
        PHI4BOT_ALLOWED_CHATS="-1001234",
    )
    assert code == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("phi4bot: PHI4BOT_ALLOWED_CHATS limits only the groups the bot speaks in;")
    )
    assert "Set PHI4BOT_ALLOWED_USERS" in err and "Traceback" not in err
