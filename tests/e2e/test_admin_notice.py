"""An admin learns of a broken backend even after the fact: bots cannot write first.

The start-up notice to an admin who never wrote to the bot cannot be delivered; it is sent
when that admin next writes, and an admin's /start always shows the backend's state then.
"""

from __future__ import annotations

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

ADMIN = 7
NOTICE = "⚠️ I cannot answer messages"


def texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text for m in tg.messages(chat_id)]


async def test_an_undelivered_notice_reaches_the_admin_when_they_write(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    bot = await start_bot(PHI4BOT_ADMINS=f"{ADMIN},8", PHI4_MODEL="phi-9")
    await bot.wait_for_log("could not send the notice to admin 8")

    admin = tg.private_user(ADMIN, "Operator")  # the admin opens the chat only now
    tg.send_text(admin.chat, admin, "hello?")
    await tg.wait_until(
        lambda: any(t.startswith(NOTICE) for t in texts(tg, ADMIN)),
        timeout=15,
        what="the notice that could not be sent at start-up",
    )
    notice = next(t for t in texts(tg, ADMIN) if t.startswith(NOTICE))
    assert "phi-9" in notice and "set PHI4_MODEL" in notice
    await tg.wait_until(lambda: len(texts(tg, ADMIN)) == 2, timeout=15, what="the reply")
    tg.send_text(admin.chat, admin, "still there?")
    await tg.wait_until(lambda: len(texts(tg, ADMIN)) == 3, timeout=15, what="the next reply")
    assert sum(t.startswith(NOTICE) for t in texts(tg, ADMIN)) == 1, "told once"

    russian = tg.private_user(8, "Оператор", language_code="ru")  # read in their language
    tg.send_text(russian.chat, russian, "привет")
    await tg.wait_until(
        lambda: any(t.startswith("⚠️ Я не могу отвечать") for t in texts(tg, 8)),
        timeout=15,
        what="the waiting notice, in Russian",
    )
    notice = next(t for t in texts(tg, 8) if t.startswith("⚠️ Я не могу отвечать"))
    assert "Что сделать: модели phi-9 на этом сервере нет" in notice
    assert "укажите в PHI4_MODEL" in notice and "запустите phi4bot check" in notice


async def test_an_admins_start_shows_the_backend_state_with_the_next_step(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    bot = await start_bot(PHI4BOT_ADMINS=f"{ADMIN},8", PHI4_MODEL="phi-9")
    await bot.wait_for_log("could not send the notice to admin 7")
    admin = tg.private_user(ADMIN, "Operator")
    tg.send_text(admin.chat, admin, "/start")
    await tg.wait_until(
        lambda: any("cannot answer" in t for t in texts(tg, ADMIN)),
        timeout=15,
        what="the backend's state",
    )
    state = next(t for t in texts(tg, ADMIN) if "cannot answer" in t)
    assert "(configuration failure)" in state
    assert "Reason: " in state and "phi-9" in state
    assert "Next step: " in state and "set PHI4_MODEL" in state
    assert not any(t.startswith(NOTICE) for t in texts(tg, ADMIN)), "/start says it once"

    russian = tg.private_user(8, "Оператор", language_code="ru")
    tg.send_text(russian.chat, russian, "/start")
    await tg.wait_until(
        lambda: any("не может ответить" in t for t in texts(tg, 8)),
        timeout=15,
        what="the backend's state in Russian",
    )
    state = next(t for t in texts(tg, 8) if "не может ответить" in t)
    assert "(ошибка в настройках)" in state and "Причина: " in state and "phi-9" in state
    assert "Что сделать: модели phi-9 на этом сервере нет" in state
    assert "укажите в PHI4_MODEL" in state and "(README, раздел «" in state
    tg.send_text(russian.chat, russian, "привет")  # stored, so /stats has a row to show
    await tg.wait_until(
        lambda: any(t.startswith("Я пока не готов отвечать") for t in texts(tg, 8)),
        timeout=15,
        what="the refusal of a bot not set up yet",
    )
    tg.send_text(russian.chat, russian, "/stats")
    await tg.wait_until(
        lambda: any(t.startswith("чат · разговоры") for t in texts(tg, 8)),
        timeout=15,
        what="the usage table with Russian columns",
    )

    user = tg.private_user(42, "Alice")  # not an admin: the help alone
    tg.send_text(user.chat, user, "/start")
    await tg.wait_until(lambda: tg.messages(42), timeout=15, what="the help")
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    assert not any("model server" in t for t in texts(tg, 42))


async def test_an_admins_start_says_when_the_model_answers(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    admin = tg.private_user(ADMIN, "Operator")
    await start_bot(PHI4BOT_ADMINS=str(ADMIN))
    tg.send_text(admin.chat, admin, "/start")
    await tg.wait_until(
        lambda: any(t.startswith("✅ The model server answers") for t in texts(tg, ADMIN)),
        timeout=15,
        what="the backend's state",
    )
