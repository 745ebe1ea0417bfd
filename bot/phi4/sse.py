"""An incremental Server-Sent-Events parser: bytes in, in any chunking, complete events out."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event; `data` is its data lines joined by newlines, as the spec says."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Follows the WHATWG event-stream rules, so no chunk boundary can change what comes out.

    Network reads split the stream anywhere: inside a line, between CR and LF, even inside a
    multi-byte UTF-8 character. The parser keeps whatever is incomplete until the next `feed`.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._skip_lf = False
        self._at_start = True
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next bytes of the stream and return every event they complete."""
        text = self._decoder.decode(chunk)
        if self._at_start and text:
            # A byte-order mark may only open the stream; it is not part of the first field.
            text = text.removeprefix("\ufeff")
            self._at_start = False
        if self._skip_lf and text:
            # The previous chunk ended in CR, which already ended the line: an LF now is its pair.
            text = text.removeprefix("\n")
            self._skip_lf = False
        if not text:
            return []
        self._skip_lf = text.endswith("\r")
        pieces = _LINE_END.split(self._partial + text)
        self._partial = pieces.pop()
        events: list[ServerSentEvent] = []
        for line in pieces:
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        return events

    def _process_line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        """A blank line ends an event; one without data lines is dropped, per the spec."""
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return ServerSentEvent(
            data="\n".join(data), event=event or "message", id=self._id, retry=retry
        )
