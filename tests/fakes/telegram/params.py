"""Typed access to a Bot API call's parameters, however the client encoded them.

Telegram accepts the same call as a query string, `application/x-www-form-urlencoded`,
`application/json` or `multipart/form-data`. In the form encodings every value is a string
and structured values (entities, reply parameters) are JSON strings; in JSON they are native.
`Params` hides the difference so methods read `params.integer("chat_id")` and move on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request


@dataclass(frozen=True)
class Upload:
    """A file sent as a multipart part: what the client called it and its bytes."""

    filename: str
    data: bytes
    content_type: str | None


class Params:
    """One call's parameters; getters convert and raise Telegram's 400s on bad input."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload]) -> None:
        self._values = dict(values)
        self._uploads = dict(uploads)

    def __contains__(self, name: str) -> bool:
        return name in self._values or name in self._uploads

    def raw(self, name: str) -> Any:
        """The value as it arrived (string, number, list, dict) or None."""
        return self._values.get(name)

    def integer(self, name: str) -> int:
        value = self.optional_integer(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def optional_integer(self, name: str) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None

    def optional_number(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def chat_id(self) -> int | str:
        """`chat_id` as an integer, or the "@username" string Telegram also accepts."""
        value = self._values.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            return value
        return self.integer("chat_id")

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def flag(self, name: str) -> bool:
        value = self._values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def structured(self, name: str) -> Any:
        """A JSON-typed parameter: decoded from its string form or taken as sent."""
        value = self._values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def upload(self, name: str) -> Upload | str | None:
        """A file parameter: an `Upload` (direct or via "attach://<part>") or a file_id/URL."""
        if name in self._uploads:
            return self._uploads[name]
        value = self.text(name)
        if value is not None and value.startswith("attach://"):
            part = self._uploads.get(value.removeprefix("attach://"))
            if part is None:
                raise bad_request(f"file {value} not found in the request")
            return part
        return value
