"""A first run that cannot answer says why and what to change: in the log, to admins, to users.

Each failure class is met as a newcomer meets it, with the real `phi4bot run` against the
fakes: an address that does not resolve, a refused port, a missing key, an unknown model, a
sleeping, missing or out-of-quota Space.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import StartBot
from tests.e2e.test_cli import run_cli
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram, User

NOT_SET_UP = "I am not set up to answer yet"
ADMIN = 7


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


async def ask(tg: FakeTelegram, user: User, text: str) -> str:
    """Send `text` privately and return the bot's finished reply to it."""
    before = len(tg.messages(user.id))
    tg.send_text(user.chat, user, text)
    await tg.wait_until(lambda: len(tg.messages(user.id)) > before, timeout=20, what="a reply")
    reply = tg.messages(user.id)[before]
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    return reply.text


@dataclass
class Misconfiguration:
    """One way to get the OpenAI-compatible backend wrong, and what the operator is told."""

    name: str
    env: dict[str, str]
    told: str
    server_key: str | None = None


MISCONFIGURATIONS = [
    Misconfiguration(
        "dns",
        {"OPENAI_BASE_URL": "http://phi4.invalid/v1"},
        "the host name in OPENAI_BASE_URL does not resolve",
    ),
    Misconfiguration(
        "refused",
        {"OPENAI_BASE_URL": "<free port>"},
        "nothing listens there: start the model server",
    ),
    Misconfiguration(
        "401",
        {},
        "the server wants an API key: set OPENAI_API_KEY",
        server_key="sk-the-server-wants-this",
    ),
    Misconfiguration(
        "404 model",
        {"PHI4_MODEL": "phi-9"},
        "is not served here: the server lists "
        "microsoft/Phi-4-multimodal-instruct, vision, speech; set PHI4_MODEL",
    ),
]


@pytest.mark.parametrize("case", MISCONFIGURATIONS, ids=lambda c: c.name)
async def test_a_configuration_mistake_is_told_once_and_users_are_not_asked_to_retry(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, case: Misconfiguration
) -> None:
    model.api_key = case.server_key
    env = {k: free_port_url() if v == "<free port>" else v for k, v in case.env.items()}
    tg.private_user(ADMIN, "Operator")
    alice = tg.private_user(42, "Alice")
    bot = await start_bot(PHI4BOT_ADMINS=str(ADMIN), **env)

    warning = await bot.wait_for_log("cannot answer yet")
    assert " WARNING " in warning and "(configuration failure:" in warning
    assert case.told in warning.partition("Next step: ")[2]
    assert "README: Choose a model server" in warning

    await tg.wait_until(lambda: tg.messages(ADMIN), timeout=15, what="the admin's notice")
    notice = tg.messages(ADMIN)[0].text
    assert "misconfigured" in notice and case.told in notice

    for text in ("hello", "anyone there?"):
        reply = await ask(tg, alice, text)
        assert reply.startswith(NOT_SET_UP)
        assert "try again in a minute" not in reply

    assert len(tg.messages(ADMIN)) == 1, "one notice per cause"
    told = [line for line in bot.log_lines("Next step:") if " WARNING " in line]
    assert len(told) == 1, "the same cause is logged once an hour"
    assert case.server_key is None or case.server_key not in bot.log()


async def test_a_sleeping_space_is_transient_then_the_model_is_back(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    space.fail_next("sleeping", times=2)  # the start-up check, then the first turn's /config
    tg.private_user(ADMIN, "Operator")
    alice = tg.private_user(42, "Alice")
    bot = await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url, PHI4BOT_ADMINS="7")

    warning = await bot.wait_for_log("cannot answer yet")
    assert "(transient failure:" in warning
    assert "Next step: the Space is asleep: open" in warning

    assert await ask(tg, alice, "hello") == "The model is waking up. Please try again in a minute."
    assert await ask(tg, alice, "hello again") == space.answer
    await bot.wait_for_log("the model answers again")
    assert tg.messages(ADMIN) == [], "waiting mends it: no admin notice"


async def test_a_space_out_of_quota_tells_the_user_to_wait_and_the_log_to_set_hf_token(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    tg.private_user(ADMIN, "Operator")
    alice = tg.private_user(42, "Alice")
    bot = await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url, PHI4BOT_ADMINS="7")
    await bot.wait_for_log("the model answers: Gradio")
    assert bot.log_lines("cannot answer yet") == []

    space.fail_next("quota")
    reply = await ask(tg, alice, "hello")
    assert reply == "The model is out of quota or overloaded. Please try again later."
    line = await bot.wait_for_log("did not answer (transient failure:")
    assert "GPU quota" in line  # the Space's own words: for the log, not the chat
    assert "Next step: the Space is out of GPU quota for anonymous callers: set HF_TOKEN" in line
    assert tg.messages(ADMIN) == []


async def test_a_missing_space_is_a_configuration_mistake_told_to_the_admin(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    space.fail_next("missing", times=2)
    tg.private_user(ADMIN, "Operator")
    alice = tg.private_user(42, "Alice")
    bot = await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url, PHI4BOT_ADMINS="7")
    await bot.wait_for_log("cannot answer yet (configuration failure:")
    assert (await ask(tg, alice, "hello")).startswith(NOT_SET_UP)
    await tg.wait_until(lambda: tg.messages(ADMIN), timeout=15, what="the admin's notice")
    assert "no Gradio Space answers at" in tg.messages(ADMIN)[0].text
    assert "duplicate the Space" in tg.messages(ADMIN)[0].text
    assert len(tg.messages(ADMIN)) == 1


async def test_check_against_a_space_that_does_not_resolve_prints_the_next_step(
    tmp_path: Path,
) -> None:
    code, out, err = await run_cli(
        tmp_path, "check", PHI4_BACKEND="space", PHI4_SPACE_URL="http://phi4-space.invalid"
    )
    assert code == 1 and "Traceback" not in out + err
    failed, step = out.strip().splitlines()[-2:]
    assert failed.startswith("FAILED (configuration): the host name phi4-space.invalid")
    assert step.startswith("next step: the host name in PHI4_SPACE_URL does not resolve")


async def test_the_start_up_check_never_holds_up_polling(
    tg: FakeTelegram, start_bot: StartBot
) -> None:
    """A server that accepts connections and never answers keeps the check waiting, not the bot."""
    silent: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = asyncio.get_running_loop().time()
        bot = await start_bot(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
        assert asyncio.get_running_loop().time() - started < 8, "polling began at once"
        for _ in range(100):  # the check connects right after start-up; give it 5 s
            if silent:
                break
            await asyncio.sleep(0.05)
        assert silent, "the check is under way"
        assert bot.log_lines("cannot answer yet") == []
        assert bot.log_lines("the model answers") == []
    finally:
        for writer in silent:
            writer.close()
        server.close()
