"""Guest answers a dead process left unfinished, marked so in their guest messages.

Nothing can be sent into a chat the bot is a guest in, so instead of a notice the guest
message itself is edited: the part of the answer it had, then a note. Questions of guests
still waiting for their answer cannot be answered after a restart at all (their summons
can no longer be answered); they stay in history.
"""

from __future__ import annotations

import logging

from bot.conversation.pipeline import TurnPipeline
from bot.conversation.turns import GuestPlace, ReplyTarget, guest_caller, guest_message_setting
from bot.shared import Sentence
from storage import ConversationKey, PendingAnswer

log = logging.getLogger(__name__)

GUEST_RESTART_NOTE = Sentence(
    "⚠️ I was restarted before I finished this answer. Ask me again for a full answer."
)


async def mark_guest_interrupted(
    pipeline: TurnPipeline, key: ConversationKey, pending: list[PendingAnswer]
) -> None:
    """Show in the guest message of the newest cut-off answer that it was cut off."""
    caller = guest_caller(key)
    if caller is None:
        return
    store = pipeline.store
    try:
        inline_id = await store.get_setting(key.chat_id, guest_message_setting(caller))
        if inline_id is None:
            return
        latest = pending[-1]
        conversation_id = latest.conversation_id or await store.current_conversation(key)
        turns = (await store.export_conversation(conversation_id))["turns"]
        partial = next((t["text"] for t in turns if t["id"] == latest.assistant_turn_id), "")
    except Exception as exc:
        log.warning("a cut-off guest answer in chat %s stays as it was: %s", key.chat_id, exc)
        return
    place = GuestPlace(key.chat_id, caller, inline_message_id=inline_id)
    note = f"_{GUEST_RESTART_NOTE}_"
    await pipeline.say(ReplyTarget(key, True, guest=place), f"{partial}\n\n{note}".strip())
