"""Everything the fake Telegram knows: users, chats, the messages in them and stored files."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import ApiError, bad_request
from .limits import Clock
from .text import Entity
from .updates import UpdateQueue

Message = dict[str, Any]
# Bots may download files up to this size with getFile (PROTOCOLS §3).
MAX_DOWNLOAD = 20 * 1024 * 1024


@dataclass(eq=False)
class User:
    """A Telegram user (or the bot itself); `chat` is the private chat with the bot."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False
    private_chat: Chat | None = field(default=None, repr=False)

    @property
    def chat(self) -> Chat:
        """The user's private chat with the bot; only users made by the driver have one."""
        if self.private_chat is None:
            raise AttributeError(f"user {self.id} has no private chat with the bot")
        return self.private_chat

    def to_api(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name) is not None:
                user[name] = getattr(self, name)
        return user


@dataclass(eq=False)
class BotMessage:
    """A text message the bot sent, as it stands now; `history` holds (time, text) per version.

    `history[0]` is the text as sent, each edit appends one entry (times on the fake's clock).
    """

    message_id: int
    chat_id: int
    text: str
    entities: list[Entity]
    thread_id: int | None
    reply_to: int | None
    history: list[tuple[float, str]]
    link_preview_options: dict[str, Any] | None = None
    deleted: bool = False
    # The inline keyboard under the message (rows of {"text", "callback_data"}), if any.
    keyboard: list[list[dict[str, Any]]] | None = None
    # Set for a guest message (posted through answerGuestQuery, edited by this id only).
    inline_message_id: str | None = None

    @property
    def buttons(self) -> list[str]:
        """The labels of the buttons under the message, row by row."""
        return [button["text"] for row in self.keyboard or [] for button in row]

    @property
    def edits(self) -> int:
        return len(self.history) - 1


@dataclass(frozen=True)
class Draft:
    """One `sendMessageDraft` call: the draft text shown at `time`."""

    time: float
    draft_id: int
    text: str
    entities: list[Entity]
    thread_id: int | None


@dataclass(frozen=True)
class SentDocument:
    """A file the bot uploaded with `sendDocument`."""

    time: float
    message_id: int
    file_name: str
    data: bytes
    mime_type: str | None
    caption: str | None
    thread_id: int | None


class ChatAction(NamedTuple):
    time: float
    action: str
    thread_id: int | None


@dataclass(eq=False)
class Chat:
    """A chat and everything the bot did in it; message ids are per chat, as on Telegram."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    is_forum: bool = False
    statuses: dict[int, str] = field(default_factory=dict)
    topics: dict[int, str] = field(default_factory=dict)
    migrated_to: int | None = None
    left: bool = False
    # A chat the bot is not a member of: it only sees guest summons there (see `guest`).
    guest: bool = False
    next_message_id: int = 1
    messages: dict[int, Message] = field(default_factory=dict, repr=False)
    bot_messages: list[BotMessage] = field(default_factory=list, repr=False)
    bot_index: dict[int, BotMessage] = field(default_factory=dict, repr=False)
    drafts: list[Draft] = field(default_factory=list, repr=False)
    documents: list[SentDocument] = field(default_factory=list, repr=False)
    actions: list[ChatAction] = field(default_factory=list, repr=False)

    @property
    def private(self) -> bool:
        return self.type == "private"

    def to_api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.private:
            chat["first_name"] = self.first_name
        else:
            chat["title"] = self.title
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat


@dataclass(frozen=True)
class StoredFile:
    """A file Telegram holds; `size` may exceed `len(data)` to stand for a huge file."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    size: int


class World:
    """The shared state every Bot API method and every test helper reads and changes.

    Every change calls `notify()`, which wakes long polls and `wait_until` waiters.
    """

    def __init__(self, token: str, bot_username: str, bot_name: str, clock: Clock) -> None:
        self.token = token
        self.clock = clock
        self.wall_clock = time.time
        bot_id = int(token.split(":")[0])
        self.bot = User(bot_id, bot_name, bot_username, language_code=None, is_bot=True)
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates = UpdateQueue()
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook: dict[str, Any] = {}
        self.webhook_spread: list[str] = []  # URLs to spread deliveries over, in turn
        self.webhook_deliveries: Counter[str] = Counter()
        self.changed = asyncio.Event()
        self.serial = itertools.count(1)
        self.presses: dict[str, Any] = {}  # callback query id -> keyboards.CallbackPress
        self.guest_mode = True  # what getMe says in `supports_guest_queries`
        self.guest_queries: dict[str, Any] = {}  # guest_query_id -> guest.GuestQuery
        self.inline_messages: dict[str, BotMessage] = {}  # inline_message_id -> message

    def notify(self) -> None:
        """Wake everyone waiting for a change (O(1): one event swapped for a fresh one)."""
        self.changed.set()
        self.changed = asyncio.Event()

    def chat(self, chat_id: int | str) -> Chat:
        """The chat a call addresses, refused like Telegram if unknown, left or migrated."""
        if isinstance(chat_id, str):
            found = next((c for c in self.chats.values() if f"@{c.username}" == chat_id), None)
        else:
            found = self.chats.get(chat_id)
        if found is None or found.left:
            raise bad_request("chat not found")
        if found.guest:
            raise ApiError(403, f"Forbidden: bot is not a member of the {found.type} chat")
        if found.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", migrate_to_chat_id=found.migrated_to
            )
        return found

    def add_message(
        self,
        chat: Chat,
        sender: User,
        content: dict[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> Message:
        """Store a new message with the next id of `chat`, shaped as the Bot API returns it."""
        message: Message = {
            "message_id": chat.next_message_id,
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": int(self.wall_clock()),
        }
        chat.next_message_id += 1
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.is_forum:
                message["is_topic_message"] = True
        target = reply_to if reply_to is not None else (thread_id if chat.is_forum else None)
        if target is not None and target in chat.messages:
            quoted = chat.messages[target]
            message["reply_to_message"] = {
                k: v for k, v in quoted.items() if k != "reply_to_message"
            }
        message.update(content)
        chat.messages[message["message_id"]] = message
        return message

    def add_file(
        self, data: bytes, folder: str, extension: str, size: int | None = None
    ) -> StoredFile:
        """Keep `data` under a fresh file_id and a `folder/file_N.ext` path, like Telegram."""
        number = len(self.files)
        file_path = f"{folder}/file_{number}{extension}"
        stored = StoredFile(
            file_id=f"AgAC{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{secrets.token_urlsafe(8)}",
            file_path=file_path,
            data=data,
            size=len(data) if size is None else size,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[file_path] = stored
        return stored
