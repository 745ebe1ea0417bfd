"""`phi4bot db copy`: SQLite to PostgreSQL and back, everything kept, nothing duplicated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from storage import (
    AnswerCheckpoint,
    AnswerStatus,
    ConversationKey,
    NewAttachment,
    StorageError,
    Store,
    database_engine,
)
from storage.copy import copy_database
from tests.databases import execute, opened_store

PHOTO = NewAttachment("image", "image/jpeg", b"\xff\xd8 the same photo", "cat.jpg", "tg-cat")
VOICE = NewAttachment("audio", "audio/ogg", b"OggS voice", "voice.ogg", "tg-voice")
EXPECTED_ROWS = {
    "conversations": 4,
    "chat_settings": 2,
    "blobs": 2,
    "turns": 8,
    "attachments": 3,
    "handled_commands": 1,
    "held_messages": 1,
}


async def _fill(store: Store) -> list[int]:
    """A little of everything the bot writes: topics, /new, settings, every answer status,
    a photo sent twice, a voice note, an answer cut off mid-way, a turn still waiting."""
    group = await store.current_conversation(ConversationKey(-100, 7))
    private = await store.current_conversation(ConversationKey(42))
    await store.set_setting(42, "system_prompt", "Be brief.")
    await store.set_setting(-100, "language", "de")
    asked = await store.add_user_turn(
        group, text="what is this?", chat_id=-100, message_id=1, sender_id=5,
        sender_name="Ada", attachments=[PHOTO],
    )  # fmt: skip
    assert asked is not None
    answer = await store.start_answer(group, asked)
    await store.finish_answer(answer, text="A cat.", status=AnswerStatus.COMPLETE, message_ids=[2])
    again = await store.add_user_turn(
        group, text="and this?", chat_id=-100, message_id=3, attachments=[PHOTO, VOICE]
    )
    assert again is not None
    failed = await store.start_answer(group, again)
    await store.finish_answer(failed, text="", status=AnswerStatus.FAILED, error="timeout")
    question = await store.add_user_turn(private, text="tell me", chat_id=42, message_id=9)
    assert question is not None
    cut = await store.start_answer(private, question)
    await store.update_answers([AnswerCheckpoint(cut, "Once upon", (10, 11))])
    await store.new_conversation(ConversationKey(42))
    assert await store.claim_command(42, 11)  # the /new just carried out
    fresh = await store.new_conversation(ConversationKey(42))
    await store.add_user_turn(fresh, text="waiting", chat_id=42, message_id=12)
    await store.add_user_turn(fresh, text="no message id", chat_id=42, message_id=None)
    await store.hold_message(42, 13, '{"message_id": 13}')  # an album part, in the air
    return [group, private, fresh]


async def _fill_url(url: str) -> None:
    async with opened_store(url) as store:
        await _fill(store)


async def _snapshot(store: Store, conversations: list[int]) -> dict[str, Any]:
    return {
        "exports": [await store.export_conversation(c) for c in conversations],
        "history": [
            await store.history(c, char_budget=10_000, media_limit=9) for c in conversations
        ],
        "stats": await store.chat_stats(),
        "settings": [
            await store.get_setting(42, "system_prompt"),
            await store.get_setting(-100, "language"),
        ],
    }


@pytest.fixture(params=["sqlite->postgres", "postgres->sqlite"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    sqlite = f"sqlite:///{tmp_path / 'bot.db'}"
    postgres = str(request.getfixturevalue("postgres_url"))
    return (sqlite, postgres) if request.param == "sqlite->postgres" else (postgres, sqlite)


async def test_everything_arrives_and_the_copy_is_verified(urls: tuple[str, str]) -> None:
    source, target = urls
    async with opened_store(source) as store:
        conversations = await _fill(store)
        before = await _snapshot(store, conversations)
    report = await copy_database(source, target)
    assert report.ok, report.lines()
    assert {t.table: t.after for t in report.tables} == EXPECTED_ROWS
    assert {t.table: t.after - t.before for t in report.tables} == EXPECTED_ROWS
    async with opened_store(target) as copied:
        assert await _snapshot(copied, conversations) == before
        assert (
            await copied.add_user_turn(conversations[0], text="x", chat_id=-100, message_id=3)
            is None
        )
        assert not await copied.claim_command(42, 11), "a copied claim still holds"
        newer = await copied.add_user_turn(conversations[2], text="new", chat_id=42, message_id=13)
        assert newer is not None and newer > 8
        assert await copied.new_conversation(ConversationKey(1)) > 4
        cut, *waiting = await copied.unfinished_answers()
        assert cut.reply_message_ids == (10, 11)
        assert [w.user_message_id for w in waiting] == [12, None, 13]


async def test_running_the_copy_again_adds_what_is_new_and_duplicates_nothing(
    urls: tuple[str, str],
) -> None:
    source, target = urls
    async with opened_store(source) as store:
        conversations = await _fill(store)
    await copy_database(source, target)
    again = await copy_database(source, target)
    assert again.ok, again.lines()
    assert {t.table: (t.after, t.after - t.before) for t in again.tables} == {
        name: (count, 0) for name, count in EXPECTED_ROWS.items()
    }
    async with opened_store(source) as store:
        await store.unfinished_answers()  # the cut-off answer becomes interrupted
        await store.add_user_turn(conversations[2], text="later", chat_id=42, message_id=20)
        await store.set_setting(42, "system_prompt", "Be verbose.")
    third = await copy_database(source, target)
    assert third.ok, third.lines()
    new = {t.table: t.after - t.before for t in third.tables}
    assert new == {name: 1 if name == "turns" else 0 for name in EXPECTED_ROWS}
    async with opened_store(target) as copied:
        assert await copied.get_setting(42, "system_prompt") == "Be verbose."
        turns = (await copied.export_conversation(conversations[1]))["turns"]
        assert turns[-1]["status"] == "interrupted"


def test_a_target_holding_other_data_fails_the_check(
    urls: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = urls

    async def prepare() -> None:
        async with opened_store(source) as store:
            await _fill(store)
        async with opened_store(target) as other:
            await other.set_setting(7, "system_prompt", "Someone else's bot.")

    asyncio.run(prepare())
    assert main(["db", "copy", "--from", source, "--to", target]) == 1
    printed = capsys.readouterr().out
    assert "chat_settings" in printed and "MISMATCH" in printed
    assert "NOT verified" in printed


def test_the_command_prints_counts_per_table(
    urls: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = urls
    asyncio.run(_fill_url(source))
    assert main(["db", "copy", "--from", source, "--to", target]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["table", "source", "target", "new", "check"]
    assert lines[2].split() == ["conversations", "4", "4", "4", "ok"]
    assert lines[5].split() == ["turns", "8", "8", "8", "ok"]
    assert lines[-1].startswith("verified")


def test_an_unreachable_target_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'bot.db'}"
    target = "postgresql://bot:hunter2@127.0.0.1:1/phi4bot"
    assert main(["db", "copy", "--from", source, "--to", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phi4bot: Cannot reach PostgreSQL at postgresql://bot@127.0.0.1:1/")
    assert err.count("\n") == 1 and "hunter2" not in err


def test_copying_a_database_onto_itself_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert main(["db", "copy", "--from", url, "--to", url]) == 2
    assert "the same database" in capsys.readouterr().err


async def test_a_turn_whose_message_the_target_already_stored_stops_the_copy(
    urls: tuple[str, str],
) -> None:
    source, target = urls
    async with opened_store(source) as store:
        await _fill(store)
    async with opened_store(target) as other:
        for _ in range(12):
            await other.current_conversation(ConversationKey(1))
            await other.new_conversation(ConversationKey(1))
    await execute(
        target,
        "INSERT INTO turns (id, conversation_id, role, text, chat_id, message_id, created_at) "
        "VALUES (100, 1, 'user', 'elsewhere', -100, 1, ?)",
        1.0 if database_engine(target) == "sqlite" else datetime.now(UTC),
    )
    with pytest.raises(StorageError, match=r"The copy stopped: .*(turns_by_message|UNIQUE)"):
        await copy_database(source, target)
