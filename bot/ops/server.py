"""The operator's port: Prometheus `/metrics`, `/healthz` and `/readyz`, served by aiohttp."""

from __future__ import annotations

import ipaddress
import logging
import time

from aiohttp import web

from bot import metrics
from bot.ops.readiness import Readiness

log = logging.getLogger(__name__)


class MetricsPortUnavailable(Exception):
    """The metrics port cannot be opened (in use, or the address is not this machine's)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(
            f"cannot serve metrics on {host}:{port} ({reason}); "
            "check PHI4BOT_METRICS_PORT and PHI4BOT_METRICS_HOST"
        )


class OpsServer:
    """Started and stopped explicitly by the application's lifecycle, on its event loop.

    `/healthz` answers as long as the process runs and its event loop serves requests;
    `/readyz` answers 200 or 503 with the checks as JSON (see `Readiness`).
    """

    def __init__(self, host: str, port: int, readiness: Readiness) -> None:
        self.host = host
        self.port = port
        self.readiness = readiness
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise MetricsPortUnavailable(self.host, self.port, exc.strerror or str(exc)) from exc
        self._runner = runner
        log.info("metrics and health on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        uptime = round(time.monotonic() - self._started, 1)
        return web.json_response({"status": "ok", "uptime_seconds": uptime})

    async def _readyz(self, request: web.Request) -> web.Response:
        """The checks and reasons for a caller on this machine; elsewhere only ready or not
        (the reasons name servers and errors an outsider has no business reading)."""
        report = await self.readiness.check()
        body = report.as_json() if _loopback(request.remote) else {"ready": report.ready}
        return web.json_response(body, status=200 if report.ready else 503)


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False  # a unix socket or a name: not known to be this machine
