"""`phi4bot chat` and `phi4bot check` run in-process against the fake servers."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.terminal import describe_setting, run_chat, run_check
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.media_factory import make_png

SECRETS = {
    "OPENAI_API_KEY": "sk-very-secret-key",
    "TELEGRAM_BOT_TOKEN": "123456:telegram-secret-token",
    "HF_TOKEN": "hf_secret_token_value",
}


def settings(srv: FakeOpenAIServer | None = None, **values: Any) -> Settings:
    base = {"PHI4_BACKEND": "openai", "PHI4BOT_SYSTEM_PROMPT": "Be brief."}
    if srv is not None:
        base["OPENAI_BASE_URL"] = srv.base_url
    return Settings(_env_file=None, **(base | values))


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(make_png())
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_one_shot_prompt_prints_the_answer_and_exits_0(srv: FakeOpenAIServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert await run_chat(settings(srv), prompt="Hi", stdout=out, stderr=err) == 0
    assert out.getvalue() == srv.answer + "\n"
    assert err.getvalue() == ""
    sent = srv.chat_requests[-1].json["messages"]
    assert sent == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


async def test_a_failed_one_shot_prompt_explains_on_stderr_and_exits_1(
    srv: FakeOpenAIServer,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = await run_chat(settings(srv, PHI4_MODEL="phi-9"), prompt="Hi", stdout=out, stderr=err)
    assert code == 1
    assert "phi-9" in err.getvalue()
    assert out.getvalue() == ""


class WatchedOutput(io.StringIO):
    """Records every write and flush, and signals the first write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0
        self.first = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.first.set()
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


async def test_chunks_reach_stdout_as_they_arrive(srv: FakeOpenAIServer) -> None:
    srv.pause_after = 1
    out = WatchedOutput()
    chat = asyncio.create_task(run_chat(settings(srv), prompt="Hi", stdout=out))
    await asyncio.wait_for(out.first.wait(), 5)
    assert out.writes == [srv.pieces()[0]]
    assert out.flushes == 1
    assert srv.chat_requests[-1].chunks_sent == 1
    srv.resume()
    assert await asyncio.wait_for(chat, 5) == 0
    assert "".join(out.writes) == srv.answer + "\n"  # the rest may come in fewer pieces


async def test_an_interactive_chat_keeps_history_and_puts_media_on_the_first_turn(
    srv: FakeOpenAIServer, photo: Path
) -> None:
    stdin = io.StringIO("Hello\n\n   \nSecond\n/quit\nnever read\n")
    out = io.StringIO()
    assert await run_chat(settings(srv), images=[photo], stdin=stdin, stdout=out) == 0
    assert out.getvalue() == (srv.answer + "\n") * 2
    assert len(srv.chat_requests) == 2
    first, second = (r.json["messages"] for r in srv.chat_requests)
    assert [p["type"] for p in first[1]["content"]] == ["text", "image_url"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == srv.answer
    assert second[3] == {"role": "user", "content": "Second"}


async def test_the_chat_goes_on_after_an_error_and_keeps_the_media_for_the_next_turn(
    srv: FakeOpenAIServer, photo: Path
) -> None:
    srv.fail_next("401")
    stdin, out, err = io.StringIO("One\nTwo\n"), io.StringIO(), io.StringIO()
    code = await run_chat(settings(srv), images=[photo], stdin=stdin, stdout=out, stderr=err)
    assert code == 0  # EOF ends an interactive chat normally
    assert "API key" in err.getvalue()
    assert out.getvalue() == srv.answer + "\n"
    sent = srv.chat_requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]  # the failed turn is not history
    assert sent[1]["content"][0] == {"type": "text", "text": "Two"}
    assert sent[1]["content"][1]["type"] == "image_url"


async def test_an_interactive_chat_whose_last_turn_failed_exits_1(srv: FakeOpenAIServer) -> None:
    stdin, out, err = io.StringIO("One\nTwo\n"), io.StringIO(), io.StringIO()
    srv.fail_next("401")
    code = await run_chat(settings(srv), stdin=stdin, stdout=out, stderr=err)
    assert code == 0 and out.getvalue() == srv.answer + "\n"  # the last turn was answered
    srv.fail_next("401")
    stdin, out = io.StringIO("One\n"), io.StringIO()
    assert await run_chat(settings(srv), stdin=stdin, stdout=out, stderr=err) == 1


async def test_media_the_backend_cannot_take_is_dropped_with_a_clear_sentence(
    srv: FakeOpenAIServer, photo: Path
) -> None:
    stdin, out, err = io.StringIO("Look\nText only\n"), io.StringIO(), io.StringIO()
    config = settings(srv, PHI4_OPENAI_MEDIA="")
    assert await run_chat(config, images=[photo], stdin=stdin, stdout=out, stderr=err) == 0
    assert "This model takes text only, not images." in err.getvalue()
    assert [r.json["messages"][-1]["content"] for r in srv.chat_requests] == ["Text only"]


