"""Real Gradio servers (5.x and 6.x) for end-to-end tests of the Space backend.

`gradio_server` is parametrized over the Gradio majors: each test using it runs once per
major against a server started once per session. The venvs (see `envs`) are prepared in a
background thread as soon as collection is over, while the other tests run, and awaited by
the first test that needs them; when that fails the tests are skipped locally, but under `CI`
or `PHI4BOT_REQUIRE_GRADIO=1` the failure is an error, never a skip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import model, start_bot, tg  # noqa: F401  (the bot's fixtures, reused)
from tests.real.gradio.envs import GRADIO_PINS, EnvUnavailable, GradioEnv, ensure_envs
from tests.real.gradio.server import GradioServer

log = logging.getLogger(__name__)
MAJORS = sorted(GRADIO_PINS)


def gradio_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("PHI4BOT_REQUIRE_GRADIO", "").strip() == "1"


_preparing: list[Future[dict[str, GradioEnv | EnvUnavailable]]] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start preparing the venvs now if any selected test will need them."""
    if not _preparing and any(
        "gradio_server" in getattr(i, "fixturenames", ()) for i in session.items
    ):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradio-venvs")
        _preparing.append(pool.submit(ensure_envs, MAJORS))
        pool.shutdown(wait=False)


@pytest.fixture(scope="session")
def gradio_envs() -> dict[str, GradioEnv | EnvUnavailable]:
    results = _preparing[0].result() if _preparing else ensure_envs(MAJORS)
    for result in results.values():
        if isinstance(result, GradioEnv):
            how = "created" if result.created else "reused"
            log.warning("gradio %s venv %s in %.1f s", result.version, how, result.seconds)
    return results


@pytest.fixture(scope="session", params=MAJORS, ids=[f"gradio{m}" for m in MAJORS])
def gradio_server(
    request: pytest.FixtureRequest,
    gradio_envs: dict[str, GradioEnv | EnvUnavailable],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GradioServer]:
    env = gradio_envs[request.param]
    if isinstance(env, EnvUnavailable):
        reason = f"no venv with gradio {GRADIO_PINS[request.param]}: {env}"
        if gradio_required():
            pytest.fail(reason + " (required: CI or PHI4BOT_REQUIRE_GRADIO=1)", pytrace=False)
        pytest.skip(reason)
    workdir: Path = tmp_path_factory.mktemp(f"gradio{request.param}")
    with GradioServer(env, workdir) as server:
        yield server
