"""BackendHealth: the start-up check, one notice per cause to admins, the line when it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.config import Settings
from bot.conversation.health import BackendHealth
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Conversation, QueueListener
from bot.phi4.errors import (
    AccessDenied,
    BackendUnavailable,
    ConnectionRefused,
    MediaNotSupported,
    Phi4Error,
    QuotaExceeded,
    UnknownModel,
)
from bot.phi4.failures import is_local
from bot.shared import MediaKind, translate
from bot.shared.tasks import TaskSupervisor

ADMINS = "7,8"
KEY = "sk-admin-never-sees-this"


class ProbedBackend:
    """A backend whose probe answers or fails as a test says; it never streams."""

    name = "stub"
    accepts: frozenset[MediaKind] = frozenset()

    def __init__(self, failure: Phi4Error | None = None) -> None:
        self.failure = failure
        self.probes = 0

    def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        raise NotImplementedError

    async def probe(self) -> str:
        self.probes += 1
        if self.failure is not None:
            raise self.failure
        return "a stub that answers"

    async def aclose(self) -> None:
        pass


class SentView:
    """An answer view that keeps the finished text in its chat's list."""

    def __init__(self, chats: dict[int, list[str]], target: ReplyTarget) -> None:
        self._chats, self._target, self._text = chats, target, ""

    @property
    def text(self) -> str:
        return self._text

    @property
    def message_ids(self) -> list[int]:
        return []

    @property
    def answer_shown_at(self) -> float | None:
        return None

    def append(self, chunk: str) -> None:
        self._text += chunk

    async def show_status(self, text: str) -> None:
        pass

    async def finish(self, *, note: str | None = None) -> list[int]:
        self._chats.setdefault(self._target.key.chat_id, []).append(self.text)
        return [1]

    async def fail(self, user_message: str) -> list[int]:
        return await self.finish()


