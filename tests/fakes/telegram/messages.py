"""Bot API methods that put something in a chat: send, edit, delete, drafts, files, actions."""

from __future__ import annotations

import mimetypes
from typing import Any

from .errors import bad_request
from .keyboards import keyboard_of
from .markup import parse_markup
from .params import Params, Upload
from .state import BotMessage, Chat, ChatAction, Draft, Message, SentDocument, World
from .text import Entity, check_entities, finish

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def formatted(
    params: Params,
    text_name: str,
    entities_name: str,
    *,
    caption: bool = False,
    allow_empty: bool = False,
) -> tuple[str, list[Entity]]:
    """The text and entities a call asks for: explicit entities win over `parse_mode`."""
    raw = params.text(text_name) or ""
    raw_entities = params.structured(entities_name)
    parse_mode = params.text("parse_mode")
    if raw_entities is None and parse_mode:
        text, entities = parse_markup(raw, parse_mode)
    else:
        text, entities = raw, check_entities(raw, raw_entities)
    return finish(text, entities, caption=caption, allow_empty=allow_empty)


def _thread(chat: Chat, params: Params) -> int | None:
    thread_id = params.optional_integer("message_thread_id")
    if thread_id is not None and chat.is_forum and thread_id not in chat.topics:
        raise bad_request("message thread not found")
    return thread_id


def _reply_target(chat: Chat, params: Params) -> int | None:
    """The message replied to, from `reply_parameters` or the older `reply_to_message_id`."""
    reply = params.structured("reply_parameters")
    if isinstance(reply, dict):
        target, lenient = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
    else:
        target = params.optional_integer("reply_to_message_id")
        lenient = params.flag("allow_sending_without_reply")
    if target is None or target in chat.messages:
        return target
    if lenient:
        return None
    raise bad_request("message to be replied not found")


def send_message(world: World, params: Params) -> Message:
    chat = world.chat(params.chat_id())
    text, entities = formatted(params, "text", "entities")
    thread_id = _thread(chat, params)
    reply_to = _reply_target(chat, params)
    preview = params.structured("link_preview_options")
    keyboard = keyboard_of(params)
    content: dict[str, Any] = {"text": text}
    if entities:
        content["entities"] = entities
    if preview:
        content["link_preview_options"] = preview
    if keyboard:
        content["reply_markup"] = {"inline_keyboard": keyboard}
    message = world.add_message(chat, world.bot, content, thread_id=thread_id, reply_to=reply_to)
    record = BotMessage(
        message_id=message["message_id"],
        chat_id=chat.id,
        text=text,
        entities=entities,
        thread_id=thread_id,
        reply_to=reply_to,
        history=[(world.clock(), text)],
        link_preview_options=preview,
        keyboard=keyboard,
    )
    chat.bot_messages.append(record)
    chat.bot_index[record.message_id] = record
    return message


def edit_message_text(world: World, params: Params) -> Message:
    if params.text("inline_message_id"):
        raise bad_request("inline messages are not supported by this server")
    chat = world.chat(params.chat_id())
    message_id = params.integer("message_id")
    text, entities = formatted(params, "text", "entities")
    keyboard = keyboard_of(params)  # none given: the keyboard is removed, as on Telegram
    record, stored = _own_message(world, chat, message_id)
    if record.text == text and record.entities == entities and record.keyboard == keyboard:
        raise bad_request(NOT_MODIFIED)
    record.text, record.entities = text, entities
    _set_keyboard(record, stored, keyboard)
    record.history.append((world.clock(), text))
    stored["text"] = text
    stored.pop("entities", None)
    if entities:
        stored["entities"] = entities
    stored["edit_date"] = max(stored["date"], int(world.wall_clock()))
    preview = params.structured("link_preview_options")
    if preview:
        stored["link_preview_options"] = record.link_preview_options = preview
    return stored


