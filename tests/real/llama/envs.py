"""The venv holding llama.cpp's OpenAI-compatible server, built once and reused.

`llama-cpp-python[server]` compiles llama.cpp from source (5–15 minutes on two cores), so the
venv lives outside the clone (`~/.cache/phi4bot/venv-llama`, or `PHI4BOT_LLAMA_VENV`) where
every clone and CI run on the machine reuses it. It counts as ready when its stamp names the
pinned versions; a file lock keeps two test processes from building it at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.real.venvs import Venv, VenvUnavailable, cache_dir, cached_venv

LLAMA_CPP_PYTHON = "0.3.36"
"""The `llama-cpp-python` release the recorded server behaviour in tests/fixtures comes from."""
GGUF = "0.19.0"
NUMPY = "2.4.6"
PINS = (f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON}", f"gguf=={GGUF}", f"numpy=={NUMPY}")
BUILD_TIMEOUT = 3600.0

LlamaEnv = Venv
LlamaEnvUnavailable = VenvUnavailable


def venv_home() -> Path:
    """Where the venv lives: `PHI4BOT_LLAMA_VENV`, else under the user's cache."""
    return cache_dir("PHI4BOT_LLAMA_VENV", "venv-llama")


def ensure_llama_env() -> LlamaEnv:
    """The venv, built (and stamped) if it is missing or holds other versions; llama.cpp
    compiles on every core."""
    build = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    return cached_venv(venv_home(), PINS, stamp=" ".join(PINS), timeout=BUILD_TIMEOUT, env=build)


if __name__ == "__main__":
    print(ensure_llama_env())
