"""Dedicated virtual environments holding one pinned Gradio each, created once and reused.

Gradio is a test-only dependency and never enters the project's own venv: each major runs in
its own venv (`.venv-gradio5/`, `.venv-gradio6/` under `~/.cache/phi4bot`, or under
`PHI4BOT_GRADIO_VENVS`), outside the clone so that every clone and CI run on the machine reuses
them, and the test server runs there in a subprocess. A venv counts as ready
when its stamp file names the pinned version; creation is guarded by a file lock so two test
processes never build the same venv at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.real.venvs import VenvUnavailable, cache_dir, cached_venv

GRADIO_PINS = {"5": "5.50.0", "6": "6.31.0"}
"""The newest release of each Gradio major at the time of writing; bump them together."""
INSTALL_TIMEOUT = 900.0

EnvUnavailable = VenvUnavailable


@dataclass(frozen=True)
class GradioEnv:
    """A ready venv: its Python, the Gradio version in it, and how long it took to get it."""

    major: str
    version: str
    python: Path
    seconds: float
    created: bool


def ensure_env(major: str) -> GradioEnv:
    """The venv for a Gradio major, created (and stamped) if it is missing or outdated."""
    version = GRADIO_PINS[major]
    home = cache_dir("PHI4BOT_GRADIO_VENVS", "") / f".venv-gradio{major}"
    venv = cached_venv(home, [f"gradio=={version}"], stamp=version, timeout=INSTALL_TIMEOUT)
    return GradioEnv(major, version, venv.python, venv.seconds, venv.created)


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
