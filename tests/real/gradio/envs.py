"""Dedicated virtual environments holding one pinned Gradio each, created once and reused.

Gradio is a test-only dependency and never enters the project's own venv: each major runs in
its own venv (`.venv-gradio5/`, `.venv-gradio6/` under `~/.cache/phi4bot`, or under
`PHI4BOT_GRADIO_VENVS`), outside the clone so that every clone and CI run on the machine reuses
them, and the test server runs there in a subprocess. A venv counts as ready
when its stamp file names the pinned version; creation is guarded by a file lock so two test
processes never build the same venv at once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

GRADIO_PINS = {"5": "5.50.0", "6": "6.31.0"}
"""The newest release of each Gradio major at the time of writing; bump them together."""
INSTALL_TIMEOUT = 900.0
STAMP = ".installed"


@dataclass(frozen=True)
class GradioEnv:
    """A ready venv: its Python, the Gradio version in it, and how long it took to get it."""

    major: str
    version: str
    python: Path
    seconds: float
    created: bool


class EnvUnavailable(RuntimeError):
    """The venv could not be created (no network, no index, a failing install)."""


def venvs_root() -> Path:
    configured = os.environ.get("PHI4BOT_GRADIO_VENVS")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "phi4bot"


def ensure_env(major: str) -> GradioEnv:
    """The venv for a Gradio major, created (and stamped) if it is missing or outdated."""
    version = GRADIO_PINS[major]
    home = venvs_root() / f".venv-gradio{major}"
    python = home / "bin" / "python"
    stamp = home / STAMP
    started = time.monotonic()
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".venv-gradio{major}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text().strip() == version:
            return GradioEnv(major, version, python, time.monotonic() - started, created=False)
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(home)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--disable-pip-version-check",
                f"gradio=={version}",
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EnvUnavailable(f"{' '.join(step[:4])}: {exc}") from exc
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise EnvUnavailable(f"{' '.join(step[:4])} failed: {' | '.join(tail)}")
        stamp.write_text(version + "\n")
    return GradioEnv(major, version, python, time.monotonic() - started, created=True)


def ensure_envs(majors: list[str]) -> dict[str, GradioEnv | EnvUnavailable]:
    """Every requested venv, built side by side (pip spends most of its time waiting)."""
    with ThreadPoolExecutor(max_workers=len(majors)) as pool:
        futures = {major: pool.submit(ensure_env, major) for major in majors}
    results: dict[str, GradioEnv | EnvUnavailable] = {}
    for major, future in futures.items():
        try:
            results[major] = future.result()
        except EnvUnavailable as exc:
            results[major] = exc
    return results


if __name__ == "__main__":
    for major, result in ensure_envs(sorted(GRADIO_PINS)).items():
        print(f"gradio {major}: {result}")
