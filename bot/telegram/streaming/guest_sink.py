"""A guest answer's one message: answered once through `answerGuestQuery`, then edited by its
`inline_message_id`; an answer too long for it is cut, with a link to the rest."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    MessageEntity,
)
from telegram.error import TelegramError

from bot.telegram.streaming.buttons import NO_BUTTONS, Keyboard
from bot.telegram.streaming.render import (
    TELEGRAM_LIMIT,
    RenderedText,
    join,
    plain,
    split_for_telegram,
)
from bot.telegram.streaming.sink import NO_PREVIEW, SinkError, translate

CUT_MARK = "…"
RESULT_TITLE = "Phi-4"


class OneMessage:
    """Cuts a rendering to the one message a guest answer has, and remembers whether it did.

    The cut falls where `split_for_telegram` would end the first message (a paragraph, a
    line, a word), leaving room for "…".
    """

    def __init__(self, limit: int = TELEGRAM_LIMIT) -> None:
        self.limit = limit
        self.cut = False

    def __call__(self, rendered: RenderedText) -> list[RenderedText]:
        pieces = split_for_telegram(rendered, self.limit - len(CUT_MARK) - 1)
        if len(pieces) <= 1:
            return pieces
        self.cut = True
        return [join(pieces[0], plain(CUT_MARK), " ")]


def message_number(inline_message_id: str) -> int:
    """The number a guest message goes by where the bot keeps message ids (a stored answer's
    messages, a button's message): stable, and derived from the inline message's id alone."""
    return zlib.crc32(inline_message_id.encode())


class GuestSink:
    """The `MessageSink` of one guest answer.

    The first send answers the summon (`query_id`) with an article whose text is the
    message; later sends and every edit change that message by `inline_message_id`. Only
    one message exists, so deleting is refused. When `one_message` has cut the text, the
    message also gets a button opening a private chat with the bot at `more_url`.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        query_id: str | None,
        inline_message_id: str | None,
        one_message: OneMessage,
        more_label: str,
        more_url: str | None,
        on_answered: Callable[[str], None] | None = None,
    ) -> None:
        self.bot = bot
        self.query_id = query_id
        self.inline_message_id = inline_message_id
        self._one_message = one_message
        self._more_label = more_label
        self._more_url = more_url
        self._on_answered = on_answered

    async def send(
        self,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        reply_to: int | None,
        buttons: Keyboard = NO_BUTTONS,
    ) -> int:
        if self.inline_message_id is not None:
            await self.edit(0, text, entities, buttons=buttons)
            return message_number(self.inline_message_id)
        if self.query_id is None:
            raise SinkError("this guest message can no longer be answered")
        result = InlineQueryResultArticle(
            "answer",
            RESULT_TITLE,
            InputTextMessageContent(
                text, entities=list(entities) or None, link_preview_options=NO_PREVIEW
            ),
            reply_markup=self._markup(buttons),
        )
        try:
            sent = await self.bot.answer_guest_query(self.query_id, result)
        except TelegramError as exc:
            raise translate(exc) from exc
        self.query_id = None  # a summon is answered once
        self.inline_message_id = sent.inline_message_id
        if self._on_answered is not None:
            self._on_answered(sent.inline_message_id)
        return message_number(sent.inline_message_id)

    async def edit(
        self,
        message_id: int,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        buttons: Keyboard = NO_BUTTONS,
    ) -> None:
        if self.inline_message_id is None:
            raise SinkError("the guest message has not been sent")
        try:
            await self.bot.edit_message_text(
                text,
                inline_message_id=self.inline_message_id,
                entities=list(entities) or None,
                parse_mode=None,
                link_preview_options=NO_PREVIEW,
                reply_markup=self._markup(buttons),
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def draft(self, draft_id: int, text: str, entities: Sequence[MessageEntity]) -> None:
        raise SinkError("guest messages are not drafted")

    async def delete(self, message_id: int) -> None:
        raise SinkError("a guest message cannot be deleted by the bot")

    def _markup(self, buttons: Keyboard) -> InlineKeyboardMarkup | None:
        rows = [[InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]]
        if self._one_message.cut and self._more_url is not None:
            rows.append([InlineKeyboardButton(self._more_label, url=self._more_url)])
        rows = [row for row in rows if row]
        return InlineKeyboardMarkup(rows) if rows else None
