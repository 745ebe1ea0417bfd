"""Inline keyboards under the bot's messages, and the button presses that come back.

A keyboard is checked as Telegram checks it (rows of buttons, each with a non-empty text and
either callback data of 1–64 bytes or an http(s)/tg URL to open). Editing a message's text
without `reply_markup` removes its keyboard, as on Telegram. A press becomes a
`callback_query` update; the bot must answer each query once with `answerCallbackQuery`
(text up to 200 characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import bad_request
from .params import Params
from .state import World

Keyboard = list[list[dict[str, Any]]]
MAX_CALLBACK_DATA = 64
MAX_ANSWER_TEXT = 200
URL_SCHEMES = ("https://", "http://", "tg://")
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


@dataclass
class CallbackPress:
    """One press of an inline button, and how the bot answered it (if it has)."""

    query_id: str
    chat_id: int
    message_id: int
    user_id: int
    data: str
    answered: bool = False
    inline_message_id: str | None = None  # a press under a guest (inline) message
    text: str | None = None
    show_alert: bool = False


def keyboard_of(params: Params) -> Keyboard | None:
    """The inline keyboard a send or edit asks for; None when it asks for none."""
    markup = params.structured("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        raise bad_request("unsupported reply markup: only inline keyboards are simulated")
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardMarkup expected")
    keyboard: Keyboard = []
    for row in rows:
        clean_row = []
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Text must be non-empty")
            url = button.get("url")
            if url is not None:
                if not isinstance(url, str) or not url.startswith(URL_SCHEMES):
                    raise bad_request("BUTTON_URL_INVALID")
                clean_row.append({"text": button["text"], "url": url})
                continue
            data = button.get("callback_data")
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")
            clean_row.append({"text": button["text"], "callback_data": data})
        if clean_row:
            keyboard.append(clean_row)
    return keyboard or None


def answer_callback_query(world: World, params: Params) -> bool:
    """Answer a button press once; a second answer or an unknown id is refused."""
    query_id = params.text("callback_query_id") or ""
    press = world.presses.get(query_id)
    if press is None or press.answered:
        raise bad_request(QUERY_INVALID)
    text = params.text("text")
    if text is not None and len(text) > MAX_ANSWER_TEXT:
        raise bad_request("MESSAGE_TOO_LONG")
    press.answered, press.text, press.show_alert = True, text or None, params.flag("show_alert")
    return True
