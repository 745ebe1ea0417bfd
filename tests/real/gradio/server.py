"""Serve `space_app.py` with a real Gradio in a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from tests.real.gradio.envs import GradioEnv
from tests.real.process import ServerProcess

APP = Path(__file__).with_name("space_app.py")


class GradioServer(ServerProcess):
    """One running app: `url`, its `/config`, the events its answer function recorded."""

    name = "the Gradio app"
    start_timeout = 90.0

    def __init__(self, env: GradioEnv, workdir: Path, *, extra_events: int = 5) -> None:
        super().__init__(workdir, "server.log")
        self.env = env
        self.extra_events = extra_events
        self.url = f"http://127.0.0.1:{self.port}"
        self.record = workdir / "events.jsonl"
        self.upload_dir = workdir / "uploads"
        self.config: dict[str, Any] = {}

    def start(self) -> Self:
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self._launch(
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
            {
                "GRADIO_TEMP_DIR": str(self.upload_dir),
                "GRADIO_ANALYTICS_ENABLED": "False",
                "HF_HUB_OFFLINE": "1",
            },
        )
        self.config = self._wait_for_json(f"{self.url}/config", lambda body: isinstance(body, dict))
        return self

    def events(self) -> list[dict[str, Any]]:
        """What the answer function recorded, oldest first (`started`, `cancelled`, ...)."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]
