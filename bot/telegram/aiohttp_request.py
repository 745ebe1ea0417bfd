"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

Every message the bot sends or edits is one Bot API request, so the HTTP client sits on
the streamed-answer path. Measured against a local server, PTB's default `HTTPXRequest`
spends 0.8–2 ms of CPU per request (more the more requests are in flight: httpcore's pool
walks every waiting request on each change), aiohttp 0.08–0.2 ms. aiohttp is already the
model client's HTTP library, so this costs no new dependency.

The wire stays what Telegram documents: parameters as a JSON body, or multipart form data
when files are uploaded; timeouts keep PTB's meaning as far as aiohttp can express them.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": BaseRequest.USER_AGENT}
PLAIN_HEADERS = {"User-Agent": BaseRequest.USER_AGENT}


class AiohttpRequest(BaseRequest):
    """One aiohttp session and connection pool; opened by `initialize`, closed by `shutdown`.

    PTB initialises and shuts down its requests with the application (and may do both again
    in one process), so the session is made in `initialize`, inside the running loop.
    Proxies from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` are honoured, as httpx did; they
    are looked up once per host, not per request as aiohttp's `trust_env` would (that reads
    the environment and ~/.netrc in a worker thread for every call).
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 1,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized")
        uploads = request_data is not None and request_data.contains_files
        timeout = self._timeout(
            read=_given(read_timeout, self._read_timeout),
            write=_given(
                write_timeout, self._media_write_timeout if uploads else self._write_timeout
            ),
            connect=_given(connect_timeout, self._connect_timeout),
            pool=_given(pool_timeout, self._pool_timeout),
        )
        body: bytes | aiohttp.FormData | None = None
        headers = PLAIN_HEADERS
        parameters = request_data.parameters if request_data is not None else None
        if request_data is not None and parameters:
            if uploads:
                body = _form(request_data)
            else:
                body, headers = orjson.dumps(parameters), JSON_HEADERS
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut(f"{api_method(url)} timed out") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy(self, url: str) -> str | None:
        parts = urlsplit(url)
        place = (parts.scheme, parts.hostname or "")
        if place not in self._proxies:
            bypass = urllib.request.proxy_bypass(place[1])
            proxy = None if bypass else urllib.request.getproxies().get(place[0])
            self._proxies[place] = proxy
        return self._proxies[place]

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """Telegram's JSON; an error page that is not JSON (a proxy's 404, nginx's 502) raises
        `TelegramError` quietly: PTB's own parser logs a traceback for every such page, and
        the error raised from it already quotes the page."""
        try:
            parsed: JSONDict = orjson.loads(payload)
        except orjson.JSONDecodeError:
            try:  # not valid UTF-8 JSON: read it as PTB would, bad bytes replaced
                replaced: JSONDict = json.loads(payload.decode("utf-8", "replace"))
            except ValueError:
                raise TelegramError("Invalid server response") from None
            return replaced
        return parsed

    @staticmethod
    def _timeout(
        *, read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        """PTB's four timeouts in aiohttp's terms.

        aiohttp has no write timeout of its own: the whole request is bounded by the sum of
        the phases instead, so a stalled upload still ends.
        """
        phases = [phase for phase in (read, write, connect, pool) if phase is not None]
        total = sum(phases) if len(phases) == 4 else None
        waiting = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(
            total=total, connect=waiting, sock_connect=connect, sock_read=read
        )


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _form(request_data: RequestData) -> aiohttp.FormData:
    """Parameters and files as multipart form data, the only way Telegram takes uploads."""
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form


def api_method(url: str) -> str:
    """The Bot API method a URL calls (`.../bot<token>/sendMessage` → sendMessage; a file
    download → downloadFile): what logs and metrics may name instead of the token-bearing URL."""
    if "/file/bot" in url:
        return "downloadFile"
    return url.rsplit("/", 1)[-1].split("?", 1)[0]
