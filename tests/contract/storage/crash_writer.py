"""Child process of the crash test: writes exchanges until killed, printing each commit.

Usage: python tests/contract/storage/crash_writer.py DATABASE_PATH ROUND

Four writers run at once, each in its own conversation, so the kill is likely to land while
some transaction is half written. A line is printed only after the write it names has
returned, that is, after it was committed: `user ID`, `answer ID`, `finished ID`.
"""

from __future__ import annotations

import asyncio
import os
import sys

from storage import AnswerCheckpoint, AnswerStatus, ConversationKey, NewAttachment, SQLiteStore

WRITERS = 4


async def _write_forever(store: SQLiteStore, writer: int, round_number: int) -> None:
    key = ConversationKey(writer, round_number)
    conversation = await store.current_conversation(key)
    n = 0
    while True:
        media = [NewAttachment("image", "image/png", os.urandom(64 * 1024), f"{n}.png")]
        user = await store.add_user_turn(
            conversation,
            text=f"question {n} " * 20,
            chat_id=writer,
            message_id=round_number * 1_000_000 + n,
            attachments=media if n % 3 == 0 else (),
        )
        print(f"user {user}", flush=True)
        assert user is not None
        answer = await store.start_answer(conversation, user)
        print(f"answer {answer}", flush=True)
        await store.update_answers([AnswerCheckpoint(answer, "partial", (n,))])
        await store.finish_answer(
            answer, text=f"answer {n} " * 40, status=AnswerStatus.COMPLETE, message_ids=[n]
        )
        print(f"finished {answer}", flush=True)
        n += 1


async def main(path: str, round_number: int) -> None:
    async with SQLiteStore(path, max_attachment_bytes=1024 * 1024) as store:
        await asyncio.gather(
            *(_write_forever(store, writer, round_number) for writer in range(WRITERS))
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
