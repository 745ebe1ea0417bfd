"""No secret anywhere: a refused token, passwords in URLs, at DEBUG, as text and as JSON.

The real `phi4bot run` and `phi4bot check` run against the fake Telegram; every place an
operator or a user can read (stdout, stderr, the log, `/readyz`, the admin's and the user's
chats) is searched for the secrets.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.bot_process import TOKEN
from tests.e2e.conftest import StartBot
from tests.e2e.test_cli import run_cli
from tests.e2e.test_operating import start_with_metrics
from tests.fakes.telegram import FakeTelegram

OPENAI_PASSWORD = "openai-pa55word-x"
OPENAI_QUERY_KEY = "query-key-7f3a9c"
DATABASE_PASSWORD = "db-pa55word-y"


def with_password(url: str, password: str) -> str:
    """`url` with `password` added to its user info (the test server trusts any password)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{password}@{host}"))


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_refused_token_is_one_line_and_exit_2_without_the_token(
    tmp_path: Path, tg: FakeTelegram, log_format: str
) -> None:
    revoked = "654321:REVOKED-token-never-shown"
    code, out, err = await run_cli(
        tmp_path,
        "run",
        TELEGRAM_BOT_TOKEN=revoked,
        TELEGRAM_API_URL=tg.url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT=log_format,
    )
    assert code == 2, out + err
    said = [line for line in (out + err).splitlines() if "refused" in line]
    assert said == [
        "phi4bot: Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): the token was "
        "revoked or mistyped; copy the current one from @BotFather."
    ]
    assert "Traceback" not in out + err
    assert "Unclosed" not in out + err
    for part in ("654321", "REVOKED-token-never-shown"):
        assert part not in out + err


async def test_a_wrong_api_url_names_the_url_and_hides_the_valid_token(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    code, out, err = await run_cli(
        tmp_path,
        "run",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=f"{tg.url}/not-the-bot-api",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        LOG_LEVEL="DEBUG",
    )
    assert code == 2, out + err
    assert (
        f"phi4bot: Telegram refused TELEGRAM_BOT_TOKEN (404 Not Found): the token is malformed, "
        f"or TELEGRAM_API_URL ({tg.url}/not-the-bot-api) is not a Bot API server."
    ) in err.splitlines()
    assert TOKEN not in out + err
    assert TOKEN.partition(":")[2] not in out + err
    assert "Traceback" not in out + err


async def test_passwords_in_urls_reach_no_log_check_readyz_or_chat(
    tmp_path: Path, tg: FakeTelegram, start_bot: StartBot, postgres_url: str
) -> None:
    # A model server that refuses connections: a configuration failure, which is logged,
    # sent to the admin, shown by /readyz and `check`, and answered in the chat.
    openai_url = f"http://alice:{OPENAI_PASSWORD}@127.0.0.1:9/v1?api-key={OPENAI_QUERY_KEY}"
    database_url = with_password(postgres_url, DATABASE_PASSWORD)
    env = {
        "OPENAI_BASE_URL": openai_url,
        "DATABASE_URL": database_url,
        "PHI4_CONNECT_TIMEOUT": "2",
        "PHI4BOT_ADMINS": "7",
    }
    admin = tg.private_user(7, "Admin")
    alice = tg.private_user(42, "Alice")
    scraper, bot = await start_with_metrics(start_bot, **env)
    await bot.wait_for_log("cannot answer yet", timeout=20)
    await tg.wait_until(lambda: tg.messages(admin.id), timeout=15, what="the admin's notice")
    tg.send_text(alice.chat, alice, "Hello?")
    await tg.wait_until(lambda: tg.messages(alice.id), timeout=20, what="the error reply")
    status, body = await scraper.ready()
    assert status == 503
    assert "127.0.0.1:9" in str(body), body  # the reason names the server, not its secrets
    code, out, err = await run_cli(
        tmp_path,
        "check",
        PHI4_BACKEND="openai",
        **env,
        TELEGRAM_BOT_TOKEN=TOKEN,
    )
    assert code == 1, out + err
    assert "OPENAI_BASE_URL = http://127.0.0.1:9/v1?api-key=***" in out
    await bot.stop()

    seen = {
        "log": bot.log(),
        "readyz": str(body),
        "check": out + err,
        "admin chat": tg.text_of(admin.id),
        "user chat": tg.text_of(alice.id),
    }
    for where, text in seen.items():
        for secret in (OPENAI_PASSWORD, OPENAI_QUERY_KEY, DATABASE_PASSWORD):
            assert secret not in text, f"{secret} leaked into the {where}"
