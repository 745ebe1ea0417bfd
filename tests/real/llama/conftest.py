"""llama.cpp's real OpenAI-compatible server, serving the tiny model, for end-to-end tests.

The venv (see `envs`) compiles llama.cpp the first time, so it is prepared in a background
thread as soon as collection is over and awaited by the first test that needs it; when that
fails the tests are skipped locally, but under `CI` or `PHI4BOT_REQUIRE_LLAMA=1` the failure
is an error, never a skip. One server (a 512-token window) serves the whole session.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tests.e2e.conftest import model, start_bot, tg  # noqa: F401  (the bot's fixtures, reused)
from tests.real.llama.envs import LlamaEnv, LlamaEnvUnavailable, ensure_llama_env
from tests.real.llama.server import LlamaServer

log = logging.getLogger(__name__)


def llama_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("PHI4BOT_REQUIRE_LLAMA", "").strip() == "1"


def _prepare() -> LlamaEnv | LlamaEnvUnavailable:
    try:
        return ensure_llama_env()
    except LlamaEnvUnavailable as exc:
        return exc


_preparing: list[Future[LlamaEnv | LlamaEnvUnavailable]] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start preparing the venv now if any selected test will need it."""
    if not _preparing and any(
        "llama_server" in getattr(i, "fixturenames", ()) for i in session.items
    ):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-venv")
        _preparing.append(pool.submit(_prepare))
        pool.shutdown(wait=False)


@pytest.fixture(scope="session")
def llama_env() -> LlamaEnv:
    result = _preparing[0].result() if _preparing else _prepare()
    if isinstance(result, LlamaEnvUnavailable):
        reason = f"no venv with llama-cpp-python: {result}"
        if llama_required():
            pytest.fail(reason + " (required: CI or PHI4BOT_REQUIRE_LLAMA=1)", pytrace=False)
        pytest.skip(reason)
    how = "created" if result.created else "reused"
    log.warning("llama-cpp-python venv %s in %.1f s", how, result.seconds)
    return result


@pytest.fixture(scope="session")
def llama_server(
    llama_env: LlamaEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    with LlamaServer(llama_env, tmp_path_factory.mktemp("llama")) as server:
        yield server
