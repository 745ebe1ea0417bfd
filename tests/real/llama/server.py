"""Serve the tiny model with llama.cpp's real OpenAI-compatible server on a free port.

The model file is written once (by `tiny_model.py`, in the llama venv) and cached beside the
venv, named for the script's content so a change to the weights writes a new one. The
server runs `python -m llama_cpp.server` on 127.0.0.1 with a small window (`n_ctx`), one
thread, and the model served as `MODEL_ALIAS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.real.gradio.server import _die_with_parent, free_port
from tests.real.llama.envs import LlamaEnv, venv_home

WRITER = Path(__file__).with_name("tiny_model.py")
MODEL_ALIAS = "phi4-tiny"
N_CTX = 512
START_TIMEOUT = 120.0


def tiny_model(env: LlamaEnv) -> Path:
    """The cached model file, written now if this version of the writer never wrote it."""
    digest = hashlib.sha256(WRITER.read_bytes()).hexdigest()[:12]
    path = venv_home().parent / f"tiny-llama-{digest}.gguf"
    if not path.exists():
        subprocess.run(
            [str(env.python), str(WRITER), str(path)], check=True, capture_output=True, text=True
        )
    return path


class LlamaServer:
    """One running `llama_cpp.server`: its `base_url` (ending in `/v1`) and its log."""

    def __init__(self, env: LlamaEnv, workdir: Path, *, n_ctx: int = N_CTX) -> None:
        self.env = env
        self.workdir = workdir
        self.n_ctx = n_ctx
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.log_path = workdir / "llama-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        model = tiny_model(self.env)
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.env.python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
        ]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if json.load(answer).get("data"):
                        return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"llama_cpp.server did not answer in {START_TIMEOUT:g} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

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
