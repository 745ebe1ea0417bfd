"""Serve the tiny model with llama.cpp's real OpenAI-compatible server on a free port.

The model file is written once (by `tiny_model.py`, in the llama venv) and cached beside the
venv, named for the script's content so a change to the weights writes a new one. The
server runs `python -m llama_cpp.server` on 127.0.0.1 with a small window (`n_ctx`), one
thread, and the model served as `MODEL_ALIAS`.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Self

from tests.real.llama.envs import LlamaEnv, venv_home
from tests.real.process import ServerProcess

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


class LlamaServer(ServerProcess):
    """One running `llama_cpp.server`: its `base_url` (ending in `/v1`) and its log."""

    name = "llama_cpp.server"
    start_timeout = START_TIMEOUT

    def __init__(self, env: LlamaEnv, workdir: Path, *, n_ctx: int = N_CTX) -> None:
        super().__init__(workdir, "llama-server.log")
        self.env = env
        self.n_ctx = n_ctx
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"

    def start(self) -> Self:
        model = tiny_model(self.env)
        self._launch(
            [
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
            ],
            {},
        )
        self._wait_for_json(f"{self.base_url}/models", lambda body: bool(body.get("data")))
        return self
