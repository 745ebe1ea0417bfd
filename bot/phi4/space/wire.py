"""The HTTP calls a Space turn makes, each turning network and HTTP failures into typed errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from bot.phi4.conversation import Attachment
from bot.phi4.errors import (
    AccessDenied,
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    Phi4Error,
    QuotaExceeded,
    SpaceAsleep,
    SpaceNotFound,
    SpacePaused,
)
from bot.phi4.failures import misconfigured_connection
from bot.phi4.space.turn import is_asleep
from bot.phi4.space.zerogpu import ZeroGpuAuth

log = logging.getLogger(__name__)


class SpaceWire:
    """One Space root's requests, sharing a session and the credential headers."""

    def __init__(
        self,
        root: str,
        auth: ZeroGpuAuth,
        session: aiohttp.ClientSession | None,
        connect_timeout: float,
        stream_timeout: float,
    ) -> None:
        self.root = root
        self.connect_timeout = connect_timeout
        self._auth = auth
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=stream_timeout,
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        """The given session, or one created on first use (and closed by `aclose`)."""
        if self._session is None:
            # No cap on connections: each answer holds one while it streams, and a capped pool
            # would hold back (and, after the connect timeout, fail) every answer beyond it.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get_config(self) -> dict[str, Any] | None:
        """The Space's `/config`; None when it answers 200 with something else than an object."""
        async with self._request("GET", "/config", what="/config") as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                return None
        return body if isinstance(body, dict) else None

    async def upload(
        self, prefix: str, session_hash: str, attachments: Sequence[Attachment]
    ) -> list[str]:
        """Upload the files and return the server paths, one per attachment in order."""
        if not attachments:
            return []
        form = aiohttp.FormData()
        for attachment in attachments:
            form.add_field(
                "files",
                attachment.data,
                filename=attachment.filename,
                content_type=attachment.mime_type,
            )
        async with self._request(
            "POST",
            f"{prefix}/upload",
            what="the upload",
            params={"upload_id": session_hash},
            data=form,
        ) as response:
            paths = await _json(response, "the upload")
        if not isinstance(paths, list) or len(paths) != len(attachments):
            raise BadAnswer(f"upload answered {paths!r:.200} for {len(attachments)} files")
        if not all(isinstance(p, str) for p in paths):
            raise BadAnswer(f"upload answered non-path entries: {paths!r:.200}")
        log.debug("uploaded %d file(s) to the Space", len(paths))
        return paths

    async def has_file(self, prefix: str, path: str) -> bool:
        """Whether the Space still serves an uploaded file (a HEAD request; any failure is no)."""
        try:
            async with self.session.head(
                f"{self.root}{prefix}/file={path}",
                headers=self._auth.space_headers(),
                timeout=aiohttp.ClientTimeout(total=self.connect_timeout),
                allow_redirects=False,
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("could not check %s on the Space: %s", path, type(exc).__name__)
            return False

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body and return the JSON object answered."""
        async with self._request("POST", path, what=path, json=body) as response:
            answer = await _json(response, path)
        if not isinstance(answer, dict):
            raise BadAnswer(f"{path} answered {answer!r:.200}")
        return answer

    @contextlib.asynccontextmanager
    async def open_stream(
        self, prefix: str, session_hash: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The `/queue/data` event stream; reading it (with its own stall timer) is the caller's."""
        async with self._request(
            "GET",
            f"{prefix}/queue/data",
            what="the answer stream",
            params={"session_hash": session_hash},
            headers={"Accept": "text/event-stream"},
            timeout=self._stream_timeout,
        ) as response:
            yield response

    async def cancel(self, prefix: str, body: dict[str, Any]) -> None:
        """Best effort: tell Gradio to stop an event nobody reads any more."""
        try:
            async with self.session.post(
                f"{self.root}{prefix}/cancel",
                json=body,
                headers=self._auth.space_headers(),
                timeout=aiohttp.ClientTimeout(total=self.connect_timeout),
            ) as response:
                log.debug("cancelled event %s: HTTP %s", body.get("event_id"), response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("could not cancel event %s: %s", body.get("event_id"), type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        url = f"{self.root}{path}"
        all_headers = {**self._auth.space_headers(), **(headers or {})}
        try:
            async with self.session.request(
                method, url, headers=all_headers, timeout=timeout or self._timeout, **kwargs
            ) as response:
                log.debug("%s %s -> HTTP %s", method, url, response.status)
                if response.status != 200:
                    raise await _status_error(response, what, self.root)
                yield response
        except Phi4Error:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise BackendUnavailable(
                f"{url}: no connection within {self.connect_timeout:g} s"
            ) from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise BackendTimeout(f"{url}: no answer in time") from exc
        except aiohttp.ClientError as exc:
            misconfigured = misconfigured_connection(exc, self.root)
            raise misconfigured or BackendUnavailable(
                f"{url}: {type(exc).__name__}: {exc}"
            ) from exc


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError as exc:
        raise BadAnswer(f"{what} answered something other than JSON") from exc


async def _status_error(response: aiohttp.ClientResponse, what: str, root: str) -> Phi4Error:
    """The typed error for a non-200 answer, read from its status and the start of its body."""
    try:
        body = (await response.content.read(4096)).decode("utf-8", errors="replace")
    except aiohttp.ClientError:
        body = ""
    status = response.status
    detail = f"{root}: {what} answered HTTP {status}: {' '.join(body.split())[:200]}"
    if "queue is full" in body.lower():
        return QuotaExceeded(detail)
    if is_asleep(status, body):
        if "paused" in body.lower():
            return SpacePaused(detail, where=root)
        return SpaceAsleep(detail)
    if status in (401, 403):
        return AccessDenied(detail, where=root)
    if status == 404 and what == "/config":
        return SpaceNotFound(detail, where=root)
    if status == 429:
        return QuotaExceeded(detail)
    return BackendUnavailable(detail)
