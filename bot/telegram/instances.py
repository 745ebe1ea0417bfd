"""This process among others sharing one database: who long-polls, and its part of the budget.

Telegram lets one process at a time long-poll a token (a second gets 409 Conflict), so with
several processes the one holding the polling lease polls and the others stand by, answering
the conversations they claim; when the poller dies, its lease is free and another takes over
within about a second. Telegram's rate limits are per bot, so each live process keeps an
equal part of the bot-wide budget, recomputed every second from the number of live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from socket import socket
from typing import Any

from telegram.error import TelegramError
from telegram.ext import Updater

from bot.conversation.sharing import SharedAnswering
from bot.shared.tasks import TaskSupervisor
from bot.telegram.streaming.pacing import RateBudget
from bot.telegram.webhook import GuardedWebhookApp, GuardedWebhookServer
from storage import Coordination

log = logging.getLogger(__name__)

LEAD_RETRY = 1.0
SHARE_EVERY = 1.0


class LeaderUpdater(Updater):
    """An `Updater` that long-polls only while this process holds the polling lease, and
    serves its webhook through the guarded handler."""

    coordination: Coordination | None = None

    def __init__(self, bot: Any, update_queue: asyncio.Queue[object]) -> None:
        super().__init__(bot=bot, update_queue=update_queue)
        self._leading: asyncio.Task[None] | None = None
        self._polling: dict[str, Any] = {}

    async def start_polling(
        self,
        poll_interval: float = 0.0,
        timeout: int | dtm.timedelta = dtm.timedelta(seconds=10),
        bootstrap_retries: int = 0,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool | None = None,
        error_callback: Callable[[TelegramError], None] | None = None,
    ) -> asyncio.Queue[object]:
        self._polling = {
            "poll_interval": poll_interval,
            "timeout": timeout,
            "bootstrap_retries": bootstrap_retries,
            "allowed_updates": allowed_updates,
            "drop_pending_updates": drop_pending_updates,
            "error_callback": error_callback,
        }
        if self.coordination is None or not self.coordination.shared:
            return await super().start_polling(**self._polling)
        self._stand_by()
        return self.update_queue

    async def _start_webhook(
        self,
        listen: str,
        port: int,
        url_path: str,
        bootstrap_retries: int,
        allowed_updates: Sequence[str] | None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        drop_pending_updates: bool | None = None,
        webhook_url: str | None = None,
        ready: asyncio.Event | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix: str | Path | socket | None = None,
    ) -> None:
        """PTB's own start, with the guarded server of `bot.telegram.webhook` (a wrong secret
        or a big body refused from the headers). The bot serves plain HTTP on a TCP port
        behind a reverse proxy: `cert`, `key` and `unix` are not used by `phi4bot run`."""
        if cert is not None or key is not None or unix is not None:
            raise ValueError("phi4bot's webhook serves plain HTTP on a TCP port")
        path = url_path if url_path.startswith("/") else f"/{url_path}"
        app = GuardedWebhookApp(path, self.bot, self.update_queue, secret_token)
        self._httpd = GuardedWebhookServer(listen, port, app)
        await self._bootstrap(
            max_retries=bootstrap_retries,
            drop_pending_updates=drop_pending_updates,
            webhook_url=webhook_url,
            allowed_updates=allowed_updates,
            ip_address=ip_address,
            max_connections=max_connections,
            secret_token=secret_token,
        )
        await self._httpd.serve_forever(ready=ready)

    def _stand_by(self) -> None:
        self._leading = asyncio.create_task(self._lead(), name="polling-lease")

    async def _lead(self) -> None:
        coordination = self.coordination
        assert coordination is not None
        announced = False
        while not await coordination.try_lead():
            if not announced:
                log.info("another instance polls Telegram; this one stands by")
                announced = True
            await asyncio.sleep(LEAD_RETRY)
        log.info("this instance (%s) polls Telegram now", coordination.instance_id)
        await super().start_polling(**self._polling)

    async def hand_back(self) -> None:
        """The polling lease is gone with the coordination connection: stop polling (another
        process may be polling already) and stand by for the lease again."""
        await self._stop_leading()
        if self.running:
            await super().stop()
        self._stand_by()

    async def _stop_leading(self) -> None:
        task, self._leading = self._leading, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        await self._stop_leading()
        if self.running:
            await super().stop()


class Peers:
    """This process's part in a deployment of several on one database."""

    def __init__(
        self,
        coordination: Coordination,
        sharing: SharedAnswering,
        budget: RateBudget,
        updater: Updater | None,
        tasks: TaskSupervisor,
    ) -> None:
        self.coordination = coordination
        self.sharing = sharing
        self.budget = budget
        self.updater = updater if isinstance(updater, LeaderUpdater) else None
        self._sharer: asyncio.Task[None] | None = None
        self._tasks = tasks

    async def start(self) -> None:
        """Announce this process, take its part of the budget, then start claiming."""
        await self.coordination.open(on_lost=self._lost)
        if self.updater is not None:
            self.updater.coordination = self.coordination
        await self._share()
        self._sharer = asyncio.create_task(self._share_forever(), name="budget-share")
        self.sharing.start()

    async def stop(self) -> None:
        """Stop polling (another process takes over at once), claiming and sharing; answers
        under way are the lanes' to stop."""
        if self.updater is not None:
            await self.updater.stop()
        await self.coordination.stop_leading()
        if self._sharer is not None:
            self._sharer.cancel()
            await asyncio.wait([self._sharer])
        await self.sharing.stop()

    async def close(self) -> None:
        """Give up every lease (the other processes take over at once)."""
        await self.coordination.close()

    def _lost(self) -> None:
        self.sharing.lost()
        if self.updater is not None:
            self._tasks.spawn(
                self.updater.hand_back(), name="polling-hand-back", cancel_at_shutdown=True
            )

    async def _share(self) -> None:
        live = await self.coordination.live_instances()
        before = self.budget.window_cap
        self.budget.share(live)
        if self.budget.window_cap != before:
            log.info(
                "%d instances live; this one sends up to %d requests/s",
                live,
                self.budget.window_cap,
            )

    async def _share_forever(self) -> None:
        while True:
            await asyncio.sleep(SHARE_EVERY)
            try:
                await self._share()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("counting the live instances failed: %s", exc)
