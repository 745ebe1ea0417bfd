"""Whether the model can answer, told to the operator: at start-up, on failure and on recovery.

At start-up the backend is probed in the background; if it cannot answer, one WARNING line
names the failure class and the next step. Later failed answers log that line again at most
once per cause per `notice_every` seconds, and configuration mistakes (which waiting will not
mend) are also sent to every admin's private chat at the same pace, so the operator learns them
from Telegram. A bot cannot write first: a notice an admin could not be sent waits, and is
sent when that admin next writes; an admin's /start shows the backend's state as probed then.
The first answer after a failure logs one INFO line that the model is back.
The log is English; an admin reads the notices in the language of their last message to the
bot (a waiting notice, in the language of the message that releases it). That language is
kept in the admin's chat settings, since Telegram tells a bot a person's language only in
what that person sends: a notice at the next start is in it too. An admin who never wrote
reads English.
Secrets never reach a log line or a notice: only settings' names are printed, and any secret
value in a server's message is masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine

from bot.config import Settings
from bot.conversation.ports import ChatReplies, ChatSettings
from bot.conversation.prompt import ChatSetting
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Backend, BackendTimeout, Phi4Error
from bot.phi4.diagnosis import next_step
from bot.phi4.errors import FailureClass
from bot.shared import Sentence
from bot.shared.i18n import N_
from bot.shared.tasks import TaskSupervisor
from storage import ConversationKey

log = logging.getLogger(__name__)

NOTICE_EVERY = 3600.0
"""Seconds before the same cause is logged with its next step, or sent to admins, again."""

REDACTED = "[redacted]"

FAILURES = {
    FailureClass.CONFIGURATION: N_("configuration failure"),
    FailureClass.TRANSIENT: N_("transient failure"),
    FailureClass.REQUEST: N_("request failure"),
}
"""Each failure class as an admin reads it, named whole so each language can word it."""

CANNOT_ANSWER = N_(
    "⚠️ I cannot answer messages: the model server is misconfigured.\n"
    "Reason: `{reason}`\n"
    "Next step: {hint}\n"
    "Run `phi4bot check` after the change."
)
BACK = Sentence("✅ The model answers again.")
ANSWERS = N_("✅ The model server answers: {what}")
STATE = N_("⚠️ The model server cannot answer ({failure}).\nReason: `{reason}`\nNext step: {hint}")


class BackendHealth:
    """Tracks whether the backend answers, and tells the log and the admins what to do."""

    def __init__(
        self,
        *,
        backend: Backend,
        replies: ChatReplies,
        settings: Settings,
        tasks: TaskSupervisor,
        settings_store: ChatSettings | None = None,
        notice_every: float = NOTICE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self._settings_store = settings_store
        """Where each admin's language is kept from one run to the next."""
        self.replies = replies
        self.settings = settings
        self.notice_every = notice_every
        self._clock = clock
        self._told: dict[str, float] = {}
        self._failing: Phi4Error | None = None
        self._admins_told = False
        self._undelivered: dict[int, Sentence] = {}
        """Per admin, the newest notice Telegram would not deliver (they never wrote first)."""
        self._languages: dict[int, str | None] = {}
        """Per admin, the Telegram language of their last message (read back once kept)."""
        self.tasks = tasks

    @property
    def failing(self) -> Phi4Error | None:
        """The last failure, while no answer has come since."""
        return self._failing

    def start(self) -> None:
        """Probe the backend in the background; the bot takes updates meanwhile."""
        self._spawn(self.check_now())

    async def check_now(self) -> None:
        """Probe the backend once: log what answered, or the failure and its next step."""
        answered = await self._probe(self.settings.connect_timeout + 15.0, "the start-up check")
        if isinstance(answered, Phi4Error):
            self._report(answered, at_start=True)
        else:
            log.info("the model answers: %s", self._redact(answered))

    async def _probe(self, limit: float, check: str) -> str | Phi4Error:
        """What answered a probe of the backend within `limit` seconds, or why nothing did."""
        try:
            async with asyncio.timeout(limit):
                return await self.backend.probe()
        except Phi4Error as exc:
            return exc
        except TimeoutError:
            return BackendTimeout(f"no answer to {check} within {limit:g} s")
        except Exception as exc:
            return Phi4Error(f"{check} failed: {type(exc).__name__}: {exc}")

    def answered(self) -> None:
        """An answer came through: if the model was failing, say once that it is back."""
        if self._failing is None:
            return
        self._failing = None
        self._undelivered.clear()  # a failure notice nobody read is no longer news
        log.info("the model answers again (backend %s)", self.backend.name)
        if self._admins_told:
            self._admins_told = False
            self._spawn(self._tell_admins(BACK))

    def failed(self, error: Phi4Error) -> None:
        """An answer failed; a failure of the request itself says nothing about the backend."""
        if error.failure_class is not FailureClass.REQUEST:
            self._report(error)

    # -- telling ------------------------------------------------------------------------

    def _report(self, error: Phi4Error, *, at_start: bool = False) -> None:
        self._failing = error
        cause = type(error).__name__
        now = self._clock()
        last = self._told.get(cause)
        if not at_start and last is not None and now - last < self.notice_every:
            return
        self._told[cause] = now
        kind = error.failure_class.value
        hint = next_step(error, self.settings)
        reason = self._redact(str(error))
        log.warning(
            "the model %s (%s failure: %s). Next step: %s",
            "cannot answer yet" if at_start else "did not answer",
            kind,
            reason,
            hint,
        )
        if error.failure_class is FailureClass.CONFIGURATION and self.settings.admins:
            self._admins_told = True
            self._spawn(self._tell_admins(admin_notice(reason, hint)))

    async def _tell_admins(self, notice: Sentence) -> None:
        for admin in sorted(self.settings.admins):
            await self._tell_admin(admin, notice)

    async def _tell_admin(self, admin: int, notice: Sentence) -> None:
        language = await self._language_of(admin)
        target = ReplyTarget(ConversationKey(admin, None), is_group=False, language=language)
        try:
            sent = await self.replies.say(target, notice)
            problem = "" if sent else "Telegram took no message"
        except Exception as exc:
            problem = self._redact(str(exc)) or type(exc).__name__
        if not problem:
            self._undelivered.pop(admin, None)
            return
        self._undelivered[admin] = notice
        log.warning(
            "could not send the notice to admin %s (%s); it is sent when they next write",
            admin,
            problem,
        )

    async def _language_of(self, admin: int) -> str | None:
        """The admin's language: from their last message, or as kept from an earlier run."""
        if admin in self._languages or self._settings_store is None:
            return self._languages.get(admin)
        try:
            kept = await self._settings_store.get_setting(admin, ChatSetting.ADMIN_LANGUAGE)
        except Exception as exc:  # English then; the notice matters more than its language
            log.warning("reading admin %s's language failed: %s", admin, exc)
            return None
        return self._languages.setdefault(admin, kept)

    def _wrote_in(self, admin: int, language: str | None) -> None:
        """Remember the admin's language, and keep it when it is new or changed."""
        if admin in self._languages and self._languages[admin] == language:
            return
        self._languages[admin] = language
        store = self._settings_store
        if store is not None:
            self._spawn(store.set_setting(admin, ChatSetting.ADMIN_LANGUAGE, language))

    def admin_wrote(self, admin: int, language: str | None) -> None:
        """An admin wrote to the bot (in Telegram `language`): a notice that could not reach
        them is sent now, and later notices are written in that language."""
        self._wrote_in(admin, language)
        notice = self._undelivered.pop(admin, None)
        if notice is not None:
            log.info("sending admin %s the notice they could not be sent before", admin)
            self._spawn(self._tell_admin(admin, notice))

    async def state_for_admin(self, admin: int, language: str | None) -> Sentence:
        """What an admin's /start (sent in Telegram `language`) shows: the backend probed now,
        with the reason and the next step when it cannot answer. It supersedes any notice
        still waiting for them; later notices are written in that language."""
        self._wrote_in(admin, language)
        self._undelivered.pop(admin, None)
        probed = await self._probe(self.settings.connect_timeout + 5.0, "the check")
        if not isinstance(probed, Phi4Error):
            self.answered()
            return Sentence(ANSWERS, what=self._redact(probed))
        self._failing = probed
        return Sentence(
            STATE,
            failure=Sentence(FAILURES[probed.failure_class]),
            reason=self._redact(str(probed)).replace("`", "'"),
            hint=next_step(probed, self.settings),
        )

    def _redact(self, text: str) -> str:
        for secret in self.settings.secrets():
            if len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        """Probes and admin notices run in the background; shutdown cancels them rather
        than wait (a probe may take the whole connect timeout)."""
        self.tasks.spawn(work, name="backend-health", cancel_at_shutdown=True)


def admin_notice(reason: str, hint: Sentence) -> Sentence:
    """The Markdown an admin reads: the exact reason (verbatim, as code) and the next step."""
    return Sentence(CANNOT_ANSWER, reason=reason.replace("`", "'"), hint=hint)
