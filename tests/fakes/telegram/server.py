"""The fake Bot API server: HTTP routing, authentication, flood control and fault injection."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .api import BY_LOWER_NAME, Handler
from .errors import ApiError
from .faults import Body, Fault, FaultPlan, failure_response
from .guest import GuestDriver, flood_subject
from .limits import (
    BOT_WIDE_METHODS,
    COUNTED_METHODS,
    TELEGRAM_LIMITS,
    Clock,
    FloodControl,
    Limits,
    real_clock,
)
from .media_driver import MediaDriver
from .observe import ChatObserver
from .params import Params, Upload
from .state import World
from .stats import ChatRequest, Stats
from .webhook import push_updates

# Telegram accepts uploads of up to 50 MB from bots.
MAX_UPLOAD = 50 * 1024 * 1024 + 1024 * 1024


def _reply(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class FakeTelegram(GuestDriver, MediaDriver, ChatObserver):
    """A Bot API server on 127.0.0.1 (random port) for one bot token.

    `url` is the TELEGRAM_API_URL to give the bot: methods live at `{url}/bot{token}/{method}`
    and files at `{url}/file/bot{token}/{file_path}`. For python-telegram-bot use
    `Bot(token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot")`.
    """

    def __init__(
        self,
        token: str = "123:ABC",
        bot_username: str = "phi4_test_bot",
        *,
        bot_name: str = "Phi-4 test bot",
        limits: Limits | None = TELEGRAM_LIMITS,
        clock: Clock = real_clock,
        port: int = 0,
    ) -> None:
        self.token = token
        self.clock = clock
        self.world = World(token, bot_username, bot_name, clock)
        self.stats = Stats()
        self.limits = limits
        self._faults = FaultPlan()
        self._down: Fault | None = None
        self._port = port
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.url = ""

    @property
    def limits(self) -> Limits | None:
        return self._flood.limits if self._flood else None

    @limits.setter
    def limits(self, limits: Limits | None) -> None:
        """Switch flood limits (None disables them); buckets start full again."""
        self._flood = FloodControl(limits, self.clock) if limits else None

    def spread_webhook(self, urls: list[str]) -> None:
        """Deliver webhook updates to these URLs in turn, as a load balancer in front of
        several bot processes would (while a webhook is set); a URL that fails is skipped
        for the next. `webhook_deliveries` counts the updates each one accepted."""
        self.world.webhook_spread = list(urls)

    @property
    def webhook_deliveries(self) -> dict[str, int]:
        return dict(self.world.webhook_deliveries)

    def fail_next(
        self,
        n: int = 1,
        status: int = 502,
        *,
        method: str,
        body: Body = "nginx",
        retry_after: int = 1,
    ) -> None:
        """Answer the next `n` calls of `method` with `status` instead of running them.

        The body is nginx's HTML error page (what a gateway in front of Telegram sends) or,
        with `body="telegram"`, Telegram's JSON; status 429 always carries `retry_after` and
        imposes it as a penalty on the call's chat (or the bot, for a call without a chat):
        counted calls before it ends are refused too. `method="download"` targets file
        downloads. A fault still waiting when the fake closes fails the test.
        """
        self._faults.add(Fault("fail", n, method, status, body, retry_after))

    def go_down(self, status: int = 502) -> None:
        """From now on answer every Bot API call (any method) with nginx's `status`
        page, as a gateway in front of a Telegram that is away does, until `come_back`."""
        self._down = Fault("fail", 1, "*", status)

    def come_back(self) -> None:
        """Telegram is back: calls are answered normally again."""
        self._down = None

    def reset_next(self, n: int = 1, *, method: str) -> None:
        """Close the connection of the next `n` calls of `method` without answering (the
        call is not run)."""
        self._faults.add(Fault("reset", n, method))

    def delay_next(self, n: int, seconds: float, *, method: str) -> None:
        """Hold the next `n` calls of `method` for `seconds` before running them (a slow
        network).

        A client that gives up first (a read timeout) closes the connection, and the call
        is then never run.
        """
        self._faults.add(Fault("delay", n, method, seconds=seconds))

    @property
    def pending_faults(self) -> list[str]:
        """The injected faults that have not met their calls yet, described."""
        return self._faults.pending()

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(
            app, shutdown_timeout=1.0, handler_cancellation=True, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._pusher = asyncio.create_task(push_updates(self.world))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
            self._pusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if exc is None and self.pending_faults:
            raise AssertionError(f"injected faults never met their calls: {self.pending_faults}")

    async def _method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _reply(401, ApiError(401, "Unauthorized").body())
        found = BY_LOWER_NAME.get(request.match_info["method"].lower())
        if found is None:
            return _reply(404, ApiError(404, "Not Found").body())
        name, handler = found
        self.stats.requests[name] += 1
        if self._down is not None:
            self.stats.faults += 1
            return failure_response(self._down)
        try:
            params = await _read_params(request)
            faulted = await self._fault(request, name, params)
            if faulted is not None:
                return faulted
            result = await self._call(name, handler, params)
        except ApiError as error:
            self.stats.errors[(name, error.status)] += 1
            return _reply(error.status, error.body())
        finally:
            self.world.notify()
        return _reply(200, {"ok": True, "result": result})

    def _charged_to(self, name: str, params: Params) -> tuple[bool, int | None, bool, int]:
        """Whether a call counts against flood limits, the windows it is charged to (a
        chat's; None: the bot's alone), whether they are a private chat's, and the chat
        `stats` record it under. A call about a guest message is charged to that message's
        own windows, like a group's (`guest`), and recorded under its chat."""
        lower = name.lower()
        if lower in COUNTED_METHODS or lower in BOT_WIDE_METHODS:
            subject = flood_subject(self.world, params)
            if subject is not None:
                return True, subject.key, False, subject.chat_id
        if lower in BOT_WIDE_METHODS or (lower in COUNTED_METHODS and "chat_id" not in params):
            return True, None, False, 0
        if lower not in COUNTED_METHODS:
            return False, None, False, 0
        chat = self.world.chat(params.chat_id())
        return True, chat.id, chat.private, chat.id

    async def _call(self, name: str, handler: Handler, params: Params) -> Any:
        """Run one method, charging flood-counted ones to their chat and the bot first."""
        counted, chat_id, private, recorded_as = self._charged_to(name, params)
        if not counted:
            result = handler(self.world, params)
            return await result if inspect.isawaitable(result) else result
        status = 200
        try:
            retry_after = self._flood.admit(chat_id, private) if self._flood else None
            if retry_after is not None:
                self.stats.flood_429 += 1
                self.stats.flood_429_by_chat[recorded_as] += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
                )
            return handler(self.world, params)
        except ApiError as error:
            status = error.status
            raise
        finally:
            self.stats.chat_requests[recorded_as].append(ChatRequest(self.clock(), name, status))

    async def _fault(
        self, request: web.Request, name: str, params: Params | None = None
    ) -> web.StreamResponse | None:
        """Apply the next injected fault for this call, if any; a response means "stop here"."""
        fault = self._faults.take(name)
        if fault is None:
            return None
        self.stats.faults += 1
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)  # simulated latency, not a wait for a condition
            return None
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)
        if fault.status == 429 and params is not None and self._flood is not None:
            _, chat_id, private, _ = self._charged_to(name, params)
            self._flood.penalize(chat_id, private, fault.retry_after)
        return failure_response(fault)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _reply(401, ApiError(401, "Unauthorized").body())
        self.stats.requests["download"] += 1
        faulted = await self._fault(request, "download")
        if faulted is not None:
            return faulted
        stored = self.world.files_by_path.get(request.match_info["path"])
        if stored is None:
            return _reply(404, ApiError(404, "Not Found").body())
        return web.Response(body=stored.data, content_type="application/octet-stream")


async def _read_params(request: web.Request) -> Params:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: JSON object expected")
            values.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    uploads[key] = Upload(value.filename, data, value.content_type)
                else:
                    values[key] = value
    return Params(values, uploads)
