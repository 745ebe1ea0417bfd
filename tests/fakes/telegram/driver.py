"""The test's side of the chats: people, groups, and the messages they send to the bot.

Each `send_*` stores the message in its chat (taking the chat's next message id), queues a
`message` update with a new update_id, wakes long polls and returns the message dict exactly
as the bot will receive it. Media bytes become files the bot can fetch with getFile.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from typing import Any

from .keyboards import CallbackPress
from .state import Chat, Message, User, World
from .text import Entity, detect_entities

# Telegram's stand-in sender for anonymous group admins and service actions.
GROUP_ANONYMOUS_BOT = User(
    1087968824, "Group", "GroupAnonymousBot", language_code=None, is_bot=True
)
MessageRef = int | Message


def _picture_size(data: bytes) -> tuple[int, int]:
    """Width and height read by Pillow; 0×0 for bytes that are not a picture (damaged files)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return 0, 0


class ChatDriver:
    """Mixed into `FakeTelegram`: acts as the users talking to the bot."""

    world: World

    def private_user(
        self,
        user_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> User:
        """A user and their private chat with the bot (`user.chat`); same id, same user."""
        user_id = user_id if user_id is not None else 10_000 + next(self.world.serial)
        if user_id in self.world.users:
            return self.world.users[user_id]
        user = User(user_id, first_name, username, last_name, language_code)
        user.private_chat = Chat(user_id, "private", first_name=first_name, username=username)
        self.world.users[user_id] = user
        self.world.chats[user_id] = user.chat
        return user

    def group(
        self,
        chat_id: int | None = None,
        title: str = "Test group",
        type: str = "supergroup",
        is_forum: bool = False,
        *,
        username: str | None = None,
    ) -> Chat:
        """A group or supergroup the bot is a member of (ids default to Telegram's ranges)."""
        if type not in ("group", "supergroup"):
            raise ValueError(f"type must be 'group' or 'supergroup', not {type!r}")
        if chat_id is None:
            number = next(self.world.serial)
            chat_id = -1_000_000_000_000 - number if type == "supergroup" else -number
        chat = Chat(chat_id, type, title=title, username=username, is_forum=is_forum)
        chat.statuses[self.world.bot.id] = "member"
        self.world.chats[chat_id] = chat
        return chat

    def set_member(self, chat: Chat, user: User, status: str) -> None:
        """Make `user` (or the bot) a creator, administrator, member, restricted, left or kicked."""
        if status not in ("creator", "administrator", "member", "restricted", "left", "kicked"):
            raise ValueError(f"unknown member status {status!r}")
        self.world.users.setdefault(user.id, user)
        chat.statuses[user.id] = status

    def create_topic(self, chat: Chat, user: User, name: str) -> int:
        """Open a forum topic; returns its message_thread_id (the service message's id)."""
        if not chat.is_forum:
            raise ValueError(f"chat {chat.id} is not a forum")
        thread_id = chat.next_message_id
        created = {"forum_topic_created": {"name": name, "icon_color": 7322096}}
        message = self.world.add_message(chat, user, created, thread_id=thread_id)
        chat.topics[thread_id] = name
        self._deliver(message)
        return thread_id

    def send_text(
        self,
        chat: Chat,
        user: User,
        text: str,
        *,
        entities: list[Entity] | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A text message; commands and @mentions get their entities unless `entities` is given."""
        content: dict[str, Any] = {"text": text}
        found = detect_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self._user_message(chat, user, content, reply_to, thread_id)

    def send_photo(
        self,
        chat: Chat,
        user: User,
        image: bytes | Sequence[bytes],
        *,
        caption: str | None = None,
        caption_entities: list[Entity] | None = None,
        media_group_id: str | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A photo; a list of byte strings gives several sizes, smallest first, like Telegram."""
        sizes = [image] if isinstance(image, bytes | bytearray) else list(image)
        photo = []
        for data in sizes:
            stored = self.world.add_file(bytes(data), "photos", ".jpg")
            width, height = _picture_size(stored.data)
            photo.append({**self._file_fields(stored), "width": width, "height": height})
        content: dict[str, Any] = {"photo": photo}
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        self._caption(content, caption, caption_entities)
        return self._user_message(chat, user, content, reply_to, thread_id)

    def send_voice(
        self,
        chat: Chat,
        user: User,
        ogg: bytes,
        duration: int,
        *,
        size_override: int | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A voice note (OGG/Opus)."""
        stored = self.world.add_file(ogg, "voice", ".oga", size_override)
        voice = {**self._file_fields(stored), "duration": duration, "mime_type": "audio/ogg"}
        return self._user_message(chat, user, {"voice": voice}, reply_to, thread_id)

    def send_audio(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        duration: int,
        *,
        file_name: str = "audio.mp3",
        mime_type: str = "audio/mpeg",
        title: str | None = None,
        performer: str | None = None,
        caption: str | None = None,
        size_override: int | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A music file sent as audio."""
        stored = self.world.add_file(data, "music", _extension(file_name), size_override)
        audio: dict[str, Any] = {
            **self._file_fields(stored),
            "duration": duration,
            "file_name": file_name,
            "mime_type": mime_type,
        }
        for name, value in (("title", title), ("performer", performer)):
            if value is not None:
                audio[name] = value
        content: dict[str, Any] = {"audio": audio}
        self._caption(content, caption, None)
        return self._user_message(chat, user, content, reply_to, thread_id)

    def send_document(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        file_name: str,
        mime_type: str,
        *,
        caption: str | None = None,
        size_override: int | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A file sent as a document; `size_override` claims a size the bytes do not have."""
        stored = self.world.add_file(data, "documents", _extension(file_name), size_override)
        document = {**self._file_fields(stored), "file_name": file_name, "mime_type": mime_type}
        content: dict[str, Any] = {"document": document}
        self._caption(content, caption, None)
        return self._user_message(chat, user, content, reply_to, thread_id)

    def send_sticker(
        self,
        chat: Chat,
        user: User,
        data: bytes = b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        *,
        emoji: str = "👍",
        is_animated: bool = False,
        is_video: bool = False,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A sticker (a WEBP by default; TGS or WEBM when animated or video)."""
        extension = ".tgs" if is_animated else ".webm" if is_video else ".webp"
        stored = self.world.add_file(data, "stickers", extension)
        sticker = {
            **self._file_fields(stored),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
        }
        return self._user_message(chat, user, {"sticker": sticker}, reply_to, thread_id)

    def edit_text(
        self, chat: Chat, message: MessageRef, text: str, *, entities: list[Entity] | None = None
    ) -> Message:
        """The user edits a text message (or a caption): an `edited_message` update with the
        whole message as it now stands, `edit_date` set."""
        message_id = message["message_id"] if isinstance(message, dict) else message
        stored = chat.messages[message_id]
        if stored["from"]["id"] == self.world.bot.id:
            raise ValueError("users edit their own messages; the bot's are edited by the bot")
        field = "caption" if "caption" in stored else "text"
        stored[field] = text
        stored.pop(f"{field}_entities" if field == "caption" else "entities", None)
        found = detect_entities(text) if entities is None else entities
        if found:
            stored["caption_entities" if field == "caption" else "entities"] = found
        stored["edit_date"] = max(stored["date"], int(self.world.wall_clock()))
        self.world.updates.push("edited_message", dict(stored))
        self.world.notify()
        return stored

    def press_button(self, chat: Chat, user: User, message_id: int, label: str) -> str:
        """`user` presses the button labelled `label` under the bot's message: a
        `callback_query` update. Returns the query id, to find the bot's answer with
        `press(query_id)`. A button that is not there cannot be pressed (ValueError)."""
        record = chat.bot_index.get(message_id)
        buttons = [b for row in (record.keyboard or []) for b in row] if record else []
        button = next((b for b in buttons if b["text"] == label and "callback_data" in b), None)
        if button is None:
            shown = [b["text"] for b in buttons]
            raise ValueError(f"no button {label!r} under message {message_id}; there are {shown}")
        self.world.users.setdefault(user.id, user)
        query_id = str(secrets.randbits(62))
        self.world.presses[query_id] = CallbackPress(
            query_id, chat.id, message_id, user.id, button["callback_data"]
        )
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": chat.messages[message_id],
            "chat_instance": str(chat.id * 7919),
            "data": button["callback_data"],
        }
        self.world.updates.push("callback_query", query)
        self.world.notify()
        return query_id

    def migrate_group(self, old_chat_id: int, new_chat_id: int, *, by: User | None = None) -> Chat:
        """Upgrade a group to a supergroup, with the two service messages Telegram sends."""
        old = self.world.chats[old_chat_id]
        new = Chat(new_chat_id, "supergroup", title=old.title, username=old.username)
        new.statuses = dict(old.statuses)
        self.world.chats[new_chat_id] = new
        sender = by or GROUP_ANONYMOUS_BOT
        self._deliver(self.world.add_message(old, sender, {"migrate_to_chat_id": new_chat_id}))
        self._deliver(self.world.add_message(new, sender, {"migrate_from_chat_id": old_chat_id}))
        old.migrated_to = new_chat_id
        return new

    def register_file(self, data: bytes, size_override: int | None = None) -> tuple[str, str]:
        """Store bytes the bot may fetch with getFile; returns (file_id, file_unique_id)."""
        stored = self.world.add_file(data, "documents", "", size_override)
        return stored.file_id, stored.file_unique_id

    def _user_message(
        self,
        chat: Chat,
        user: User,
        content: dict[str, Any],
        reply_to: MessageRef | None,
        thread_id: int | None,
    ) -> Message:
        if thread_id is not None and chat.is_forum and thread_id not in chat.topics:
            raise ValueError(f"no topic {thread_id} in chat {chat.id}: call create_topic first")
        if user.id not in self.world.users and not user.is_bot:
            self.world.users[user.id] = user
        target = reply_to["message_id"] if isinstance(reply_to, dict) else reply_to
        message = self.world.add_message(chat, user, content, thread_id=thread_id, reply_to=target)
        self._deliver(message)
        return message

    def _deliver(self, message: Message) -> None:
        if self.world.chats[message["chat"]["id"]].guest:
            return  # the bot is not a member: it sees only the summons addressed to it
        self.world.updates.push("message", message)
        self.world.notify()

    @staticmethod
    def _file_fields(stored: Any) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }

    @staticmethod
    def _caption(
        content: dict[str, Any], caption: str | None, entities: list[Entity] | None
    ) -> None:
        if caption is None:
            return
        content["caption"] = caption
        found = detect_entities(caption) if entities is None else entities
        if found:
            content["caption_entities"] = found


def _extension(file_name: str) -> str:
    return "." + file_name.rsplit(".", 1)[1] if "." in file_name else ""