def edit_message_reply_markup(world: World, params: Params) -> Message:
    """Change only the keyboard under a message; without `reply_markup` it is removed."""
    if params.text("inline_message_id"):
        raise bad_request("inline messages are not supported by this server")
    chat = world.chat(params.chat_id())
    record, stored = _own_message(world, chat, params.integer("message_id"))
    keyboard = keyboard_of(params)
    if record.keyboard == keyboard:
        raise bad_request(NOT_MODIFIED)
    _set_keyboard(record, stored, keyboard)
    stored["edit_date"] = max(stored["date"], int(world.wall_clock()))
    return stored


def _own_message(world: World, chat: Chat, message_id: int) -> tuple[BotMessage, Message]:
    """A text message of the bot's that may be edited, refused like Telegram otherwise."""
    stored = chat.messages.get(message_id)
    if stored is None:
        raise bad_request("message to edit not found")
    if stored["from"]["id"] != world.bot.id:
        raise bad_request("message can't be edited")
    record = chat.bot_index.get(message_id)
    if record is None:
        raise bad_request("there is no text in the message to edit")
    return record, stored


def _set_keyboard(record: BotMessage, stored: Message, keyboard: Any) -> None:
    record.keyboard = keyboard
    stored.pop("reply_markup", None)
    if keyboard:
        stored["reply_markup"] = {"inline_keyboard": keyboard}


def delete_message(world: World, params: Params) -> bool:
    chat = world.chat(params.chat_id())
    message_id = params.integer("message_id")
    stored = chat.messages.get(message_id)
    if stored is None:
        raise bad_request("message to delete not found")
    is_admin = chat.statuses.get(world.bot.id) in ("administrator", "creator")
    if stored["from"]["id"] != world.bot.id and not chat.private and not is_admin:
        raise bad_request("message can't be deleted")
    del chat.messages[message_id]
    record = chat.bot_index.pop(message_id, None)
    if record is not None:
        record.deleted = True
    return True


def send_message_draft(world: World, params: Params) -> bool:
    """Native streaming: an ephemeral draft, allowed in private chats only."""
    chat = world.chat(params.chat_id())
    if not chat.private:
        raise bad_request("TEXTDRAFT_PEER_INVALID")
    draft_id = params.integer("draft_id")
    if draft_id == 0:
        raise bad_request("draft_id must be non-zero")
    text, entities = formatted(params, "text", "entities", allow_empty=True)
    thread_id = params.optional_integer("message_thread_id")
    chat.drafts.append(Draft(world.clock(), draft_id, text, entities, thread_id))
    return True


def send_document(world: World, params: Params) -> Message:
    chat = world.chat(params.chat_id())
    upload = params.upload("document")
    if isinstance(upload, Upload):
        data, file_name = upload.data, upload.filename or "document"
        mime_type = upload.content_type or mimetypes.guess_type(file_name)[0]
    elif isinstance(upload, str) and upload in world.files:
        data, file_name = world.files[upload].data, "document"
        mime_type = None
    elif upload:
        raise bad_request("wrong file identifier/HTTP URL specified")
    else:
        raise bad_request("there is no document in the request")
    if not data:
        raise bad_request("file must be non-empty")
    caption, caption_entities = formatted(params, "caption", "caption_entities", caption=True)
    thread_id = _thread(chat, params)
    reply_to = _reply_target(chat, params)
    extension = "." + file_name.rsplit(".", 1)[1] if "." in file_name else ""
    stored = world.add_file(data, "documents", extension)
    document: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": file_name,
        "file_size": stored.size,
    }
    if mime_type:
        document["mime_type"] = mime_type
    content: dict[str, Any] = {"document": document}
    if caption:
        content["caption"] = caption
    if caption_entities:
        content["caption_entities"] = caption_entities
    message = world.add_message(chat, world.bot, content, thread_id=thread_id, reply_to=reply_to)
    chat.documents.append(
        SentDocument(
            time=world.clock(),
            message_id=message["message_id"],
            file_name=file_name,
            data=data,
            mime_type=mime_type,
            caption=caption or None,
            thread_id=thread_id,
        )
    )
    return message


def send_chat_action(world: World, params: Params) -> bool:
    chat = world.chat(params.chat_id())
    action = params.text("action") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    thread_id = params.optional_integer("message_thread_id")
    chat.actions.append(ChatAction(world.clock(), action, thread_id))
    return True
