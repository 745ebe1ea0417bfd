"""The terminal commands `phi4bot chat` and `phi4bot check`: the model without Telegram
(`check` also asks Telegram who the bot is, when a token is set)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from bot.config import Settings
from bot.logs import RedactingFormatter
from bot.ops.bot_account import describe_bot_account
from bot.phi4 import (
    AnswerCutAtLength,
    Attachment,
    Backend,
    Conversation,
    MediaNotSupported,
    Phi4Error,
    Phi4Settings,
    QueuePosition,
    Turn,
    create_backend,
)
from bot.phi4.diagnosis import next_step
from bot.phi4.errors import FailureClass
from bot.phi4.facade import load_attachment
from bot.phi4.health import survey
from bot.shared import UserFacingError
from bot.shared.urls import display_url

QUIT = "/quit"


async def _read_line(stdin: TextIO) -> str:
    """One line from `stdin` without blocking the loop.

    A daemon thread, not `asyncio.to_thread`: the executor would keep the process alive after
    Ctrl-C until the user pressed Enter.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def read() -> None:
        line, error = None, None
        try:
            line = stdin.readline()
        except Exception as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, line, error)
        except RuntimeError:
            pass  # the loop is gone: nobody is waiting for this line any more

    threading.Thread(target=read, name="phi4bot-stdin", daemon=True).start()
    return await future


class TerminalChat:
    """One conversation typed in a terminal; answers stream to `stdout` as they arrive."""

    def __init__(
        self,
        backend: Backend,
        system_prompt: str | None,
        media: Sequence[Attachment],
        stdout: TextIO,
        stderr: TextIO,
        settings: Phi4Settings | None = None,
    ) -> None:
        """With `settings`, a failure the operator can act on also prints its next step."""
        self.backend, self.system_prompt = backend, system_prompt
        self.settings = settings
        self.pending = list(media)
        self.turns: tuple[Turn, ...] = ()
        self.stdout, self.stderr = stdout, stderr
        self._rank: int | None = None

    def _queued(self, position: QueuePosition) -> None:
        if position.rank != self._rank:
            self._rank = position.rank
            total = f" of {position.queue_size}" if position.queue_size else ""
            print(f"(waiting in the queue: position {position.rank + 1}{total})", file=self.stderr)

    async def ask(self, text: str) -> bool:
        """Answer one line; media given on the command line ride on the first answered turn."""
        attachments, self.pending = tuple(self.pending), []
        turns = (*self.turns, Turn("user", text, attachments))
        answer: list[str] = []
        self._rank = None
        try:
            async for chunk in self.backend.stream(
                Conversation(turns, self.system_prompt), on_queue=self._queued
            ):
                answer.append(chunk)
                self.stdout.write(chunk)
                self.stdout.flush()
        except AnswerCutAtLength as exc:  # an answer all the same: kept, and said to be cut
            self.stdout.write("\n")
            self.stdout.flush()
            print("(the answer was cut at the model's length limit)", file=self.stderr)
            self.turns = (*turns, Turn("assistant", exc.text))
            return True
        except Phi4Error as exc:
            if answer:
                self.stdout.write("\n")
                self.stdout.flush()
            print(exc.user_message, file=self.stderr)
            if self.settings is not None and exc.failure_class is not FailureClass.REQUEST:
                hint = f"({exc}; next step: {next_step(exc, self.settings)})"
                print(_redact(hint, self.settings.client_secrets()), file=self.stderr)
            if isinstance(exc, MediaNotSupported) and attachments:
                print("(the attached files were dropped)", file=self.stderr)
            else:
                self.pending = list(attachments)
            return False
        self.stdout.write("\n")
        self.stdout.flush()
        self.turns = (*turns, Turn("assistant", "".join(answer)))
        return True


async def _load_media(
    settings: Settings, images: Sequence[Path], audio: Sequence[Path]
) -> list[Attachment]:
    limit = settings.max_audio_seconds
    loaded = [await load_attachment(p, kind="image", max_audio_seconds=limit) for p in images]
    loaded += [await load_attachment(p, kind="audio", max_audio_seconds=limit) for p in audio]
    return loaded


async def run_chat(
    settings: Settings,
    *,
    images: Sequence[Path] = (),
    audio: Sequence[Path] = (),
    prompt: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Chat until EOF or `/quit`, or answer `prompt` once; exit 1 when the last answer failed.

    Streams are resolved at call time, not import time, so redirected ones are honoured.
    """
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        backend = create_backend(settings)
    except ValueError as exc:
        print(f"phi4bot: invalid configuration: {exc}", file=stderr)
        return 2
    try:
        try:
            media = await _load_media(settings, images, audio)
        except UserFacingError as exc:
            print(exc.user_message, file=stderr)
            return 1
        chat = TerminalChat(backend, settings.system_prompt, media, stdout, stderr, settings)
        if prompt is not None:
            return 0 if await chat.ask(prompt) else 1
        interactive = stdin.isatty()
        last_answered = True
        while True:
            if interactive:
                stdout.write("> ")
                stdout.flush()
            line = await _read_line(stdin)
            if not line or line.strip() == QUIT:
                return 0 if last_answered else 1
            if line.strip():
                last_answered = await chat.ask(line.strip())
    finally:
        await backend.aclose()


def describe_setting(value: object) -> str:
    """A setting as `check` prints it: secrets say only whether they are set."""
    if isinstance(value, SecretStr):
        return "set (hidden)" if value.get_secret_value() else "not set"
    if value is None:
        return "not set"
    if isinstance(value, str) and "://" in value:
        return display_url(value)
    if isinstance(value, frozenset | set | list | tuple):
        return ",".join(sorted(str(v) for v in value)) or "(empty)"
    return str(value)


def _redact(text: str, secrets: Sequence[str]) -> str:
    """Masked exactly as the log masks, so `check` and the log never disagree."""
    return RedactingFormatter(secrets).redact(text)


async def run_check(settings: Settings, *, stdout: TextIO | None = None) -> int:
    """Print the configuration (secrets masked) and what every backend and replica answered.

    Exit 0 when at least one of them can answer, since the bot then still answers.
    """
    out = stdout or sys.stdout
    secrets = settings.secrets()
    print("configuration:", file=out)
    for name, info in Settings.model_fields.items():
        shown = describe_setting(getattr(settings, name))
        print(_redact(f"  {info.alias or name.upper()} = {shown}", secrets), file=out)
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value()
        account = await describe_bot_account(settings.telegram_api_url, token)
        print(_redact(f"telegram: {account}", secrets), file=out)
    backend = create_backend(settings)
    try:
        results = await survey(backend, timeout=settings.connect_timeout + settings.stream_timeout)
    finally:
        await backend.aclose()
    print("backends:", file=out)
    for result in results:
        line = f"  {result.backend} {result.where}: {result.state} ({result.seconds:.2f} s)"
        print(_redact(f"{line}: {result.detail}", secrets), file=out)
    able = [r for r in results if r.can_answer]
    if able:
        print(f"OK: {len(able)} of {len(results)} can answer.", file=out)
        return 0
    error = results[-1].error or Phi4Error("no answer")  # the one a chat would read last
    print(_redact(f"FAILED ({error.failure_class.value}): {error}", secrets), file=out)
    print(_redact(f"next step: {next_step(error, settings)}", secrets), file=out)
    return 1
