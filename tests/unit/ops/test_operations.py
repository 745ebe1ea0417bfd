"""What operators read: metric recording helpers, the backend and store wrappers, readiness."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from bot import metrics
from bot.ops import OpsServer, Readiness
from bot.ops.readiness import BACKEND_RECHECK, REPORT_TTL, TELEGRAM_FRESH
from bot.phi4 import BackendUnavailable, Conversation, Turn
from bot.phi4.backend import QueueListener
from bot.phi4.chain import FallbackChain
from bot.phi4.instrumented import InstrumentedBackend, instrument
from bot.phi4.replicas import ReplicaPool
from bot.shared import MediaKind
from bot.telegram.streaming.pacing import Priority, RateBudget
from storage import AnswerCheckpoint, ConversationKey, StorageError, open_store


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class ScriptedBackend:
    """Yields the given chunks, then raises `error` if one is given."""

    def __init__(self, name: str, chunks: list[str], error: Exception | None = None) -> None:
        self.name = name
        self.accepts: frozenset[MediaKind] = frozenset()
        self.chunks = chunks
        self.error = error
        self.probe_error: Exception | None = None
        self.probes = 0

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error

    async def probe(self) -> str:
        self.probes += 1
        if self.probe_error is not None:
            raise self.probe_error
        return "fine"

    async def aclose(self) -> None:
        pass


CONVERSATION = Conversation((Turn("user", "hi"),))


def test_telegram_statuses_become_bounded_outcomes() -> None:
    assert [metrics.telegram_outcome(s) for s in (200, 400, 403, 429, 500, 502)] == [
        "ok",
        "4xx",
        "4xx",
        "429",
        "5xx",
        "5xx",
    ]
    assert metrics.telegram_method("sendMessage") == "sendMessage"
    assert metrics.telegram_method("photo_17.jpg") == "other"


def test_an_answer_moves_the_answer_histograms_and_the_turn_counter() -> None:
    before = value("phi4bot_time_to_first_text_seconds_count")
    answered = value("phi4bot_turns_total", outcome="answered")
    metrics.record_answer(
        "answered",
        received_at=100.0,
        started_at=100.5,
        first_chunk_at=101.0,
        shown_at=101.25,
        ended_at=103.0,
        length=42,
    )
    assert value("phi4bot_time_to_first_text_seconds_count") == before + 1
    assert value("phi4bot_time_to_first_text_seconds_bucket", le="2.0") >= 1
    assert value("phi4bot_turns_total", outcome="answered") == answered + 1


def test_an_answer_that_failed_before_any_text_adds_no_time_to_first_text() -> None:
    before = value("phi4bot_time_to_first_text_seconds_count")
    metrics.record_answer(
        "failed",
        received_at=None,
        started_at=1.0,
        first_chunk_at=None,
        shown_at=2.0,
        ended_at=2.0,
        length=0,
    )
    assert value("phi4bot_time_to_first_text_seconds_count") == before


async def test_backend_requests_are_counted_by_outcome_and_timed_to_the_first_chunk() -> None:
    backend = InstrumentedBackend(ScriptedBackend("m-ok", ["a", "b"]))
    assert [c async for c in backend.stream(CONVERSATION)] == ["a", "b"]
    assert value("phi4bot_backend_requests_total", backend="m-ok", replica="", outcome="ok") == 1
    assert value("phi4bot_backend_first_chunk_seconds_count", backend="m-ok", replica="") == 1

    failing = InstrumentedBackend(ScriptedBackend("m-bad", [], BackendUnavailable("down")))
    with pytest.raises(BackendUnavailable):
        [c async for c in failing.stream(CONVERSATION)]
    assert (
        value(
            "phi4bot_backend_requests_total",
            backend="m-bad",
            replica="",
            outcome="BackendUnavailable",
        )
        == 1
    )
    assert value("phi4bot_backend_first_chunk_seconds_count", backend="m-bad", replica="") == 0


async def test_a_stream_closed_by_the_caller_counts_as_cancelled() -> None:
    backend = InstrumentedBackend(ScriptedBackend("m-stop", ["a", "b", "c"]))
    chunks = backend.stream(CONVERSATION)
    assert await anext(chunks) == "a"
    await chunks.aclose()  # type: ignore[attr-defined]
    assert (
        value("phi4bot_backend_requests_total", backend="m-stop", replica="", outcome="cancelled")
        == 1
    )


async def test_each_server_of_a_chain_is_counted_under_its_own_name() -> None:
    chain = instrument(
        FallbackChain(
            [
                ScriptedBackend("c-space", [], BackendUnavailable("quota")),
                ScriptedBackend("c-openai", ["fine"]),
            ]
        )
    )
    assert [c async for c in chain.stream(CONVERSATION)] == ["fine"]
    failed = value(
        "phi4bot_backend_requests_total",
        backend="c-space",
        replica="",
        outcome="BackendUnavailable",
    )
    assert failed == 1
    assert (
        value("phi4bot_backend_requests_total", backend="c-openai", replica="", outcome="ok") == 1
    )


async def test_each_replica_of_a_pool_is_counted_by_url_and_watched_in_service() -> None:
    urls = ["http://user:pw@gpu1:8000/v1", "http://gpu2:8000/v1?key=k"]
    pool = ReplicaPool([ScriptedBackend("openai", ["a"]) for _ in urls], urls=urls)
    backend = instrument(pool)
    assert [c async for c in backend.stream(CONVERSATION)] == ["a"]
    labels = {"backend": "openai", "replica": "http://gpu1:8000/v1"}
    assert value("phi4bot_backend_requests_total", **labels, outcome="ok") == 1
    assert value("phi4bot_backend_replica_up", **labels) == 1
    pool.replicas[0].healthy = False
    assert value("phi4bot_backend_replica_up", **labels) == 0
    masked = "http://gpu2:8000/v1?key=***"  # display_url: a secret-looking value is masked
    assert value("phi4bot_backend_replica_up", backend="openai", replica=masked) == 1


class MemoryStore:
    def __init__(self) -> None:
        self.fail = False
        self.reads = 0
        self.delay = 0.0

    async def get_setting(self, chat_id: int, name: str) -> str | None:
        self.reads += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("database is locked")
        return None


async def test_the_store_times_each_operation_by_name_for_the_metrics(tmp_path: Path) -> None:
    names = ("record_user_turn", "prompt_inputs", "update_answers", "get_setting", "history")
    before = {
        name: value("phi4bot_database_operation_seconds_count", operation=name) for name in names
    }
    store = await open_store(
        f"sqlite:///{tmp_path / 'bot.db'}",
        max_attachment_bytes=10,
        observer=metrics.observe_database,
    )
    try:
        recorded = await store.record_user_turn(
            ConversationKey(1), text="hi", chat_id=1, message_id=1
        )
        assert recorded is not None
        await store.prompt_inputs(
            recorded.conversation_id,
            chat_id=1,
            prompt_setting="system_prompt",
            char_budget=100,
            media_limit=0,
        )
        await store.update_answers([AnswerCheckpoint(1, "text", (2,))])
        assert await store.get_setting(1, "x") is None
        assert await store.get_setting(1, "y") is None
    finally:
        await store.close()
    with pytest.raises(StorageError):  # a failed operation is timed too
        await store.history(1, char_budget=10, media_limit=0)
    expected = {name: 1 for name in names} | {"get_setting": 2}
    for name in names:
        after = value("phi4bot_database_operation_seconds_count", operation=name)
        assert after == before[name] + expected[name], name


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def readiness(
    clock: Clock, *, answered_at: float | None, ask_error: Exception | None = None
) -> tuple[Readiness, MemoryStore, ScriptedBackend, list[int]]:
    store, backend, asked = MemoryStore(), ScriptedBackend("m", []), []
    state = {"answered_at": answered_at}

    async def ask() -> object:
        asked.append(1)
        if ask_error is not None:
            raise ask_error
        state["answered_at"] = clock()
        return object()

    check = Readiness(
        store=store,  # type: ignore[arg-type]
        backend=backend,
        telegram_answered_at=lambda: state["answered_at"],
        ask_telegram=ask,
        redact=lambda text: text.replace("sk-secret", "[redacted]"),
        clock=clock,
    )
    return check, store, backend, asked


async def test_ready_when_the_database_telegram_and_a_backend_answer() -> None:
    clock = Clock()
    check, _, _, asked = readiness(clock, answered_at=clock.now - 5)
    report = await check.check()
    assert report.ready
    assert report.as_json() == {
        "ready": True,
        "checks": {"database": "ok", "telegram": "ok", "backend": "ok"},
    }
    assert asked == [], "a recent answer from Telegram needs no extra request"


async def test_not_ready_names_the_reason_with_secrets_masked() -> None:
    clock = Clock()
    check, store, backend, _ = readiness(clock, answered_at=clock.now)
    store.fail = True
    backend.probe_error = BackendUnavailable("cannot connect with key sk-secret")
    report = await check.check()
    body = report.as_json()
    assert body["ready"] is False
    assert "database: RuntimeError: database is locked" in str(body["reason"])
    assert "backend: no usable backend: BackendUnavailable" in str(body["reason"])
    assert "sk-secret" not in str(body)


async def test_telegram_silent_for_a_minute_is_asked_before_saying_no() -> None:
    clock = Clock()
    check, _, _, asked = readiness(clock, answered_at=clock.now - TELEGRAM_FRESH - 1)
    assert (await check.check()).ready
    assert asked == [1]

    down, _, _, _ = readiness(clock, answered_at=None, ask_error=TimeoutError())
    report = await down.check()
    assert not report.ready
    assert report.checks["telegram"].startswith("Telegram did not answer within the last minute")


async def test_a_backend_probe_is_reused_for_a_few_seconds() -> None:
    clock = Clock()
    check, _, backend, _ = readiness(clock, answered_at=clock.now)
    await check.check()
    await check.check()
    assert backend.probes == 1
    backend.probe_error = BackendUnavailable("gone")
    clock.now += BACKEND_RECHECK
    assert not (await check.check()).ready
    assert backend.probes == 2


class StepClock:
    def __init__(self) -> None:
        self.t = 50.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def test_the_budget_reports_its_penalty_and_its_use_of_the_window() -> None:
    clock = StepClock()
    budget = RateBudget(bot_rate=30.0, clock=clock)
    assert budget.window_cap == 28
    assert budget.penalty_remaining() == 0
    budget.penalize(7, 5.0)
    clock.t += 2
    assert budget.penalty_remaining() == pytest.approx(3.0)
    await budget.acquire(8, is_group=False, priority=Priority.FIRST)
    assert budget.window_used() == 1
    budget.release()
    assert budget.window_used() == 1
    clock.t += 1.5
    assert budget.window_used() == 0
    assert budget.penalty_remaining() == pytest.approx(1.5)


async def test_fifty_scrapes_at_once_make_one_check_reused_for_a_few_seconds() -> None:
    clock = Clock()
    check, store, backend, asked = readiness(clock, answered_at=None)
    reports = await asyncio.gather(*(check.check() for _ in range(50)))
    assert all(r.ready for r in reports)
    assert (store.reads, backend.probes, len(asked)) == (1, 1, 1)
    clock.now += REPORT_TTL - 0.1
    await check.check()
    assert (store.reads, backend.probes) == (1, 1), "a fresh report is reused"
    clock.now += 0.2
    await check.check()
    assert store.reads == 2, "a stale one is made again"


async def test_a_scraper_giving_up_does_not_cancel_the_check_others_wait_for() -> None:
    clock = Clock()
    check, store, _, _ = readiness(clock, answered_at=clock.now)
    store.delay = 0.05
    first = asyncio.ensure_future(check.check())
    second = asyncio.ensure_future(check.check())
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second).ready
    assert store.reads == 1


def _outward_address() -> str | None:
    """This machine's own non-loopback IPv4 address, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_readyz_tells_the_reasons_only_to_a_caller_on_this_machine() -> None:
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address but loopback")
    clock = Clock()
    check, store, _, _ = readiness(clock, answered_at=clock.now)
    store.fail = True
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port = int(sock.getsockname()[1])
    server = OpsServer("0.0.0.0", port, check)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as local:
                assert local.status == 503
                assert "database is locked" in (await local.json())["reason"]
            async with session.get(f"http://{outward}:{port}/readyz") as remote:
                assert remote.status == 503
                assert await remote.json() == {"ready": False}
    finally:
        await server.stop()
