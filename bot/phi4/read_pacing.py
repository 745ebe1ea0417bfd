"""Spacing the reads of a streamed answer, so several chunks cost one wake-up.

A model server sends each token as soon as it has it: at 50 tokens/s, 200 answers are
10,000 socket reads a second, each waking the parser, the JSON decoder and the answer's
task. Telegram shows an answer's progress an edit at a time (a second or more apart), so
reading it a few times a second changes nothing anyone sees.
"""

from __future__ import annotations

import asyncio

READ_GAP = 0.1
"""Once an answer has flowed for `GATHER_AFTER` seconds, the backends read its stream at most
this often (seconds): what arrives meanwhile is handled in one wake-up instead of one each."""
GATHER_AFTER = 0.25


class ReadPacer:
    """When a backend reads its stream next, and the pause until then.

    During an answer's first `GATHER_AFTER` seconds every read happens at once, so the first
    message shows whatever has arrived (a short answer sent in one burst arrives whole).
    After that, reads are `READ_GAP` seconds apart; meanwhile the socket is not even polled,
    so the kernel gathers the chunks and one read takes them all, instead of the event loop
    and the HTTP client handling each as it lands.
    """

    __slots__ = ("_first_text", "next_read")

    def __init__(self) -> None:
        self._first_text: float | None = None
        self.next_read = 0.0

    def text_given(self, now: float) -> None:
        """Text was handed on at `now`."""
        if self._first_text is None:
            self._first_text = now
        elif now - self._first_text >= GATHER_AFTER:
            self.next_read = now + READ_GAP

    async def wait(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport | None
    ) -> None:
        """Return when the next read is due; until then `transport` (the stream's socket,
        if known) is not read, unless something else paused it already."""
        delay = self.next_read - loop.time()
        if delay <= 0:
            return
        paused = transport is not None and transport.is_reading()
        if transport is not None and paused:
            transport.pause_reading()
        try:
            await asyncio.sleep(delay)
        finally:
            if transport is not None and paused and not transport.is_closing():
                transport.resume_reading()
