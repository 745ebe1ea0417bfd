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


_BOM = b"\xef\xbb\xbf"


class SSEDataParser:
    """The hot path's parser: bytes in, the data of each complete event out, as bytes.

    Same line rules as `SSEParser` (CR, LF and CRLF, split anywhere, a leading byte-order
    mark), but only `data` fields are kept: both backends read nothing else. Working on bytes
    means no decoding per read, and a line is only ever cut at a line end, never inside a
    UTF-8 character, so each event's data can go straight to a JSON parser.
    """

    __slots__ = ("_at_start", "_buffer", "_data", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._skip_lf = False
        self._at_start = True

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take the next bytes of the stream and return the data of every event they complete."""
        if self._skip_lf and chunk:
            # The previous chunk ended in CR, which already ended the line: an LF now is its pair.
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        if self._at_start:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer  # maybe a byte-order mark, not complete yet
                return []
            self._at_start = False
            buffer = buffer.removeprefix(_BOM)
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = []
            elif line.startswith(b"data"):
                value = line[4:]
                if not value:
                    data.append(b"")
                elif value[:1] == b":":
                    data.append(value[2:] if value[1:2] == b" " else value[1:])
                # else: another field whose name starts with "data" (ignored, per the spec)
        self._data = data
        return events
