"""The error a Bot API method answers with, shaped exactly like Telegram's error replies."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal with Telegram's HTTP status, `description` and optional `parameters`.

    Methods raise it wherever Telegram would answer `{"ok": false, ...}`, so the HTTP layer
    has one place that turns refusals into replies.
    """

    def __init__(self, status: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this refusal."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str, **parameters: Any) -> ApiError:
    """A 400 whose description starts with "Bad Request: ", as every Telegram 400 does."""
    return ApiError(400, f"Bad Request: {detail}", **parameters)


def cant_parse(detail: str) -> ApiError:
    """The 400 Telegram answers for malformed `entities` or markup under `parse_mode`."""
    return bad_request(f"can't parse entities: {detail}")
