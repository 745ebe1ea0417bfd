"""Injected transport failures: error pages, dropped connections and slow answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from aiohttp import web

FaultKind = Literal["fail", "reset", "delay"]
Body = Literal["nginx", "telegram"]


@dataclass
class Fault:
    """The next `remaining` calls of `method` meet this failure."""

    kind: FaultKind
    remaining: int
    method: str
    status: int = 502
    body: Body = "nginx"
    retry_after: int = 1
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        return self.method.lower() == method.lower()

    def describe(self) -> str:
        what = f"{self.kind} {self.status}" if self.kind == "fail" else self.kind
        return f"{what} x{self.remaining} on {self.method}"


class FaultPlan:
    """Faults in the order they were asked for; each call consumes at most one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.remaining > 0:
            self._faults.append(fault)

    def pending(self) -> list[str]:
        """The faults still waiting for their calls."""
        return [fault.describe() for fault in self._faults]

    def take(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None


def failure_response(fault: Fault) -> web.Response:
    """What the client receives for a "fail" fault: nginx's error page or a Telegram body."""
    phrase = HTTPStatus(fault.status).phrase
    if fault.status == 429 or fault.body == "telegram":
        body: dict[str, object] = {"ok": False, "error_code": fault.status, "description": phrase}
        if fault.status == 429:
            body["description"] = f"Too Many Requests: retry after {fault.retry_after}"
            body["parameters"] = {"retry_after": fault.retry_after}
        return web.Response(
            status=fault.status, text=json.dumps(body), content_type="application/json"
        )
    page = (
        f"<html>\r\n<head><title>{fault.status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{fault.status} {phrase}</h1></center>\r\n"
        "<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(status=fault.status, text=page, content_type="text/html")
