"""The "read it all in a private chat" link under a guest answer too long for its message."""

from __future__ import annotations

from typing import Any

from telegram import Message

from bot.shared import Sentence
from bot.telegram.services import BotServices
from bot.telegram.streaming.guest_codes import WholeAnswer
from bot.telegram.triggers import reply_target
from storage import Store

NOT_YOURS = Sentence("That link opens an answer for the person who asked for it.")
GONE = Sentence("That answer is no longer available.")
SHOWN_STATUSES = frozenset({"complete", "stopped", "interrupted"})


async def show_whole_answer(services: BotServices, message: Message, wanted: WholeAnswer) -> None:
    """Send the whole guest answer into this private chat, to its caller only: the guest
    message showed as much as one message holds."""
    target = reply_target(message)
    if message.from_user is None or message.from_user.id != wanted.caller_id:
        await services.pipeline.say(target, NOT_YOURS)
        return
    text = await whole_answer_text(services.store, wanted)
    await services.pipeline.say(target, text if text else GONE)


async def whole_answer_text(store: Store, wanted: WholeAnswer) -> str | None:
    """The newest answer to the summon `wanted` names, if its caller's current guest
    conversation in that chat still holds it."""
    conversation_id = await store.current_conversation(wanted.key)
    turns: list[dict[str, Any]] = (await store.export_conversation(conversation_id))["turns"]
    question = next(
        (t for t in turns if t["role"] == "user" and t["message_id"] == wanted.message_id), None
    )
    if question is None:
        return None
    answers = [
        t
        for t in turns
        if t["role"] == "assistant"
        and t["reply_to"] == question["id"]
        and t["text"]
        and t["status"] in SHOWN_STATUSES
    ]
    return str(answers[-1]["text"]) if answers else None
