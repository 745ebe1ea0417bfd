"""Start-up recovery: what a dead process left unanswered is found, marked and reported once."""

from __future__ import annotations

from storage import AnswerCheckpoint, AnswerStatus, ConversationKey, PendingAnswer
from tests.databases import opened_store


async def test_streaming_answers_become_interrupted_and_are_reported_once(store_url: str) -> None:
    key = ConversationKey(-100, 4)
    async with opened_store(store_url, max_attachment_bytes=10) as crashed:
        conversation = await crashed.current_conversation(key)
        user = await crashed.add_user_turn(conversation, text="tell me", chat_id=-100, message_id=1)
        assert user is not None
        answer = await crashed.start_answer(conversation, user)
        await crashed.update_answers([AnswerCheckpoint(answer, "Once upon a", (2, 3))])

    async with opened_store(store_url, max_attachment_bytes=10) as restarted:
        assert await restarted.unfinished_answers() == [
            PendingAnswer(
                key, user, answer, (2, 3), user_message_id=1, conversation_id=conversation
            )
        ]
        assert await restarted.unfinished_answers() == []
        (_, interrupted) = (await restarted.export_conversation(conversation))["turns"]
        assert interrupted["status"] == "interrupted"
        assert interrupted["text"] == "Once upon a"
        assert interrupted["finished_at"] is not None


async def test_every_unanswered_user_turn_is_reported_once(store_url: str) -> None:
    async with opened_store(store_url, max_attachment_bytes=10) as store:
        waiting = await store.current_conversation(ConversationKey(1))
        first = await store.add_user_turn(waiting, text="one", chat_id=1, message_id=1)
        last = await store.add_user_turn(waiting, text="two", chat_id=1, message_id=2)
        answered = await store.current_conversation(ConversationKey(2))
        question = await store.add_user_turn(answered, text="q", chat_id=2, message_id=1)
        assert first is not None and last is not None and question is not None
        reply = await store.start_answer(answered, question)
        await store.finish_answer(reply, text="a", status=AnswerStatus.COMPLETE)
        await store.current_conversation(ConversationKey(3))

        assert await store.unfinished_answers() == [
            PendingAnswer(ConversationKey(1), first, None, (), 1, waiting),
            PendingAnswer(ConversationKey(1), last, None, (), 2, waiting),
        ]
        assert await store.unfinished_answers() == []
        newer = await store.add_user_turn(waiting, text="three", chat_id=1, message_id=3)
        assert newer is not None
        assert await store.unfinished_answers() == [
            PendingAnswer(ConversationKey(1), newer, None, (), 3, waiting)
        ]


async def test_a_turn_left_unanswered_in_a_conversation_before_new_is_still_reported(
    store_url: str,
) -> None:
    async with opened_store(store_url, max_attachment_bytes=10) as store:
        old = await store.current_conversation(ConversationKey(1))
        turn = await store.add_user_turn(old, text="waiting", chat_id=1, message_id=1)
        await store.new_conversation(ConversationKey(1))
        assert turn is not None
        assert await store.unfinished_answers() == [
            PendingAnswer(ConversationKey(1), turn, None, (), 1, old)
        ]


async def test_failed_and_stopped_answers_need_no_recovery(store_url: str) -> None:
    async with opened_store(store_url, max_attachment_bytes=10) as store:
        conversation = await store.current_conversation(ConversationKey(1))
        for message_id, status in ((1, AnswerStatus.FAILED), (2, AnswerStatus.STOPPED)):
            user = await store.add_user_turn(
                conversation, text="q", chat_id=1, message_id=message_id
            )
            assert user is not None
            answer = await store.start_answer(conversation, user)
            await store.finish_answer(answer, text="", status=status)
        assert await store.unfinished_answers() == []
