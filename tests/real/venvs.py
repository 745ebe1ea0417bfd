"""Virtual environments for real servers, built once outside the clone and reused.

A real server's packages (Gradio, llama.cpp's server) never enter the project's venv: each
lives in a venv under `~/.cache/phi4bot` (or a directory a variable names), where every clone
and CI run on the machine finds it again. A venv counts as ready when its stamp file names
what it was built with; a file lock keeps two test processes from building one at once, and a
failed build leaves its output beside the venv (`<name>.failed`).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STAMP = ".installed"


@dataclass(frozen=True)
class Venv:
    """A ready venv: its Python, how long getting it took, and whether it was built now."""

    python: Path
    seconds: float
    created: bool


class VenvUnavailable(RuntimeError):
    """The venv could not be built (no compiler, no index, a failing install)."""


def cache_dir(variable: str, default: str) -> Path:
    """The directory `variable` names, else `default` under the user's cache."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "phi4bot" / default


def cached_venv(
    home: Path,
    packages: Sequence[str],
    *,
    stamp: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Venv:
    """The venv at `home` with `packages` installed, built (and stamped `stamp`) unless a
    venv stamped so is there already."""
    python = home / "bin" / "python"
    stamp_file = home / STAMP
    started = time.monotonic()
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
            return Venv(python, time.monotonic() - started, created=False)
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
                *packages,
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, capture_output=True, text=True, timeout=timeout, check=False, env=env
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise VenvUnavailable(f"{' '.join(step[:4])}: {exc}") from exc
            if done.returncode != 0:
                (home.parent / f"{home.name}.failed").write_text(done.stdout + done.stderr)
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise VenvUnavailable(f"{' '.join(step[:4])} failed: {' | '.join(tail)}")
        stamp_file.write_text(stamp + "\n")
    return Venv(python, time.monotonic() - started, created=True)
