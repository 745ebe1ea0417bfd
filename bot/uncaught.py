"""Uncaught exceptions and warnings reach stderr only through the redacting log formatter.

Python prints an uncaught exception (in the main thread or any other) and a warning
straight to stderr, outside logging, so a token in an exception's text or a URL in a warning
would escape the masking. These hooks hand them to logging instead, where the one
formatter masks every secret, in text and in JSON alike.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

log = logging.getLogger("bot.uncaught")


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)  # Ctrl-C shows as Python shows it: no secret there
        return
    log.critical("uncaught %s", kind.__name__, exc_info=(kind, value, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "a thread"
    log.critical(
        "uncaught %s in %s",
        args.exc_type.__name__,
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    value = unraisable.exc_value
    what = unraisable.err_msg or "Exception ignored in"
    if value is None:
        log.error("%s: %r", what, unraisable.object)
        return
    log.error(
        "%s: %r",
        what,
        unraisable.object,
        exc_info=(unraisable.exc_type, value, unraisable.exc_traceback),
    )


def route_uncaught_through_logging() -> None:
    """Send uncaught exceptions (any thread), unraisable ones and warnings to logging.

    Call it once logging is configured with the redacting formatter.
    """
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    sys.unraisablehook = _log_unraisable
    logging.captureWarnings(True)
