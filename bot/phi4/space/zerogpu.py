"""The Hugging Face credentials a Space request carries: the user's token and a ZeroGPU JWT.

ZeroGPU Spaces meter GPU time per caller, and anonymous callers get almost none. With an
`HF_TOKEN` the hub issues a short-lived JWT for one Space
(`GET {hf_endpoint}/api/spaces/<owner>/<name>/jwt`), sent as `x-zerogpu-token` with a
session id in `x-zerogpu-uuid`, so the GPU time is billed to the token's owner. The JWT is
renewed a minute before it expires. Without a token no credential header is sent at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)


def space_id_from_url(url: str) -> str | None:
    """Guess `owner/name` from a `*.hf.space` root, splitting the subdomain at its first hyphen.

    The hub builds the subdomain as `<owner>-<name>` with dots and underscores turned into
    hyphens, so the split is ambiguous when the owner has a hyphen; the Space's own `/config`
    states its `space_id` and is preferred whenever it is available.
    """
    host = urlsplit(url).hostname or ""
    if not host.endswith(".hf.space"):
        return None
    owner, _, name = host.removesuffix(".hf.space").partition("-")
    return f"{owner}/{name}" if owner and name else None


class ZeroGpuAuth:
    """Builds the credential headers for Space requests and keeps the JWT fresh."""

    lifetime = timedelta(minutes=10)
    refresh_margin = timedelta(seconds=60)
    retry_after_failure = 60.0

    def __init__(
        self,
        hf_token: str | None,
        hf_endpoint: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hf_token = hf_token
        self._hf_endpoint = hf_endpoint.rstrip("/")
        self._clock = clock
        self._uuid = uuid.uuid4().hex
        self._jwt: str | None = None
        self._jwt_good_until = 0.0
        self._next_attempt = 0.0
        self._warned_no_space = False
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._hf_token)

    def space_headers(self) -> dict[str, str]:
        """Headers for every request to the Space (the JWT ones once a JWT is held)."""
        if not self._hf_token:
            return {}
        headers = {"Authorization": f"Bearer {self._hf_token}"}
        if self._jwt is not None and self._clock() < self._jwt_good_until:
            headers["x-zerogpu-token"] = self._jwt
            headers["x-zerogpu-uuid"] = self._uuid
        return headers

    async def refresh(
        self, session: aiohttp.ClientSession, space_id: str | None, timeout: float
    ) -> None:
        """Obtain a new JWT when none is held or it is about to expire; failures only warn."""
        if not self._hf_token:
            return
        if space_id is None:
            if not self._warned_no_space:
                log.warning("the Space's owner/name is unknown, so no ZeroGPU token is requested")
                self._warned_no_space = True
            return
        async with self._lock:
            now = self._clock()
            margin = self.refresh_margin.total_seconds()
            if self._jwt is not None and now < self._jwt_good_until - margin:
                return
            if now < self._next_attempt:
                return
            self._jwt = await self._fetch(session, space_id, timeout)
            if self._jwt is None:
                self._next_attempt = now + self.retry_after_failure
            else:
                self._jwt_good_until = now + self.lifetime.total_seconds()

    async def _fetch(
        self, session: aiohttp.ClientSession, space_id: str, timeout: float
    ) -> str | None:
        expires = datetime.now(UTC) + self.lifetime
        url = f"{self._hf_endpoint}/api/spaces/{space_id}/jwt"
        params = {
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{expires.microsecond // 1000:03d}Z",
            "include_pro_status": "true",
        }
        headers = {"Authorization": f"Bearer {self._hf_token}"}
        try:
            async with session.get(
                url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                if response.status != 200:
                    log.warning(
                        "ZeroGPU token for %s refused (HTTP %s); going on without it",
                        space_id,
                        response.status,
                    )
                    return None
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "ZeroGPU token for %s unavailable (%s); going on without it",
                space_id,
                type(exc).__name__,
            )
            return None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            log.warning("ZeroGPU token answer for %s had no token; going on without it", space_id)
            return None
        log.debug("obtained a ZeroGPU token for %s", space_id)
        return token