async def test_an_unreadable_media_file_stops_before_any_request(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    err = io.StringIO()
    code = await run_chat(settings(srv), images=[bad], prompt="?", stdout=io.StringIO(), stderr=err)
    assert code == 1
    assert "could not read that image" in err.getvalue()
    assert srv.requests == []


async def test_check_prints_every_setting_masks_secrets_and_exits_0(
    srv: FakeOpenAIServer,
) -> None:
    srv.api_key = SECRETS["OPENAI_API_KEY"]
    out = io.StringIO()
    assert await run_check(settings(srv, **SECRETS), stdout=out) == 0
    text = out.getvalue()
    for secret in SECRETS.values():
        assert secret not in text
    for name in SECRETS:
        assert f"{name} = set (hidden)" in text
    for info in Settings.model_fields.values():
        assert f"  {info.alias} = " in text
    assert "PHI4BOT_WEBHOOK_SECRET = not set" in text
    assert f"answer: {srv.answer}" in text
    assert text.rstrip().endswith("OK: 1 of 1 can answer.")
    assert srv.chat_requests[-1].json["messages"][-1]["content"] == "Say OK."


async def test_check_fails_in_one_line_without_showing_the_rejected_key(
    srv: FakeOpenAIServer,
) -> None:
    srv.api_key = "the-right-key"
    out = io.StringIO()
    assert await run_check(settings(srv, **SECRETS), stdout=out) == 1
    text = out.getvalue()
    assert SECRETS["OPENAI_API_KEY"] not in text
    failures = [line for line in text.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 1 and "API key" in failures[0]
    assert "Traceback" not in text


def verdict(out: io.StringIO) -> tuple[str, str]:
    """The FAILED line and the next-step line `check` ends with."""
    failed, step = out.getvalue().splitlines()[-2:]
    return failed, step


async def test_check_of_a_refused_local_port_says_to_start_the_server() -> None:
    out = io.StringIO()
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert await run_check(settings(OPENAI_BASE_URL=url), stdout=out) == 1
    failed, step = verdict(out)
    assert failed == f"FAILED (configuration): nothing listens at {url} (connection refused)"
    assert step.startswith("next step: nothing listens there: start the model server")
    assert "OPENAI_BASE_URL" in step and "README: Choose a model server" in step


async def test_check_of_a_host_name_that_does_not_resolve_says_to_correct_the_address() -> None:
    out = io.StringIO()
    assert await run_check(settings(OPENAI_BASE_URL="http://phi4.invalid/v1"), stdout=out) == 1
    failed, step = verdict(out)
    assert failed.startswith("FAILED (configuration): the host name phi4.invalid does not")
    assert step.startswith("next step: the host name in OPENAI_BASE_URL does not resolve")


async def test_check_of_a_server_wanting_a_key_says_to_set_it(srv: FakeOpenAIServer) -> None:
    srv.api_key = "sk-needed"
    out = io.StringIO()
    assert await run_check(settings(srv), stdout=out) == 1
    failed, step = verdict(out)
    assert failed.startswith("FAILED (configuration):") and "401" in failed
    assert step.startswith("next step: the server wants an API key: set OPENAI_API_KEY")


async def test_check_of_an_unknown_model_lists_what_the_server_serves(
    srv: FakeOpenAIServer,
) -> None:
    out = io.StringIO()
    assert await run_check(settings(srv, PHI4_MODEL="phi-9"), stdout=out) == 1
    _, step = verdict(out)
    served = ", ".join(srv.models)
    assert step.startswith(
        f"next step: the model `phi-9` is not served here: the server lists {served}; "
        "set PHI4_MODEL to one of them"
    )
    assert srv.chat_requests == [], "the probe found it; no chat request is needed"


@pytest.mark.parametrize(
    ("failure", "kind", "advice"),
    [
        ("sleeping", "transient", "the Space is asleep: open"),
        ("missing", "configuration", "no Gradio Space answers at"),
        ("paused", "configuration", "the Space is paused by its owner: duplicate the Space"),
        ("private", "configuration", "the Space refused access: set HF_TOKEN"),
        ("quota", "transient", "the Space is out of GPU quota for anonymous callers: set HF_TOKEN"),
    ],
)
async def test_check_of_a_space_that_cannot_answer_tells_the_next_step(
    failure: str, kind: str, advice: str
) -> None:
    async with FakeSpace() as space:
        space.fail_next(failure)
        config = settings(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
        out = io.StringIO()
        assert await run_check(config, stdout=out) == 1
    failed, step = verdict(out)
    assert failed.startswith(f"FAILED ({kind}): ")
    assert step.startswith(f"next step: {advice}")


async def test_check_reaches_the_space_backend() -> None:
    async with FakeSpace() as space:
        config = settings(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url, HF_ENDPOINT=space.url)
        out = io.StringIO()
        assert await run_check(config, stdout=out) == 0
    assert "probe: Gradio" in out.getvalue()


def test_settings_are_described_without_secret_values() -> None:
    from pydantic import SecretStr

    assert describe_setting(SecretStr("abc")) == "set (hidden)"
    assert describe_setting(SecretStr("")) == "not set"
    assert describe_setting(None) == "not set"
    assert describe_setting(frozenset({2, 1})) == "1,2"
    assert describe_setting(frozenset()) == "(empty)"
