"""Processes sharing one PostgreSQL database: leases on one connection of their own.

Each process keeps one dedicated *lease connection*. On it, it holds session-level advisory
locks (see `storage.postgres.locks`): one on its instance id for as long as it lives, one per
conversation it is answering in, and the polling lock while it long-polls Telegram. When the
process dies, even by SIGKILL, the server closes that connection and every one of these locks
is free at once; the others see it in `pg_locks`. Wake-ups travel by LISTEN/NOTIFY on the same
connection. If the connection drops, the process is told (`on_lost`) and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from storage.coordination import WaitingTurn
from storage.errors import StorageError
from storage.models import ConversationKey, PendingAnswer
from storage.postgres.connection import unreachable
from storage.postgres.locks import LockNamespace, scoped_key, unsigned
from storage.recovery import RECENT_SECONDS
from storage.url import redact

if TYPE_CHECKING:
    from storage.postgres.connection import Db

log = logging.getLogger(__name__)

CHANNEL = "phi4bot_waiting"
STOP_CHANNEL = "phi4bot_stop"
HEARTBEAT_EVERY = 2.0
HEARTBEAT_TIMEOUT = 5.0
RECONNECT_EVERY = 1.0

_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"
_HELD = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
    f"AND objsubid = 2 AND classid = $1::bigint::oid AND database = {_THIS_DATABASE}"
)
_LIVE = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
    f"AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND database = {_THIS_DATABASE}"
)
_WAITING = (
    "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
    "WHERE t.role = 'user' AND t.created_at > $1 "
    "AND NOT EXISTS (SELECT 1 FROM turns a WHERE a.reply_to = t.id)"
)
_NEXT_WAITING = (
    f"SELECT t.conversation_id, t.id, t.message_id {_WAITING} "
    "AND c.chat_id = $2 AND c.thread_id IS NOT DISTINCT FROM $3 ORDER BY t.id LIMIT 1"
)
_WAITING_KEYS = f"SELECT DISTINCT c.chat_id, c.thread_id {_WAITING}"
_STREAMING_ELSEWHERE = (
    "SELECT 1 FROM turns t JOIN conversations c ON c.id = t.conversation_id "
    "WHERE t.status = 'streaming' AND t.owner IS DISTINCT FROM $1 "
    "AND c.chat_id = $2 AND c.thread_id IS NOT DISTINCT FROM $3 LIMIT 1"
)

Session = Callable[[], contextlib.AbstractAsyncContextManager["Db"]]
Orphans = Callable[[], Awaitable[list[PendingAnswer]]]


class PostgresCoordination:
    """`storage.coordination.Coordination` for processes sharing one PostgreSQL database."""

    shared = True

    def __init__(self, url: str, instance_id: str, session: Session, orphans: Orphans) -> None:
        self.url = url
        self.instance_id = instance_id
        self._session = session
        self._orphans = orphans
        self._lease: asyncpg.Connection[asyncpg.Record] | None = None
        self._use = asyncio.Lock()  # one statement at a time on the lease connection
        self._held: Counter[ConversationKey] = Counter()  # leases by chat: claims holding each
        self._scope = ""  # the schema: leases of other schemas' deployments are theirs
        self._leading = False
        self._on_lost: Callable[[], None] = lambda: None
        self._on_wake: list[Callable[[ConversationKey], None]] = []
        self._on_stop: list[Callable[[ConversationKey], None]] = []
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self, *, on_lost: Callable[[], None]) -> None:
        """Connect the lease connection; a `StorageError` says why it cannot be."""
        self._on_lost = on_lost
        try:
            await self._connect()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise unreachable(self.url, exc) from exc
        self._watch = asyncio.create_task(self._keep_alive(), name="lease-heartbeat")

    async def close(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(lease.close(), HEARTBEAT_TIMEOUT)
            lease.terminate()

    # -- the lease connection -----------------------------------------------------------

    async def _connect(self) -> None:
        lease = await asyncpg.connect(self.url, timeout=10.0)
        self._scope = str(await lease.fetchval("SELECT current_schema()"))
        took = await lease.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            int(LockNamespace.INSTANCE),
            self.instance_id,
        )
        if took:
            await lease.execute("SELECT pg_advisory_lock_shared($1, $2)", *self._member())
        else:
            await lease.close()
            raise StorageError(
                f"The instance id {self.instance_id!r} is in use by another running process "
                "on this database: give each process its own PHI4BOT_INSTANCE_ID, or leave it "
                "unset."
            )
        await lease.add_listener(self._channel(CHANNEL), self._notified)
        await lease.add_listener(self._channel(STOP_CHANNEL), self._notified)
        self._held.clear()
        self._leading = False
        self._lease = lease

    async def _keep_alive(self) -> None:
        """Check the lease connection now and then; when it is gone, say so and reconnect."""
        while not self._closing:
            await asyncio.sleep(HEARTBEAT_EVERY)
            try:
                await self._fetchval("SELECT 1", timeout=HEARTBEAT_TIMEOUT)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("lost the coordination connection to %s: %s", redact(self.url), exc)
            lease, self._lease = self._lease, None
            if lease is not None:
                lease.terminate()
            self._held.clear()
            self._leading = False
            self._on_lost()
            while not self._closing and self._lease is None:
                try:
                    await self._connect()
                    log.info("coordination connection to %s is back", redact(self.url))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await asyncio.sleep(RECONNECT_EVERY)

    async def _fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self._use:
            if self._lease is None:
                raise ConnectionError("no coordination connection")
            return await self._lease.fetchval(query, *args, timeout=timeout)

    def _notified(self, _connection: Any, _pid: int, channel: str, payload: object) -> None:
        chat, _, thread = str(payload).partition(":")
        key = ConversationKey(int(chat), int(thread) if thread else None)
        for callback in self._on_stop if channel.startswith(STOP_CHANNEL) else self._on_wake:
            callback(key)

    # -- leases -------------------------------------------------------------------------

    async def claim(self, key: ConversationKey) -> bool:
        """The lease is per chat, so a group's forum topics are answered by one process at a
        time and its pace of 20 messages a minute holds. Claims of this process stack (the
        lock is taken once more per claim), so its topics run side by side."""
        try:
            took = await self._fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", *self._lease_key(key)
            )
        except (ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            return False
        if took:
            self._held[_chat(key)] += 1
        return bool(took)

    async def release(self, key: ConversationKey) -> None:
        chat = _chat(key)
        if self._held[chat] <= 0:
            return
        self._held[chat] -= 1
        if not self._held[chat]:
            del self._held[chat]
        with contextlib.suppress(
            ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError
        ):
            await self._fetchval("SELECT pg_advisory_unlock($1, $2)", *self._lease_key(key))

    def _lease_key(self, key: ConversationKey) -> tuple[int, int]:
        namespace = LockNamespace.CONVERSATION_LEASE
        return int(namespace), scoped_key(namespace, self._scope, _chat(key))

    def _channel(self, name: str) -> str:
        """A NOTIFY channel of this schema's deployment alone."""
        return f"{name}_{unsigned(self._member()[1]):08x}"

    def _member(self) -> tuple[int, int]:
        return int(LockNamespace.MEMBER), scoped_key(LockNamespace.MEMBER, self._scope)

    def _polling(self) -> tuple[int, int]:
        return int(LockNamespace.POLLING), scoped_key(LockNamespace.POLLING, self._scope)

    def holds(self, key: ConversationKey) -> bool:
        return self._held[_chat(key)] > 0

    async def try_lead(self) -> bool:
        if not self._leading:
            try:
                took = await self._fetchval("SELECT pg_try_advisory_lock($1, $2)", *self._polling())
            except (ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                return False
            self._leading = bool(took)
        return self._leading

    async def stop_leading(self) -> None:
        if not self._leading:
            return
        self._leading = False
        with contextlib.suppress(
            ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError
        ):
            await self._fetchval("SELECT pg_advisory_unlock($1, $2)", *self._polling())

    # -- what is waiting ----------------------------------------------------------------

    async def next_waiting(self, key: ConversationKey) -> WaitingTurn | None:
        async with self._session() as db:
            row = await db.fetchrow(_NEXT_WAITING, _since(), key.chat_id, key.thread_id)
        return None if row is None else WaitingTurn(key, row[0], row[1], row[2])

    async def waiting_conversations(self, within: float | None = None) -> list[ConversationKey]:
        async with self._session() as db:
            rows = await db.fetch(_WAITING_KEYS, _since(within))
            if not rows:
                return []
            held = {row[0] for row in await db.fetch(_HELD, int(LockNamespace.CONVERSATION_LEASE))}
        keys = (ConversationKey(row[0], row[1]) for row in rows)
        return [
            key for key in keys if unsigned(self._lease_key(key)[1]) not in held or self.holds(key)
        ]

    async def orphaned_answers(self) -> list[PendingAnswer]:
        return await self._orphans()

    async def live_instances(self) -> int:
        async with self._session() as db:
            namespace, key = self._member()
            found = await db.fetchval(_LIVE, namespace, unsigned(key))
        return max(1, int(found))

    # -- wake-ups -----------------------------------------------------------------------

    async def wake(self, key: ConversationKey) -> None:
        async with self._session() as db:
            await db.execute("SELECT pg_notify($1, $2)", self._channel(CHANNEL), _payload(key))

    def on_wake(self, callback: Callable[[ConversationKey], None]) -> None:
        self._on_wake.append(callback)

    async def stop_elsewhere(self, key: ConversationKey) -> bool:
        async with self._session() as db:
            found = await db.fetchval(
                _STREAMING_ELSEWHERE, self.instance_id, key.chat_id, key.thread_id
            )
            if found is None:
                return False
            await db.execute("SELECT pg_notify($1, $2)", self._channel(STOP_CHANNEL), _payload(key))
        return True

    def on_stop(self, callback: Callable[[ConversationKey], None]) -> None:
        self._on_stop.append(callback)


def _chat(key: ConversationKey) -> ConversationKey:
    """What a lease is taken on: the whole chat (every forum topic of a group)."""
    return ConversationKey(key.chat_id)


def _payload(key: ConversationKey) -> str:
    return f"{key.chat_id}:{'' if key.thread_id is None else key.thread_id}"


def _since(within: float | None = None) -> Any:
    return datetime.now(UTC) - timedelta(seconds=RECENT_SECONDS if within is None else within)
