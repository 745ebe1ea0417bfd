"""Uncaught exceptions and warnings are masked like every log line, in text and in JSON."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging
from bot.uncaught import route_uncaught_through_logging

SECRET = "123456:uncaught-token-value"


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lets a test install the hooks and logging; everything is restored afterwards."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    logging.captureWarnings(False)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_uncaught_exception_in_main_or_a_thread_is_logged_masked(
    hooks: None, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    configure_logging("INFO", [SECRET], "json" if log_format == "json" else "text")
    route_uncaught_through_logging()
    try:
        raise RuntimeError(f"The token `{SECRET}` was rejected by the server.")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=lambda: int(f"{SECRET}"), name="worker")
    thread.start()
    thread.join()
    out = capsys.readouterr().err
    assert SECRET not in out
    assert "uncaught RuntimeError" in out and "uncaught ValueError in worker" in out
    assert out.count("[redacted]") >= 2
    if log_format == "json":
        assert [json.loads(line)["level"] for line in out.splitlines()] == ["CRITICAL"] * 2


def test_a_warning_is_logged_masked(hooks: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", [SECRET], "text")
    route_uncaught_through_logging()
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the test suite turns warnings into errors
        warnings.warn(f"connecting with {SECRET}", UserWarning, stacklevel=1)
    out = capsys.readouterr().err
    assert "WARNING py.warnings" in out and "[redacted]" in out
    assert SECRET not in out
