"""`phi4bot check` says who the bot is on Telegram and whether guest mode is on."""

from __future__ import annotations

import io

from bot.config import Settings
from bot.ops.bot_account import describe_bot_account
from bot.terminal import run_check
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:telegram-secret-token"


async def test_check_reports_guest_mode_as_get_me_says_it() -> None:
    async with FakeTelegram(TOKEN, "phi4_test_bot") as tg, FakeOpenAIServer() as srv:
        settings = Settings(
            _env_file=None,
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=srv.base_url,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=tg.url,
        )
        out = io.StringIO()
        assert await run_check(settings, stdout=out) == 0
        assert "telegram: @phi4_test_bot; guest mode: on\n" in out.getvalue()
        assert TOKEN not in out.getvalue()
        tg.world.guest_mode = False
        described = await describe_bot_account(tg.url, TOKEN)
        assert described.startswith("@phi4_test_bot; guest mode: off (switch it on in @BotFather")


async def test_a_wrong_token_or_no_server_is_one_line_not_a_failure() -> None:
    async with FakeTelegram(TOKEN, "phi4_test_bot") as tg:
        assert await describe_bot_account(tg.url, "9:wrong") == "refused (Unauthorized)"
        url = tg.url
    assert (await describe_bot_account(url, TOKEN)).startswith("not reached (")
