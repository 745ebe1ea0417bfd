"""Runs the real `phi4bot run` process for end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

TOKEN = "123456:TEST-token-kept-secret"
ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """`python -m bot run` as a child process with a controlled environment.

    The test's event loop keeps serving the fakes while the bot runs; the bot's log goes
    to a file so tests can grep it (for the token, above all).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *,
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.args = args
        self.prefix = prefix
        """A command that runs the bot (`unshare ... sh -c '...; exec "$@"'`), if any."""
        self.proc: asyncio.subprocess.Process | None = None
        self._log: BinaryIO | None = None

    async def start(self) -> BotProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4", "OPENAI", "HF_"))}
        base.pop("TELEGRAM_BOT_TOKEN", None)
        base.pop("TELEGRAM_API_URL", None)
        base.pop("DATABASE_URL", None)
        base["PYTHONUNBUFFERED"] = "1"
        base.update(self.env)
        self._log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.prefix,
            sys.executable,
            "-m",
            "bot",
            "run",
            *self.args,
            cwd=str(self.log_path.parent),
            env=base,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as a service manager would; the bot should finish and exit 0."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"the bot did not stop within {timeout} s:\n{self.log()}"
            ) from None
        finally:
            self._close_log()

    async def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a crash or an OOM kill."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, containing: str) -> list[str]:
        """The log lines that contain `containing`."""
        return [line for line in self.log().splitlines() if containing in line]

    async def wait_for_log(self, containing: str, timeout: float = 15.0) -> str:
        """The first log line containing `containing`, once the bot has written it.

        The log is a file, so it is re-read every 50 ms until the line is there or time is up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (found := self.log_lines(containing)):
            if loop.time() > deadline:
                raise AssertionError(
                    f"no log line with {containing!r} in {timeout} s:\n{self.log()}"
                )
            await asyncio.sleep(0.05)
        return found[0]
