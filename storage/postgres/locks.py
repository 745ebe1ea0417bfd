"""Advisory lock keys: how processes sharing one PostgreSQL database take turns on a thing.

PostgreSQL's advisory locks take two 32-bit integers. The first says what kind of thing is
locked (a namespace below), the second which one (a stable hash of its key), so locks of
different kinds never collide. Two keys hashing alike only make one wait for the other.
Transaction-level locks (`pg_advisory_xact_lock`) end with their transaction; session-level
ones (`pg_try_advisory_lock`) live as long as the connection, which is what a lease that a
dead process must give up needs.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from storage.models import ConversationKey


class LockNamespace(IntEnum):
    """What an advisory lock guards; the first of its two keys."""

    MIGRATIONS = 0x70340001  # applying schema migrations
    CONVERSATION_CREATION = 0x70340002  # a key's first conversation; a capped turn in it
    CONVERSATION_LEASE = 0x70340003  # answering in a conversation (one process at a time)
    INSTANCE = 0x70340004  # a live process, by its instance id (hashtext of it)
    POLLING = 0x70340005  # the one process that long-polls Telegram
    MEMBER = 0x70340006  # shared by every live process of one deployment (schema): counted


def scoped_key(namespace: LockNamespace, scope: str, key: ConversationKey | None = None) -> int:
    """The second key of a lock held for as long as a process lives (a lease, the polling
    lock), within `scope` (the schema), so deployments in different schemas of one database
    never wait for each other."""
    which = "" if key is None else f"{key.chat_id}:{key.thread_id}"
    text = f"{int(namespace)}:{scope}:{which}".encode()
    digest = hashlib.blake2b(text, digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def unsigned(second_key: int) -> int:
    """A second key as `pg_locks.objid` shows it."""
    return second_key & 0xFFFFFFFF


def conversation_lock_key(namespace: LockNamespace, key: ConversationKey) -> tuple[int, int]:
    """The (namespace, hash) pair for a conversation key; the same in every process."""
    text = f"{key.chat_id}:{'' if key.thread_id is None else key.thread_id}".encode()
    digest = hashlib.blake2b(text, digest_size=4).digest()
    return int(namespace), int.from_bytes(digest, "big", signed=True)
