"""Serve `space_app.py` with a real Gradio in a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.real.gradio.envs import GradioEnv

APP = Path(__file__).with_name("space_app.py")
START_TIMEOUT = 90.0


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


class GradioServer:
    """One running app: `url`, its `/config`, the events its answer function recorded."""

    def __init__(self, env: GradioEnv, workdir: Path, *, extra_events: int = 5) -> None:
        self.env = env
        self.workdir = workdir
        self.extra_events = extra_events
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.record = workdir / "events.jsonl"
        self.upload_dir = workdir / "uploads"
        self.log_path = workdir / "server.log"
        self.config: dict[str, Any] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "GRADIO_TEMP_DIR": str(self.upload_dir),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    str(self.env.python),
                    str(APP),
                    "--port",
                    str(self.port),
                    "--extra-events",
                    str(self.extra_events),
                    "--record",
                    str(self.record),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        self.config = self._wait_for_config()
        return self

    def _wait_for_config(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the Gradio app exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/config", timeout=2) as answer:
                    config = json.load(answer)
                    if isinstance(config, dict):
                        return config
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"the Gradio app did not answer within {START_TIMEOUT:g} s:\n{self.log()}"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        """What the answer function recorded, oldest first (`started`, `cancelled`, ...)."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def stop(self) -> None:
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
