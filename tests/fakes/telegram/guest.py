"""Guest mode (Bot API 10.0): summons in chats the bot is not in, and the one inline message
each summon may be answered with.

A user mentions the bot in a chat it is not a member of; the bot gets a `guest_message`
update (a message carrying `guest_query_id`, with `reply_to_message` when the user replied
to something). It answers once with `answerGuestQuery` (an inline query result, such as an
article), which posts a message from the bot into that chat, marked with
`guest_bot_caller_user`, and returns a `SentGuestMessage` with its `inline_message_id`. From
then on the bot may only edit that message, by `inline_message_id` (`editMessageText`,
`editMessageReplyMarkup`, both answered with `true`); sending into the chat is refused
with 403. Buttons pressed under it arrive as callback queries carrying `inline_message_id`
instead of `message`.

Flood control: each guest message (from its answer on) has a bucket of its own, paced like
a group message (20 a minute), besides the bot's 30 a second.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import bad_request
from .keyboards import CallbackPress, keyboard_of
from .messages import NOT_MODIFIED, edit_message_reply_markup, edit_message_text, formatted
from .params import Params
from .state import BotMessage, Chat, Message, User, World
from .text import Entity, detect_entities

QUERY_INVALID = "QUERY_ID_INVALID"
INLINE_INVALID = "MESSAGE_ID_INVALID"
MAX_RESULT_ID = 64
# Flood keys of guest messages lie below every chat id the fake hands out.
_FLOOD_KEY_BASE = -(2**53)


@dataclass
class GuestQuery:
    """One summon: where, by whom, and the inline message that answered it (once it has)."""

    query_id: str
    chat_id: int
    caller_id: int
    message_id: int
    flood_key: int
    inline_message_id: str | None = None


class FloodSubject(NamedTuple):
    """What a flood-counted call is charged to: a bucket key, its kind, and the chat whose
    `Stats.chat_requests` record it."""

    key: int
    private: bool
    chat_id: int


def flood_subject(world: World, params: Params) -> FloodSubject | None:
    """The guest message a counted call addresses (by `guest_query_id` or
    `inline_message_id`), charged like a group message; None for a call to a chat."""
    inline_id = params.text("inline_message_id")
    if inline_id:
        message = world.inline_messages.get(inline_id)
        if message is None:
            raise bad_request(INLINE_INVALID)
        query = _query_of(world, inline_id)
        return FloodSubject(query.flood_key, False, query.chat_id)
    query_id = params.text("guest_query_id")
    if query_id is None:
        return None
    found: GuestQuery | None = world.guest_queries.get(query_id)
    if found is None:
        raise bad_request(QUERY_INVALID)
    return FloodSubject(found.flood_key, False, found.chat_id)


def _query_of(world: World, inline_id: str) -> GuestQuery:
    return next(q for q in world.guest_queries.values() if q.inline_message_id == inline_id)


def answer_guest_query(world: World, params: Params) -> dict[str, Any]:
    """Post the one answer a summon gets: an article's text (with entities and buttons)."""
    query: GuestQuery | None = world.guest_queries.get(params.text("guest_query_id") or "")
    if query is None or query.inline_message_id is not None:
        raise bad_request(QUERY_INVALID)
    result = params.structured("result")
    if not isinstance(result, dict) or result.get("type") != "article":
        raise bad_request("RESULT_TYPE_INVALID")
    result_id = result.get("id")
    if not isinstance(result_id, str) or not 1 <= len(result_id.encode()) <= MAX_RESULT_ID:
        raise bad_request("RESULT_ID_INVALID")
    if not result.get("title"):
        raise bad_request("RESULT_TITLE_EMPTY")
    content = result.get("input_message_content")
    if not isinstance(content, dict) or "message_text" not in content:
        raise bad_request("MESSAGE_EMPTY")
    inner = Params(
        {
            "text": content.get("message_text"),
            "entities": content.get("entities"),
            "parse_mode": content.get("parse_mode"),
        },
        {},
    )
    text, entities = formatted(inner, "text", "entities")
    keyboard = keyboard_of(Params({"reply_markup": result.get("reply_markup")}, {}))
    chat = world.chats[query.chat_id]
    caller = world.users[query.caller_id]
    fields: dict[str, Any] = {"text": text, "guest_bot_caller_user": caller.to_api()}
    if entities:
        fields["entities"] = entities
    if keyboard:
        fields["reply_markup"] = {"inline_keyboard": keyboard}
    stored = world.add_message(chat, world.bot, fields, reply_to=query.message_id)
    inline_id = secrets.token_urlsafe(24)
    record = BotMessage(
        message_id=stored["message_id"],
        chat_id=chat.id,
        text=text,
        entities=entities,
        thread_id=None,
        reply_to=query.message_id,
        history=[(world.clock(), text)],
        link_preview_options=content.get("link_preview_options"),
        keyboard=keyboard,
        inline_message_id=inline_id,
    )
    chat.bot_messages.append(record)
    chat.bot_index[record.message_id] = record
    world.inline_messages[inline_id] = record
    query.inline_message_id = inline_id
    return {"inline_message_id": inline_id}


def edit_text(world: World, params: Params) -> Message | bool:
    """`editMessageText`: of a guest message by `inline_message_id`, else of a chat's."""
    inline_id = params.text("inline_message_id")
    if inline_id:
        return edit_inline_text(world, params, inline_id)
    return edit_message_text(world, params)


