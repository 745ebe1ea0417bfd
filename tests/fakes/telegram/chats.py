"""Bot API methods about the bot, chats, members, commands, webhooks and files."""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request
from .params import Params
from .state import MAX_DOWNLOAD, Chat, World

_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
    "can_manage_topics",
)


def get_me(world: World, params: Params) -> dict[str, Any]:
    return {
        **world.bot.to_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
        "supports_guest_queries": world.guest_mode,
    }


def get_chat(world: World, params: Params) -> dict[str, Any]:
    chat = world.chat(params.chat_id())
    return {
        **chat.to_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


def member(world: World, chat: Chat, user_id: int) -> dict[str, Any]:
    """A ChatMember object for `user_id`; users the test never placed count as members."""
    user = world.bot if user_id == world.bot.id else world.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    status = chat.statuses.get(user_id, "member")
    body: dict[str, Any] = {"user": user.to_api(), "status": status}
    if status == "creator":
        body["is_anonymous"] = False
    elif status == "administrator":
        body.update({"can_be_edited": False, "is_anonymous": False})
        body.update(dict.fromkeys(_ADMIN_RIGHTS, True))
    elif status == "kicked":
        body["until_date"] = 0
    return body


def get_chat_member(world: World, params: Params) -> dict[str, Any]:
    chat = world.chat(params.chat_id())
    return member(world, chat, params.integer("user_id"))


def get_chat_administrators(world: World, params: Params) -> list[dict[str, Any]]:
    chat = world.chat(params.chat_id())
    if chat.private:
        raise bad_request("there are no administrators in the private chat")
    admins = [
        uid for uid, status in chat.statuses.items() if status in ("creator", "administrator")
    ]
    return [member(world, chat, uid) for uid in admins]


def leave_chat(world: World, params: Params) -> bool:
    chat = world.chat(params.chat_id())
    if chat.private:
        raise bad_request("chat member status can't be changed in private chats")
    chat.left = True
    chat.statuses[world.bot.id] = "left"
    return True


def _command_key(params: Params) -> tuple[str, str]:
    scope = params.structured("scope")
    kind = scope.get("type", "default") if isinstance(scope, dict) else "default"
    if isinstance(scope, dict) and "chat_id" in scope:
        kind = f"{kind}:{scope['chat_id']}:{scope.get('user_id', '')}"
    return kind, params.text("language_code") or ""


def set_my_commands(world: World, params: Params) -> bool:
    commands = params.structured("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    clean: list[dict[str, str]] = []
    for command in commands:
        name = str(command.get("command", "")) if isinstance(command, dict) else ""
        description = str(command.get("description", "")) if isinstance(command, dict) else ""
        if not _COMMAND_NAME.fullmatch(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": name, "description": description})
    world.commands[_command_key(params)] = clean
    return True


def get_my_commands(world: World, params: Params) -> list[dict[str, str]]:
    return list(world.commands.get(_command_key(params), []))


def delete_my_commands(world: World, params: Params) -> bool:
    world.commands.pop(_command_key(params), None)
    return True


def set_webhook(world: World, params: Params) -> bool:
    url = params.text("url") or ""
    if url and not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if params.flag("drop_pending_updates"):
        world.updates.clear()
    allowed = params.structured("allowed_updates")
    if isinstance(allowed, list):
        world.updates.allowed = frozenset(allowed) or None
    world.webhook = {
        "url": url,
        "secret_token": params.text("secret_token"),
        "max_connections": params.optional_integer("max_connections") or 40,
        "allowed_updates": allowed if isinstance(allowed, list) else None,
    }
    return True


def delete_webhook(world: World, params: Params) -> bool:
    if params.flag("drop_pending_updates"):
        world.updates.clear()
    world.webhook = {}
    return True


def get_webhook_info(world: World, params: Params) -> dict[str, Any]:
    info: dict[str, Any] = {
        "url": world.webhook.get("url", ""),
        "has_custom_certificate": False,
        "pending_update_count": len(world.updates.pending),
    }
    if world.webhook.get("url"):
        info["max_connections"] = world.webhook["max_connections"]
        if world.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = world.webhook["allowed_updates"]
        for name in ("last_error_message", "last_error_date"):
            if name in world.webhook:
                info[name] = world.webhook[name]
    return info


def get_file(world: World, params: Params) -> dict[str, Any]:
    stored = world.files.get(params.text("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "file_path": stored.file_path,
    }
