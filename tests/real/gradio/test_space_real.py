"""The Space backend, `phi4bot chat` and `phi4bot check` against real Gradio 5 and 6 servers.

The served app (`space_app.py`) answers with a JSON report of what its answer function was
given, so each test states exactly what must arrive: every text once, every file once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import types
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.phi4.conversation import Attachment, Conversation, QueuePosition, Turn
from bot.phi4.errors import BackendUnavailable, QuotaExceeded
from bot.phi4.space import SpaceBackend
from bot.phi4.space.gradio_config import PUBLIC_SPACE_ENDPOINTS, ChatEndpoints, find_chat_endpoints
from tests.media_factory import make_jpeg, make_ogg_opus, make_png, make_wav
from tests.real.gradio.server import GradioServer

pytestmark = pytest.mark.timeout(900)
"""The first test of a session may have to create the Gradio venvs."""

ROOT = Path(__file__).resolve().parents[3]
QUOTA = "You have exceeded your GPU quota (60s requested vs. 0s left)."


@dataclass
class Traffic:
    """Every HTTP request the backend made, as `METHOD path`."""

    requests: list[str] = field(default_factory=list)

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for r in self.requests if r.startswith(method + " ") and r.endswith(suffix))


@contextlib.asynccontextmanager
async def space_backend(
    server: GradioServer, **kwargs: Any
) -> AsyncIterator[tuple[SpaceBackend, Traffic]]:
    traffic = Traffic()

    async def on_start(
        session: aiohttp.ClientSession,
        context: types.SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        traffic.requests.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with SpaceBackend(
            server.url, session=session, stream_timeout=30.0, **kwargs
        ) as backend:
            yield backend, traffic


def user(text: str, *attachments: Attachment) -> Turn:
    return Turn("user", text, attachments)


async def answer(backend: SpaceBackend, turns: tuple[Turn, ...], **kwargs: Any) -> str:
    conversation = Conversation(turns, kwargs.pop("system", None))
    return "".join([piece async for piece in backend.stream(conversation, **kwargs)])


def report(text: str) -> dict[str, Any]:
    parsed = json.loads(text)
    assert isinstance(parsed, dict)
    return parsed


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png(color: tuple[int, int, int] = (200, 40, 30)) -> Attachment:
    return Attachment(make_png(color=color), "image/png", "photo.png")


async def test_a_text_turn_arrives_once_in_the_format_this_gradio_validates(
    gradio_server: GradioServer,
) -> None:
    async with space_backend(gradio_server) as (backend, traffic):
        got = report(await answer(backend, (user("What is Phi-4?"),)))
        assert got["gradio"] == gradio_server.env.version
        assert got["texts"] == [["user", "What is Phi-4?"]]
        assert got["files"] == []
        assert traffic.count("POST", "/upload") == 0


async def test_renumbered_chat_functions_are_found_in_the_config(
    gradio_server: GradioServer,
) -> None:
    found = find_chat_endpoints(gradio_server.config)
    assert found == ChatEndpoints(add_fn=5, answer_fn=6, trigger_id=9) != PUBLIC_SPACE_ENDPOINTS
    async with space_backend(gradio_server) as (backend, traffic):
        for text in ("one", "two"):
            assert report(await answer(backend, (user(text),)))["texts"] == [["user", text]]
    assert traffic.count("GET", "/config") == 1


async def test_several_turns_carry_the_conversation_once_with_the_system_prompt(
    gradio_server: GradioServer,
) -> None:
    turns = (
        user("My name is Ada."),
        Turn("assistant", "Hello Ada."),
        user("What is my name?"),
    )
    async with space_backend(gradio_server) as (backend, _):
        got = report(await answer(backend, turns, system="Be brief."))
    assert got["texts"] == [
        ["user", "Be brief.\n\nMy name is Ada."],
        ["assistant", "Hello Ada."],
        ["user", "What is my name?"],
    ]


@pytest.mark.parametrize(
    "attachment",
    [
        pytest.param(Attachment(make_png(), "image/png", "photo.png"), id="png"),
        pytest.param(Attachment(make_jpeg(), "image/jpeg", "photo.jpg"), id="jpeg"),
        pytest.param(
            Attachment(make_wav(1.0, sample_rate=16_000), "audio/wav", "voice.wav"), id="wav"
        ),
    ],
)
async def test_each_attachment_reaches_the_answer_function_once(
    gradio_server: GradioServer, attachment: Attachment
) -> None:
    async with space_backend(gradio_server) as (backend, _):
        got = report(await answer(backend, (user("What is this?", attachment),)))
    assert got["counts"] == {sha(attachment.data): 1}
    [received] = got["files"]
    assert received["size"] == len(attachment.data)
    assert got["texts"] == [["user", "What is this?"]]


async def test_an_album_of_two_photos_arrives_as_two_files(gradio_server: GradioServer) -> None:
    first, second = png((10, 200, 10)), png((10, 10, 200))
    async with space_backend(gradio_server) as (backend, traffic):
        got = report(await answer(backend, (user("Compare them.", first, second),)))
    assert got["counts"] == {sha(first.data): 1, sha(second.data): 1}
    assert traffic.count("POST", "/upload") == 1


async def test_earlier_media_travel_once_and_are_uploaded_once_per_session(
    gradio_server: GradioServer,
) -> None:
    photo = png((120, 120, 0))
    voice = Attachment(make_wav(0.5, sample_rate=16_000), "audio/wav", "voice.wav")
    async with space_backend(gradio_server) as (backend, traffic):
        first = (user("Look.", photo),)
        report(await answer(backend, first))
        second = (*first, Turn("assistant", "A yellow square."), user("Listen.", voice))
        got = report(await answer(backend, second))
        third = (*second, Turn("assistant", "A tone."), user("Both again?"))
        last = report(await answer(backend, third))
    assert got["counts"] == {sha(photo.data): 1, sha(voice.data): 1}
    assert last["counts"] == {sha(photo.data): 1, sha(voice.data): 1}
    assert [t for t in last["texts"] if t[0] == "user"][-1] == ["user", "Both again?"]
    assert traffic.count("POST", "/upload") == 2


async def test_a_file_the_server_no_longer_has_is_uploaded_again(
    gradio_server: GradioServer,
) -> None:
    photo = png((1, 2, 3))
    async with space_backend(gradio_server) as (backend, traffic):
        report(await answer(backend, (user("Look.", photo),)))
        for path in gradio_server.upload_dir.rglob("photo.png"):
            if path.read_bytes() == photo.data:
                path.unlink()
        got = report(await answer(backend, (user("Look again.", photo),)))
    assert got["counts"] == {sha(photo.data): 1}
    assert traffic.count("POST", "/upload") == 2


async def test_an_idle_server_gives_no_queue_notice(gradio_server: GradioServer) -> None:
    positions: list[QueuePosition] = []
    async with space_backend(gradio_server) as (backend, _):
        report(await answer(backend, (user("hi"),), on_queue=positions.append))
    assert positions == []


async def test_only_a_request_with_others_waiting_ahead_is_told_its_place(
    gradio_server: GradioServer,
) -> None:
    """One request runs (the app takes one at a time); of two more, the second waits behind
    the first and only it hears of a queue (rank 1), while the first (rank 0) hears nothing."""
    told: dict[str, list[QueuePosition]] = {"slow": [], "b": [], "c": []}
    async with space_backend(gradio_server) as (backend, _):
        slow = backend.stream(Conversation((user("#slow"),)), on_queue=told["slow"].append)
        await anext(slow)
        waiting = [
            asyncio.create_task(answer(backend, (user(name),), on_queue=told[name].append))
            for name in ("b", "c")
        ]
        async with asyncio.timeout(30):
            while not (told["b"] or told["c"]):
                await asyncio.sleep(0.05)
        assert isinstance(slow, AsyncGenerator)
        await slow.aclose()
        await asyncio.gather(*waiting)
    assert told["slow"] == []
    assert sorted(bool(told[name]) for name in ("b", "c")) == [False, True]
    assert (told["b"] or told["c"])[0].rank == 1


async def test_a_quota_error_reaches_the_log_but_not_the_chat(
    gradio_server: GradioServer,
) -> None:
    async with space_backend(gradio_server) as (backend, _):
        with pytest.raises(QuotaExceeded) as caught:
            await answer(backend, (user("#quota"),))
    assert QUOTA in str(caught.value)
    assert caught.value.user_message == QuotaExceeded.user_message


async def test_a_crash_mid_answer_names_what_is_known(gradio_server: GradioServer) -> None:
    pieces: list[str] = []
    async with space_backend(gradio_server) as (backend, _):
        with pytest.raises(BackendUnavailable) as caught:
            async for piece in backend.stream(Conversation((user("#crash"),))):
                pieces.append(piece)
    assert pieces, "the answer started before the crash"
    detail = str(caught.value)
    assert f"Gradio {gradio_server.env.version}" in detail
    assert "without a message" in detail
    assert caught.value.user_message == "The Space failed while answering. Please try again."


async def test_closing_the_stream_cancels_the_answer_function(gradio_server: GradioServer) -> None:
    async with space_backend(gradio_server) as (backend, traffic):
        stream = backend.stream(Conversation((user("#slow cancel me"),)))
        await anext(stream)
        assert isinstance(stream, AsyncGenerator)
        await stream.aclose()
        for _ in range(100):
            if traffic.count("POST", "/cancel"):
                break
            await asyncio.sleep(0.05)
    for _ in range(100):
        events = gradio_server.events()
        if any(e["event"] == "cancelled" for e in events):
            break
        await asyncio.sleep(0.05)
    started = [e for e in events if e["event"] == "started"]
    assert started[-1]["report"]["texts"] == [["user", "#slow cancel me"]]
    assert events[-1]["event"] == "cancelled"


async def run_cli(*args: str, url: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4", "OPENAI", "HF_"))}
    env.update(PHI4_BACKEND="space", PHI4_SPACE_URL=url, PYTHONPATH=str(ROOT), LOG_LEVEL="DEBUG")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_check_reports_the_gradio_version_and_reads_config_once(
    gradio_server: GradioServer,
) -> None:
    code, out, err = await run_cli("check", url=gradio_server.url)
    assert code == 0, out + err
    assert f"Gradio {gradio_server.env.version}" in out
    assert '"texts": [["user", "Say OK."]]' in out  # the answer, as the check shows it
    assert err.count("/config -> HTTP") == 1


async def test_chat_sends_an_ogg_voice_note_once_without_a_queue_notice(
    gradio_server: GradioServer, tmp_path: Path
) -> None:
    voice = tmp_path / "voice.ogg"
    voice.write_bytes(make_ogg_opus(1.0))
    code, out, err = await run_cli(
        "chat", "--audio", str(voice), "-p", "What do I say?", url=gradio_server.url
    )
    assert code == 0, err
    got = report(out.strip())
    [received] = got["files"]
    assert received["name"].endswith(".wav") and list(got["counts"].values()) == [1]
    assert "waiting in the queue" not in err


async def test_chat_exits_non_zero_when_the_last_turn_failed(gradio_server: GradioServer) -> None:
    code, out, err = await run_cli("chat", url=gradio_server.url, stdin=b"hello\n#quota\n")
    role, text = report(out.splitlines()[0])["texts"][-1]
    assert role == "user" and text.endswith("hello")
    assert QUOTA in err
    assert code == 1
