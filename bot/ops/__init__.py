"""Running phi4bot as a service: the metrics and health endpoints, and what they look at."""

from __future__ import annotations

from bot.ops.readiness import Readiness
from bot.ops.server import MetricsPortUnavailable, OpsServer
from bot.ops.timed_store import timed_store

__all__ = ["MetricsPortUnavailable", "OpsServer", "Readiness", "timed_store"]
