"""How answers per minute grow with model replicas, and what the replica pool costs per answer.

Run from the repo root: `.venv/bin/python -m bench.backends [--chats 40] [--rounds 3] [--quick]`.

Each fake replica (`tests/fakes/openai_server.py`) serves at most K answers at once at a fixed
token rate; further requests wait for a slot, as they wait for a batch slot in vLLM. C chats
ask R answers each, one after another, through the backend `create_backend` builds from
`OPENAI_BASE_URL` with 1, 2 and 4 replicas (one URL is the plain OpenAI backend, several are
the `ReplicaPool`). Time to first text is from asking to the first chunk. The overhead row
compares the pool with a direct `OpenAIBackend` request to one idle replica, alternating
requests so both see the same machine. Everything runs on 127.0.0.1 in this one process; the
figures are bounded by the token rate (I/O), so CPU contention changes them little.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from bench.harness import Table, ms, percentile, verdict
from bot.phi4 import Backend, Conversation, Phi4Settings, Turn, create_backend
from bot.phi4.openai_backend import OpenAIBackend
from bot.phi4.replicas import ReplicaPool
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer

ASK = Conversation((Turn("user", "Tell me something."),))


@dataclass(frozen=True)
class Run:
    replicas: int
    answers: int
    seconds: float
    first_text: list[float]

    @property
    def per_minute(self) -> float:
        return self.answers / self.seconds * 60


def settings_for(urls: list[str]) -> Phi4Settings:
    return Phi4Settings(_env_file=None, PHI4_BACKEND="openai", OPENAI_BASE_URL=",".join(urls))


async def one_answer(backend: Backend, first_text: list[float]) -> None:
    started = time.perf_counter()
    first = True
    async for _ in backend.stream(ASK):
        if first:
            first_text.append(time.perf_counter() - started)
            first = False


async def serve(args: argparse.Namespace) -> None:
    """`--serve N`: N fake replicas in this process; their URLs on stdout, until stdin closes."""
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(FakeOpenAIServer()) for _ in range(args.serve)]
        for srv in servers:
            srv.max_streams = args.slots
            srv.chunk_size = 4
            srv.answer = "tok " * args.tokens
            srv.chunk_delay = 1 / args.rate
        print(",".join(s.base_url for s in servers), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def throughput(replicas: int, args: argparse.Namespace) -> Run:
    """C chats asking R answers each from `replicas` fake servers of K slots.

    The replicas run in a child process, so the model side and the bot side do not share
    one event loop (their delays would otherwise add up as if the model were slower).
    """
    options = ["--slots", str(args.slots), "--rate", str(args.rate), "--tokens", str(args.tokens)]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.backends",
        "--serve",
        str(replicas),
        *options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    urls = (await child.stdout.readline()).decode().strip().split(",")
    try:
        async with create_backend(settings_for(urls)) as backend:  # type: ignore[attr-defined]
            for _ in urls:  # connect once to each, so no run pays for its first connection
                await one_answer(backend, [])
            first_text: list[float] = []

            async def chat() -> None:
                for _ in range(args.rounds):
                    await one_answer(backend, first_text)

            started = time.perf_counter()
            await asyncio.gather(*(chat() for _ in range(args.chats)))
            seconds = time.perf_counter() - started
    finally:
        child.stdin.close()
        await child.wait()
    return Run(replicas, args.chats * args.rounds, seconds, first_text)


async def overhead(requests: int) -> tuple[list[float], list[float]]:
    """Time to first chunk from one idle replica: a direct request, and through the pool."""
    async with FakeOpenAIServer() as srv:
        srv.answer = "tok " * 8

        def client() -> OpenAIBackend:
            return OpenAIBackend(srv.base_url, api_key=None, model=DEFAULT_MODEL, max_retries=0)

        async with client() as direct, ReplicaPool([client()], urls=[srv.base_url]) as pool:
            direct_times: list[float] = []
            pool_times: list[float] = []
            for _ in range(5):  # warm both connection pools
                await one_answer(direct, [])
                await one_answer(pool, [])
            for _ in range(requests):
                await one_answer(direct, direct_times)
                await one_answer(pool, pool_times)
    return direct_times, pool_times


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="answers each chat asks in turn")
    parser.add_argument("--slots", type=int, default=4, help="answers one replica serves at once")
    parser.add_argument("--rate", type=float, default=20.0, help="chunks per second per answer")
    parser.add_argument("--tokens", type=int, default=20, help="chunks per answer")
    parser.add_argument("--quick", action="store_true", help="one round, fewer overhead samples")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args)
        return 0
    if args.quick:
        args.rounds = 1
    runs = [await throughput(n, args) for n in (1, 2, 4)]
    direct, pooled = await overhead(60 if args.quick else 300)

    print(
        f"backends: {args.chats} chats x {args.rounds} answers; each replica serves {args.slots} "
        f"at once, {args.tokens} chunks at {args.rate:g}/s (127.0.0.1, one shared 2-core machine)"
    )
    header = (
        f"{'replicas':>8}  {'answers':>7}  {'total':>8}  {'first text p50':>14}  "
        f"{'first text p95':>14}  {'answers/min':>11}  {'vs 1':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.replicas:>8}  {run.answers:>7}  {run.seconds:>7.2f}s  "
            f"{ms(percentile(run.first_text, 50)):>14}  {ms(percentile(run.first_text, 95)):>14}  "
            f"{run.per_minute:>11.0f}  {run.per_minute / runs[0].per_minute:>4.2f}x"
        )
    print()
    table = Table("targets")
    two, four = (r.per_minute / runs[0].per_minute for r in runs[1:])
    table.add("throughput, 2 replicas vs 1", f"{two:.2f}x", ">= 1.8x", two >= 1.8)
    table.add("throughput, 4 replicas vs 1", f"{four:.2f}x", ">= 3.4x", four >= 3.4)
    d50, d95 = percentile(direct, 50), percentile(direct, 95)
    p50, p95 = percentile(pooled, 50), percentile(pooled, 95)
    table.add("first chunk p50, direct / pool", f"{d50 * 1000:.2f} / {p50 * 1000:.2f} ms")
    table.add("first chunk p95, direct / pool", f"{d95 * 1000:.2f} / {p95 * 1000:.2f} ms")
    added = p95 - d95
    table.add("pool adds to first chunk (p95)", f"{added * 1000:.2f} ms", "< 5 ms", added < 0.005)
    table.print()
    return verdict([row.metric for row in table.misses()])


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
