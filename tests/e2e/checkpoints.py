"""Waiting for the bot's checkpoint of a streaming answer before a test kills it.

A message Telegram shows is checkpointed a moment later (the answer's text and message ids,
at the checkpoint writer's next tick). A test that crashes the bot "after the message was
shown" must wait for that write, or on a busy machine it crashes the bot in between, which
is another case: one where the bot cannot know the message exists.
"""

from __future__ import annotations

import asyncio
import json

from tests.databases import fetch_all


async def answer_checkpointed(database_url: str, message_id: int, timeout: float = 10.0) -> str:
    """The text stored so far of the answer shown in `message_id`, once its checkpoint
    names that message."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await fetch_all(
                database_url, "SELECT text, reply_message_ids FROM turns WHERE role = 'assistant'"
            )
            for text, ids in rows:
                if message_id in (json.loads(ids) if isinstance(ids, str) else list(ids)):
                    return str(text)
            await asyncio.sleep(0.05)
