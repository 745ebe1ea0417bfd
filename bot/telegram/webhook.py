"""The webhook endpoint, guarded: a wrong secret or a body over 1 MB is refused from the headers.

python-telegram-bot's Tornado handler reads the whole body (up to Tornado's 100 MB) before it
looks at the secret token, so anyone who can reach the port can make the bot hold hundreds
of MB. Here the handler streams the body (`stream_request_body`): `prepare` runs on the
headers alone, and a declared length over `MAX_BODY_BYTES` is answered at once (403 for a
missing or wrong secret, else 413) and the connection closed unread; a small body with a
wrong secret is read to its end and dropped, then answered 403, so the connection stays
usable; a body that grows past the limit while arriving is cut off the same way. An update
from Telegram is a few kB.
"""

from __future__ import annotations

import asyncio
import hmac
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookAppClass, WebhookServer
from tornado.httpserver import HTTPServer

MAX_BODY_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@tornado.web.stream_request_body
class GuardedTelegramHandler(TelegramHandler):
    """PTB's handler, deciding on the headers before any of the body is read."""

    SUPPORTED_METHODS = ("GET", "POST")  # type: ignore[assignment]
    """GET is answered 405 once its (empty) body is read: refused in `prepare`, a request
    with a body not read would close the connection, and a client's next request on it fail."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self._chunks: list[bytes] = []
        self._received = 0
        self._forbidden = False

    def prepare(self) -> None:
        if self.request.method != "POST":
            return  # answered 405 by `get`
        declared = self.request.headers.get("Content-Length", "")
        too_big = declared.isdigit() and int(declared) > MAX_BODY_BYTES
        if self.secret_token:
            given = self.request.headers.get(SECRET_HEADER, "")
            self._forbidden = not hmac.compare_digest(given.encode(), self.secret_token.encode())
        if self._forbidden and too_big:
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)  # the connection closes unread
        if too_big:
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > MAX_BODY_BYTES:  # chunked, with no length declared
            self._chunks.clear()
            raise tornado.web.HTTPError(
                HTTPStatus.FORBIDDEN if self._forbidden else HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            )
        if not self._forbidden:  # a small forged body is read to its end, never kept
            self._chunks.append(chunk)

    async def get(self) -> None:
        raise tornado.web.HTTPError(HTTPStatus.METHOD_NOT_ALLOWED)

    async def post(self) -> None:
        if self._forbidden:
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        self.request.body = b"".join(self._chunks)
        self._chunks.clear()
        await super().post()


class GuardedWebhookApp(WebhookAppClass):
    """PTB's webhook application (its quiet request log), with the guarded handler."""

    def __init__(
        self,
        webhook_path: str,
        bot: Any,
        update_queue: asyncio.Queue[object],
        secret_token: str | None = None,
    ) -> None:
        # PTB's __init__ would route the path to its own handler: set up as it does, guarded.
        self.shared_objects = {
            "bot": bot,
            "update_queue": update_queue,
            "secret_token": secret_token,
        }
        handlers = [(rf"{webhook_path}/?", GuardedTelegramHandler, self.shared_objects)]
        tornado.web.Application.__init__(self, handlers)


class GuardedWebhookServer(WebhookServer):
    """PTB's webhook server, its Tornado server refusing bodies over `MAX_BODY_BYTES`."""

    def __init__(self, listen: str, port: int, webhook_app: GuardedWebhookApp) -> None:
        super().__init__(listen, port, webhook_app, None)
        self._http_server = HTTPServer(
            webhook_app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=60
        )