class RecordedReplies:
    """The ChatReplies port, keeping each chat's finished messages in the reader's language,
    as Telegram shows them; private targets only. A chat in `closed` has never been opened
    by its user, so Telegram refuses to write there."""

    def __init__(self) -> None:
        self.chats: dict[int, list[str]] = {}
        self.closed: set[int] = set()

    def open_answer(
        self,
        target: ReplyTarget,
        *,
        drafts: bool = True,
        controls: bool = False,
        take_over: Sequence[int] = (),
    ) -> SentView:
        assert not target.is_group and not drafts and not take_over
        return SentView(self.chats, target)

    async def say(self, target: ReplyTarget, text: str) -> list[int]:
        if target.key.chat_id in self.closed:
            raise RuntimeError("Forbidden: bot can't initiate conversation with a user")
        self.chats.setdefault(target.key.chat_id, []).append(translate(text, target.language))
        return [1]

    async def offer_continue(self, target: ReplyTarget, message_id: int) -> None:
        raise AssertionError("no answer here is cut at the length limit")

    @asynccontextmanager
    async def typing(self, target: ReplyTarget) -> AsyncIterator[None]:
        yield


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class KeptSettings:
    """The ChatSettings port in memory, counting its writes; it outlives a `BackendHealth`,
    as the database outlives a run."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, str], str] = {}
        self.writes = 0

    async def get_setting(self, chat_id: int, name: str) -> str | None:
        return self.values.get((chat_id, name))

    async def set_setting(self, chat_id: int, name: str, value: str | None) -> None:
        self.writes += 1
        if value is None:
            self.values.pop((chat_id, name), None)
        else:
            self.values[(chat_id, name)] = value


def make_health(
    failure: Phi4Error | None = None, kept: KeptSettings | None = None, **env: Any
) -> tuple[BackendHealth, RecordedReplies, Clock]:
    values = {"PHI4BOT_ADMINS": ADMINS, "OPENAI_API_KEY": KEY, "PHI4_BACKEND": "openai"}
    settings = Settings(_env_file=None, **(values | env))
    replies, clock = RecordedReplies(), Clock()
    health = BackendHealth(
        backend=ProbedBackend(failure),
        replies=replies,
        settings=settings,
        tasks=TaskSupervisor(),
        settings_store=kept,
        clock=clock,
    )
    return health, replies, clock


async def settle(health: BackendHealth) -> None:
    """Let the notices being sent finish."""
    for _ in range(20):
        await asyncio.sleep(0)
    await health.tasks.drain(asyncio.get_running_loop().time())


def refused() -> ConnectionRefused:
    return ConnectionRefused(
        "nothing listens at http://127.0.0.1:8000/v1 (connection refused)",
        where="http://127.0.0.1:8000/v1",
    )


async def test_a_failed_start_up_check_logs_one_warning_with_class_and_next_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, _, _ = make_health(refused())
    with caplog.at_level(logging.INFO, logger="bot.conversation.health"):
        await health.check_now()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "configuration failure" in warnings[0]
    assert "nothing listens at http://127.0.0.1:8000/v1" in warnings[0]
    assert "Next step: nothing listens there: start the model server" in warnings[0]
    assert "OPENAI_BASE_URL" in warnings[0] and "README: Choose a model server" in warnings[0]
    await settle(health)


async def test_a_good_start_up_check_logs_what_answered_and_warns_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, replies, _ = make_health()
    with caplog.at_level(logging.INFO, logger="bot.conversation.health"):
        await health.check_now()
    assert [r.getMessage() for r in caplog.records] == ["the model answers: a stub that answers"]
    assert health.failing is None and replies.chats == {}


async def test_a_configuration_failure_reaches_every_admin_once_per_cause() -> None:
    health, replies, clock = make_health()
    for _ in range(3):
        health.failed(refused())
        clock.now += 60
    health.failed(AccessDenied("http://127.0.0.1:8000/v1 answered 401: no", where="x"))
    await settle(health)
    assert sorted(replies.chats) == [7, 8]
    for notices in replies.chats.values():
        assert len(notices) == 2
        assert "connection refused" in notices[0] and "Next step:" in notices[0]
        assert "answered 401" in notices[1] and "set a key it accepts" in notices[1]


async def test_the_same_cause_is_told_again_after_an_hour() -> None:
    health, replies, clock = make_health()
    health.failed(refused())
    clock.now += 3599
    health.failed(refused())
    clock.now += 2
    health.failed(refused())
    await settle(health)
    assert len(replies.chats[7]) == 2


async def test_transient_and_request_failures_are_not_sent_to_admins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, replies, _ = make_health()
    with caplog.at_level(logging.WARNING, logger="bot.conversation.health"):
        health.failed(QuotaExceeded("429 from the server"))
        health.failed(QuotaExceeded("429 from the server"))
        health.failed(MediaNotSupported("no images here"))
    await settle(health)
    assert replies.chats == {}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "transient failure" in warnings[0]
    assert "Next step: the server is rate-limiting" in warnings[0]


async def test_no_secret_reaches_an_admin_or_the_log(caplog: pytest.LogCaptureFixture) -> None:
    health, replies, _ = make_health()
    with caplog.at_level(logging.WARNING, logger="bot.conversation.health"):
        health.failed(UnknownModel(f"server echoed {KEY}", where="x", model="phi-9"))
    await settle(health)
    assert KEY not in replies.chats[7][0] and "[redacted]" in replies.chats[7][0]
    assert all(KEY not in r.getMessage() for r in caplog.records)


async def test_the_first_answer_after_a_failure_says_once_that_the_model_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, replies, _ = make_health()
    with caplog.at_level(logging.INFO, logger="bot.conversation.health"):
        health.answered()
        health.failed(refused())
        health.answered()
        health.answered()
    await settle(health)
    back = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert back == ["the model answers again (backend stub)"]
    assert replies.chats[7][-1] == "✅ The model answers again."


async def test_without_admins_a_configuration_failure_is_only_logged() -> None:
    health, replies, _ = make_health(PHI4BOT_ADMINS="")
    health.failed(refused())
    await settle(health)
    assert replies.chats == {}
    assert isinstance(health.failing, BackendUnavailable)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8000/v1", True),
        ("http://127.0.0.1:11434/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://192.168.1.20:8000/v1", True),
        ("http://vllm:8000/v1", True),
        ("https://models.github.ai/inference", False),
        ("http://8.8.8.8/v1", False),
    ],
)
def test_a_refused_port_is_a_mistake_only_on_this_machine_or_its_network(
    url: str, local: bool
) -> None:
    assert is_local(url) is local


async def test_an_admin_who_wrote_in_russian_reads_the_notices_in_russian() -> None:
    health, replies, _ = make_health()
    health.admin_wrote(7, "ru")
    health.failed(refused())
    health.answered()
    await settle(health)
    notice, back = replies.chats[7]
    assert notice.startswith("⚠️ Я не могу отвечать на сообщения")
    assert "Причина: `nothing listens at http://127.0.0.1:8000/v1" in notice
    assert "Что сделать: по этому адресу никто не отвечает" in notice
    assert "укажите в OPENAI_BASE_URL адрес" in notice
    assert "(README, раздел «Choose a model server»)" in notice
    assert "После исправления запустите `phi4bot check`." in notice
    assert back == "✅ Модель снова отвечает."
    assert replies.chats[8][0].startswith("⚠️ I cannot answer messages"), "8 never wrote"


async def test_a_waiting_notice_is_written_in_the_language_of_the_message_that_releases_it() -> (
    None
):
    health, replies, _ = make_health()
    replies.closed.add(7)
    health.failed(refused())
    await settle(health)
    assert 7 not in replies.chats
    replies.closed.clear()
    health.admin_wrote(7, "ru-RU")
    await settle(health)
    [notice] = replies.chats[7]
    assert notice.startswith("⚠️ Я не могу отвечать на сообщения")
    assert "запустите сервер модели (vLLM, Ollama)" in notice


async def test_an_admins_start_in_russian_shows_the_state_and_next_step_in_russian() -> None:
    failure = UnknownModel("phi-9 is not served", where="x", model="phi-9", served=("phi-4",))
    health, replies, _ = make_health(failure)
    english = await health.state_for_admin(7, "en")
    assert "(configuration failure)" in english
    assert "Next step: the model `phi-9` is not served here: the server lists phi-4" in english
    russian = translate(await health.state_for_admin(7, "ru"), "ru")
    assert russian.startswith("⚠️ Сервер модели не может ответить (ошибка в настройках).")
    assert "Причина: `phi-9 is not served`" in russian
    assert "Что сделать: модели `phi-9` на этом сервере нет: он предлагает phi-4" in russian
    assert "укажите в PHI4_MODEL одну из них" in russian
    health.failed(failure)
    await settle(health)
    assert replies.chats[7][0].startswith("⚠️ Я не могу"), "later notices follow /start"


async def test_an_admins_start_in_russian_when_the_model_answers() -> None:
    health, _, _ = make_health()
    state = translate(await health.state_for_admin(7, "ru"), "ru")
    assert state == "✅ Сервер модели отвечает: a stub that answers"


async def test_an_admins_language_is_kept_for_the_notices_of_the_next_run() -> None:
    kept = KeptSettings()
    before, _, _ = make_health(kept=kept)
    before.admin_wrote(7, "ru")
    await settle(before)
    restarted, replies, _ = make_health(kept=kept)  # 7 has not written since
    restarted.failed(refused())
    await settle(restarted)
    assert replies.chats[7][0].startswith("⚠️ Я не могу отвечать на сообщения")
    assert replies.chats[8][0].startswith("⚠️ I cannot answer messages"), "8 never wrote"


async def test_an_admins_language_is_written_only_when_it_changes() -> None:
    kept = KeptSettings()
    health, _, _ = make_health(kept=kept)
    for language in ("ru", "ru", "ru", "en", "en"):
        health.admin_wrote(7, language)
    await settle(health)
    assert kept.writes == 2 and kept.values == {(7, "admin_language"): "en"}
    await health.state_for_admin(7, "en")
    await settle(health)
    assert kept.writes == 2
