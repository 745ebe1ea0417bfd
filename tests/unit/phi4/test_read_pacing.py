"""Reads of a streamed answer are spaced once it flows, and the socket rests meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.phi4.read_pacing import GATHER_AFTER, READ_GAP, ReadPacer

CHUNK = b"data: {}\n\n"


def test_reads_are_spaced_only_after_the_answer_has_flowed_a_while() -> None:
    pacer = ReadPacer()
    pacer.text_given(10.0)
    pacer.text_given(10.0 + GATHER_AFTER / 2)
    assert pacer.next_read == 0.0  # early in the answer: read again at once
    pacer.text_given(10.0 + GATHER_AFTER)
    assert pacer.next_read == 10.0 + GATHER_AFTER + READ_GAP


@pytest.fixture
async def ticking_stream() -> AsyncIterator[str]:
    """A server that sends one small event every 5 ms, for 2 s."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(400):
            await response.write(CHUNK)
            await asyncio.sleep(0.005)
        return response

    app = web.Application()
    app.router.add_get("/", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_while_waiting_the_socket_is_not_read_and_one_read_takes_what_gathered(
    ticking_stream: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session, session.get(ticking_stream) as response:
        assert response.connection is not None
        transport = response.connection.transport
        assert transport is not None
        pacer = ReadPacer()
        pacer.text_given(loop.time() - GATHER_AFTER)
        pacer.text_given(loop.time())  # flowing: the next read is READ_GAP away
        await response.content.readany()  # what arrived before the pause
        seen_reading: list[bool] = []

        async def watch() -> None:
            await asyncio.sleep(READ_GAP / 2)
            seen_reading.append(transport.is_reading())

        watcher = asyncio.create_task(watch())
        await pacer.wait(loop, transport)
        await watcher
        assert seen_reading == [False], "the socket was polled during the pause"
        assert transport.is_reading()
        gathered = await response.content.readany()
        assert gathered.count(CHUNK) >= 5, "one read after the pause takes every chunk sent"


async def test_a_transport_paused_by_someone_else_stays_paused() -> None:
    class Paused(asyncio.Transport):
        resumed = False

        def is_reading(self) -> bool:
            return False

        def resume_reading(self) -> None:
            self.resumed = True

    loop = asyncio.get_running_loop()
    pacer = ReadPacer()
    pacer.next_read = loop.time() + 0.01
    transport = Paused()
    await pacer.wait(loop, transport)
    assert not transport.resumed
