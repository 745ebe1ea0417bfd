"""Several `phi4bot run` processes on one PostgreSQL database, same token: one polls at a
time and another takes over when it is killed; behind a webhook all of them take updates;
every turn is answered once, in order, whichever process answers it, and never with a 429."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from tests.databases import fetch_all
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import StartBot, last_user_text
from tests.e2e.test_modes import free_port, wait_listening
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

NOTICE = "Send /retry"
QUEUE_FULL = "I am still answering your earlier message"


def echo(body: dict[str, object]) -> str:
    return f"echo: {last_user_text(body)}"


async def wait_logged(bot: BotProcess, text: str, *, times: int = 1) -> None:
    """Until the (shared) log holds `text` `times` times: processes starting together on
    a busy machine may take a while to come up."""
    async with asyncio.timeout(90):
        while bot.log().count(text) < times:
            await asyncio.sleep(0.1)


async def owners_streaming(url: str) -> set[str]:
    rows = await fetch_all(url, "SELECT DISTINCT owner FROM turns WHERE status = 'streaming'")
    return {row[0] for row in rows}


async def first_answers_finished(url: str) -> int:
    rows = await fetch_all(
        url,
        "SELECT count(*) FROM turns a JOIN turns q ON q.id = a.reply_to "
        "WHERE a.status = 'complete' AND q.text LIKE '% message 1'",
    )
    return int(rows[0][0])


async def test_the_poller_killed_mid_run_another_takes_over_and_nothing_is_lost(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, postgres_url: str
) -> None:
    model.reply = echo
    model.chunk_size = 4
    model.chunk_delay = 0.25  # answers take a few seconds: some are cut by the kill
    poller = await start_bot(DATABASE_URL=postgres_url, PHI4BOT_INSTANCE_ID="first")
    standby = await start_bot(wait=False, DATABASE_URL=postgres_url, PHI4BOT_INSTANCE_ID="second")
    await wait_logged(poller, "stands by")

    users = [tg.private_user(100 + n, f"User {n}") for n in range(10)]
    for round_ in (1, 2):
        for user in users:
            tg.send_text(user.chat, user, f"{user.id} question {round_}")
    async with asyncio.timeout(20):  # all stored, and both processes answering
        while await fetch_all(postgres_url, "SELECT 1 FROM turns WHERE role = 'user'") != [
            (1,)
        ] * 20 or await owners_streaming(postgres_url) != {"first", "second"}:
            await asyncio.sleep(0.05)
    assert tg.stats.errors[("getUpdates", 409)] == 0, "one poller at a time while both live"
    await poller.kill()

    # Every second question is answered by the survivor, without /retry; the answers the
    # kill cut off get the one notice; the survivor polls now, and answers a new message.
    def second_answered(user_id: int) -> bool:
        return any(m.text == f"echo: {user_id} question 2" for m in tg.messages(user_id))

    await tg.wait_until(lambda: all(second_answered(u.id) for u in users), timeout=20)
    interrupted = await fetch_all(
        postgres_url,
        "SELECT c.chat_id, q.text FROM turns t JOIN conversations c ON c.id = t.conversation_id"
        " JOIN turns q ON q.id = t.reply_to WHERE t.status = 'interrupted'",
    )
    cut = {row[0] for row in interrupted}
    assert cut, "the kill should have cut at least one answer"
    await tg.wait_until(
        lambda: all(any(NOTICE in m.text for m in tg.messages(chat)) for chat in cut), timeout=10
    )
    for user in users:
        notices = [m for m in tg.messages(user.id) if NOTICE in m.text]
        assert len(notices) == (1 if user.id in cut else 0), tg.summary()
    asked = Counter(last_user_text(r.json) for r in model.chat_requests)
    assert set(asked.values()) == {1}, "no question may be answered twice"
    # A question is asked of the model, or its answer was cut (maybe before the request).
    assert set(asked) | {row[1] for row in interrupted} == {
        f"{u.id} question {r}" for u in users for r in (1, 2)
    }

    alice = users[0]
    tg.send_text(alice.chat, alice, "still there?")
    await tg.wait_until(lambda: tg.messages(alice.id)[-1].text == "echo: still there?", timeout=15)
    assert standby.running
    assert tg.stats.flood_429 == 0
    # At the hand-over the server may not yet have noticed that the killed poller's long
    # poll died with it, and refuse the new poller's first request once.
    assert tg.stats.errors[("getUpdates", 409)] <= 1


async def test_behind_a_webhook_three_processes_answer_fifty_chats_once_and_in_order(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, postgres_url: str
) -> None:
    model.reply = echo
    model.chunk_size = 100
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{port}/hook" for port in ports]
    tg.spread_webhook(urls)
    bots: list[BotProcess] = []
    for n, (port, url) in enumerate(zip(ports, urls, strict=True)):
        bots.append(
            await start_bot(
                "--webhook-url",
                url,
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
                wait=False,
                DATABASE_URL=postgres_url,
                PHI4BOT_WEBHOOK_SECRET="one-secret-for-all",
                PHI4BOT_INSTANCE_ID=f"web{n}",
            )
        )
    # Three processes starting at once on a busy machine may take a while to come up; the
    # flood starts once each has counted the other two and taken its third of the budget.
    await wait_logged(bots[0], "shares the database", times=3)
    await wait_logged(bots[0], "3 instances live", times=3)
    async with aiohttp.ClientSession() as session:
        for url in urls:
            await wait_listening(session, url)

    users = [tg.private_user(1000 + n, f"User {n}") for n in range(50)]
    for round_ in (1, 2):
        for user in users:
            tg.send_text(user.chat, user, f"{user.id} message {round_}")

    def answered(user_id: int) -> list[str]:
        return [m.text for m in tg.messages(user_id)]

    # One message in hand and one waiting is each person's limit: the third is sent once
    # the first answer is recorded as finished, while the second may still wait.
    async with asyncio.timeout(40):
        while await first_answers_finished(postgres_url) < len(users):
            await asyncio.sleep(0.1)
    for user in users:
        tg.send_text(user.chat, user, f"{user.id} message 3")
    expected = {u.id: [f"echo: {u.id} message {r}" for r in (1, 2, 3)] for u in users}
    await tg.wait_until(
        lambda: all(answered(uid) == texts for uid, texts in expected.items()),
        timeout=40,
        what="every chat answered three times, in order",
    )
    assert len(model.chat_requests) == 150
    assert tg.stats.flood_429 == 0
    assert all(tg.webhook_deliveries.get(url, 0) > 0 for url in urls), tg.webhook_deliveries
    owners = await fetch_all(
        postgres_url, "SELECT owner, count(*) FROM turns WHERE role = 'assistant' GROUP BY 1"
    )
    assert len(owners) >= 2, f"the answers should spread over the processes: {owners}"
    assert all(bot.running for bot in bots)


async def test_one_persons_waiting_messages_are_capped_across_processes(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, postgres_url: str
) -> None:
    """Behind a webhook one person's messages land on both processes in turn; still only one
    waits behind the answer being written, as with one process alone."""
    model.reply = lambda body: f"echo: {last_user_text(body)} " + "and more " * 6
    model.chunk_size = 8
    model.chunk_delay = 0.5  # each answer takes a few seconds: the flood lands meanwhile
    ports = [free_port() for _ in range(2)]
    urls = [f"http://127.0.0.1:{port}/hook" for port in ports]
    tg.spread_webhook(urls)
    for n, (port, url) in enumerate(zip(ports, urls, strict=True)):
        await start_bot(
            *("--webhook-url", url, "--listen", "127.0.0.1", "--port", str(port)),
            wait=False,
            DATABASE_URL=postgres_url,
            PHI4BOT_WEBHOOK_SECRET="one-secret-for-all",
            PHI4BOT_INSTANCE_ID=f"web{n}",
        )
    async with aiohttp.ClientSession() as session:
        for url in urls:
            await wait_listening(session, url)

    alice = tg.private_user(500, "Alice")
    for n in range(1, 7):
        tg.send_text(alice.chat, alice, f"message {n}")

    def refusals() -> int:
        return sum(QUEUE_FULL in m.text for m in tg.messages(alice.id))

    def answers() -> list[str]:
        return [m.text for m in tg.messages(alice.id) if m.text.startswith("echo:")]

    await tg.wait_until(lambda: refusals() == 4, timeout=20, what="four messages refused")
    await tg.wait_until(lambda: len(answers()) == 2, timeout=30, what="two answers")
    assert all(tg.webhook_deliveries.get(url, 0) > 0 for url in urls), tg.webhook_deliveries
    stored = await fetch_all(postgres_url, "SELECT text FROM turns WHERE role = 'user'")
    assert len(stored) == 2, stored
    assert len(model.chat_requests) == 2

    tg.send_text(alice.chat, alice, "and now?")  # nothing waits: taken again
    await tg.wait_until(lambda: any(a.startswith("echo: and now?") for a in answers()), timeout=20)
    assert refusals() == 4
