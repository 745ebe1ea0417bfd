"""The venv holding llama.cpp's OpenAI-compatible server, built once and reused.

`llama-cpp-python[server]` compiles llama.cpp from source (5–15 minutes on two cores), so the
venv lives outside the clone (`~/.cache/phi4bot/venv-llama`, or `PHI4BOT_LLAMA_VENV`) where
every clone and CI run on the machine reuses it. It counts as ready when its stamp names the
pinned versions; a file lock keeps two test processes from building it at once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
"""The `llama-cpp-python` release the recorded server behaviour in tests/fixtures comes from."""
GGUF = "0.19.0"
NUMPY = "2.4.6"
PINS = (f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON}", f"gguf=={GGUF}", f"numpy=={NUMPY}")
BUILD_TIMEOUT = 3600.0
STAMP = ".installed"


@dataclass(frozen=True)
class LlamaEnv:
    """A ready venv: its Python and how long getting it took."""

    python: Path
    seconds: float
    created: bool


class LlamaEnvUnavailable(RuntimeError):
    """The venv could not be built (no compiler, no index, a failing build)."""


def venv_home() -> Path:
    """Where the venv lives: `PHI4BOT_LLAMA_VENV`, else under the user's cache."""
    configured = os.environ.get("PHI4BOT_LLAMA_VENV")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "phi4bot" / "venv-llama"


def ensure_llama_env() -> LlamaEnv:
    """The venv, built (and stamped) if it is missing or holds other versions."""
    home = venv_home()
    python = home / "bin" / "python"
    stamp = home / STAMP
    wanted = " ".join(PINS)
    started = time.monotonic()
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
            return LlamaEnv(python, time.monotonic() - started, created=False)
        failed = home.parent / f"{home.name}.failed"
        env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(home)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--no-compile",
                "--disable-pip-version-check",
                *PINS,
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step,
                    capture_output=True,
                    text=True,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                    env=env,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise LlamaEnvUnavailable(f"{' '.join(step[:4])}: {exc}") from exc
            if done.returncode != 0:
                failed.write_text(done.stdout + done.stderr)
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise LlamaEnvUnavailable(f"{' '.join(step[:4])} failed: {' | '.join(tail)}")
        stamp.write_text(wanted + "\n")
    return LlamaEnv(python, time.monotonic() - started, created=True)


if __name__ == "__main__":
    print(ensure_llama_env())
