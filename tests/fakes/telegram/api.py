"""The table of Bot API methods the fake answers, looked up case-insensitively as Telegram does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import chats, guest, keyboards, messages
from .params import Params
from .state import World
from .updates import get_updates

Handler = Callable[[World, Params], Any]

METHODS: dict[str, Handler] = {
    "getMe": chats.get_me,
    "getUpdates": get_updates,
    "setWebhook": chats.set_webhook,
    "deleteWebhook": chats.delete_webhook,
    "getWebhookInfo": chats.get_webhook_info,
    "setMyCommands": chats.set_my_commands,
    "getMyCommands": chats.get_my_commands,
    "deleteMyCommands": chats.delete_my_commands,
    "getChat": chats.get_chat,
    "getChatMember": chats.get_chat_member,
    "getChatAdministrators": chats.get_chat_administrators,
    "leaveChat": chats.leave_chat,
    "getFile": chats.get_file,
    "sendMessage": messages.send_message,
    "editMessageText": guest.edit_text,
    "editMessageReplyMarkup": guest.edit_reply_markup,
    "answerGuestQuery": guest.answer_guest_query,
    "answerCallbackQuery": keyboards.answer_callback_query,
    "deleteMessage": messages.delete_message,
    "sendMessageDraft": messages.send_message_draft,
    "sendDocument": messages.send_document,
    "sendChatAction": messages.send_chat_action,
}

# Method names are case-insensitive on Telegram: lower-case name -> (canonical name, handler).
BY_LOWER_NAME: dict[str, tuple[str, Handler]] = {
    name.lower(): (name, handler) for name, handler in METHODS.items()
}