def edit_reply_markup(world: World, params: Params) -> Message | bool:
    """`editMessageReplyMarkup`: of a guest message by `inline_message_id`, else of a chat's."""
    inline_id = params.text("inline_message_id")
    if inline_id:
        return edit_inline_markup(world, params, inline_id)
    return edit_message_reply_markup(world, params)


def edit_inline_text(world: World, params: Params, inline_id: str) -> bool:
    """`editMessageText` of a guest message: Telegram answers `true`, not the message."""
    record = _inline(world, inline_id)
    text, entities = formatted(params, "text", "entities")
    keyboard = keyboard_of(params)  # none given: the keyboard is removed, as on Telegram
    if record.text == text and record.entities == entities and record.keyboard == keyboard:
        raise bad_request(NOT_MODIFIED)
    stored = world.chats[record.chat_id].messages[record.message_id]
    record.text, record.entities = text, entities
    record.keyboard = keyboard
    record.history.append((world.clock(), text))
    stored["text"] = text
    stored.pop("entities", None)
    stored.pop("reply_markup", None)
    if entities:
        stored["entities"] = entities
    if keyboard:
        stored["reply_markup"] = {"inline_keyboard": keyboard}
    stored["edit_date"] = max(stored["date"], int(world.wall_clock()))
    return True


def edit_inline_markup(world: World, params: Params, inline_id: str) -> bool:
    """`editMessageReplyMarkup` of a guest message; without `reply_markup` it is removed."""
    record = _inline(world, inline_id)
    keyboard = keyboard_of(params)
    if record.keyboard == keyboard:
        raise bad_request(NOT_MODIFIED)
    stored = world.chats[record.chat_id].messages[record.message_id]
    record.keyboard = keyboard
    stored.pop("reply_markup", None)
    if keyboard:
        stored["reply_markup"] = {"inline_keyboard": keyboard}
    return True


def _inline(world: World, inline_id: str) -> BotMessage:
    record = world.inline_messages.get(inline_id)
    if record is None:
        raise bad_request(INLINE_INVALID)
    return record


class GuestDriver:
    """Mixed into `FakeTelegram`: chats the bot is not in, and the people summoning it."""

    world: World

    def guest_chat(
        self, type: str = "supergroup", title: str = "Friends", *, first_name: str = "Bob"
    ) -> Chat:
        """A chat the bot is not a member of: a group, a supergroup or a private chat
        between two people. Messages sent there reach the bot only as summons."""
        if type not in ("private", "group", "supergroup"):
            raise ValueError(f"type must be private, group or supergroup, not {type!r}")
        number = next(self.world.serial)
        if type == "private":
            chat = Chat(500_000_000 + number, type, first_name=first_name, guest=True)
        else:
            chat_id = -1_000_000_000_000 - number if type == "supergroup" else -number
            chat = Chat(chat_id, type, title=title, guest=True)
        self.world.chats[chat.id] = chat
        return chat

    def summon(
        self,
        chat: Chat,
        user: User,
        text: str,
        *,
        reply_to: int | Message | None = None,
        entities: list[Entity] | None = None,
    ) -> Message:
        """`user` mentions the bot in `chat`, optionally replying to a message there: a
        `guest_message` update with a fresh `guest_query_id`."""
        if not chat.guest:
            raise ValueError(f"chat {chat.id} has the bot as a member: use send_text")
        self.world.users.setdefault(user.id, user)
        query_id = str(secrets.randbits(62))
        content: dict[str, Any] = {"text": text, "guest_query_id": query_id}
        found = detect_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        target = reply_to["message_id"] if isinstance(reply_to, dict) else reply_to
        message = self.world.add_message(chat, user, content, reply_to=target)
        self.world.guest_queries[query_id] = GuestQuery(
            query_id,
            chat.id,
            user.id,
            message["message_id"],
            _FLOOD_KEY_BASE - len(self.world.guest_queries),
        )
        self.world.updates.push("guest_message", message)
        self.world.notify()
        return message

    def guest_answer(self, summon: Message) -> BotMessage | None:
        """The guest message that answers `summon`, as it stands now; None until answered."""
        query = self.world.guest_queries[summon["guest_query_id"]]
        if query.inline_message_id is None:
            return None
        return self.world.inline_messages[query.inline_message_id]

    def press_guest_button(self, answer: BotMessage, user: User, label: str) -> str:
        """`user` presses a callback button under a guest message: a `callback_query` with
        `inline_message_id` and no `message`. Returns the query id (see `press`)."""
        buttons = [b for row in answer.keyboard or [] for b in row if "callback_data" in b]
        button = next((b for b in buttons if b["text"] == label), None)
        if button is None or answer.inline_message_id is None:
            shown = [b["text"] for b in buttons]
            raise ValueError(f"no button {label!r} under this guest message; there are {shown}")
        self.world.users.setdefault(user.id, user)
        query_id = str(secrets.randbits(62))
        self.world.presses[query_id] = CallbackPress(
            query_id,
            answer.chat_id,
            answer.message_id,
            user.id,
            button["callback_data"],
            inline_message_id=answer.inline_message_id,
        )
        query = {
            "id": query_id,
            "from": user.to_api(),
            "inline_message_id": answer.inline_message_id,
            "chat_instance": str(answer.chat_id * 7919),
            "data": button["callback_data"],
        }
        self.world.updates.push("callback_query", query)
        self.world.notify()
        return query_id
