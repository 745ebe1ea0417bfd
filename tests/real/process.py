"""A real server the tests run in a subprocess: on a free 127.0.0.1 port, waited for until it
answers, its output kept in a log, stopped at the end even when the test process dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOG_TAIL = 3000
"""How much of the end of a server's log a failure shows."""


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test process dies, even without a teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess(ABC):
    """One server process: `port`, `log()`, and `start()`/`stop()` or `with`.

    A subclass says how to start its server (`start`, with `_launch` and `_wait_for_json`)
    and names it for the errors (`name`)."""

    name = "the server"
    start_timeout = 60.0

    def __init__(self, workdir: Path, log_name: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / log_name
        self._process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def start(self) -> Self:
        """Start the server and return once it answers."""

    def _launch(self, command: list[str], env: Mapping[str, str]) -> None:
        """Run `command` in `workdir` with `env` added to this process's environment, its
        output (unbuffered) going to the log."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )

    def _wait_for_json(self, url: str, ready: Callable[[Any], bool]) -> Any:
        """The JSON `url` answers once `ready` accepts it; `RuntimeError` with the log's end
        when the server exits first or `start_timeout` passes."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    body = json.load(answer)
                    if ready(body):
                        return body
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} did not answer within {self.start_timeout:g} s:\n{self.log()}"
        )

    def log(self) -> str:
        """The end of what the server wrote."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    def stop(self) -> None:
        """Terminate the server, killing it when it does not exit within 10 s."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
