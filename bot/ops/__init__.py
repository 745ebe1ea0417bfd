"""Running phi4bot as a service: the metrics and health endpoints, and what they look at."""

from __future__ import annotations

from bot.ops.readiness import Readiness
from bot.ops.server import MetricsPortUnavailable, OpsServer

__all__ = ["MetricsPortUnavailable", "OpsServer", "Readiness"]
