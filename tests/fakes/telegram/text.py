"""Telegram's rules for message text and entities, all measured in UTF-16 code units.

Bot API offsets and lengths count UTF-16 code units, so an emoji outside the Basic
Multilingual Plane is two units. A message goes through the same steps as on Telegram:
entities are checked against the text as sent, then leading and trailing whitespace is
trimmed (entities shifted and clipped to match), then the result must be non-empty and at
most 4096 units (captions: 1024). Only the first 100 entities are kept, as Telegram does.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request, cant_parse

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ENTITIES = 100

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)
# Fields an entity may carry besides type/offset/length, and which types require them.
_EXTRA_FIELDS = ("url", "user", "language", "custom_emoji_id", "unix_time", "date_time_format")
_REQUIRED = {
    "text_link": "url",
    "text_mention": "user",
    "custom_emoji": "custom_emoji_id",
    "date_time": "unix_time",
}

Entity = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Bot API offset."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The part of `text` an entity covers, given UTF-16 `offset` and `length`."""
    encoded = text.encode("utf-16-le")
    return encoded[2 * offset : 2 * (offset + length)].decode("utf-16-le", errors="replace")


def check_entities(text: str, raw: Any) -> list[Entity]:
    """Validate entities sent with `text`; return clean copies of the first 100.

    Telegram refuses entities it cannot place, so a bot computing offsets in code points
    instead of UTF-16 units (or past the end of the text) is caught here.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise cant_parse("entities must be an array of MessageEntity")
    size = utf16_len(text)
    clean: list[Entity] = []
    for index, entity in enumerate(raw[:MAX_ENTITIES]):
        clean.append(_check_entity(index, entity, size))
    return clean


def _check_entity(index: int, entity: Any, size: int) -> Entity:
    if not isinstance(entity, dict):
        raise cant_parse(f"entity {index} is not an object")
    kind = entity.get("type")
    if kind not in ENTITY_TYPES:
        raise cant_parse(f"unsupported entity type {kind!r} in entity {index}")
    offset, length = entity.get("offset"), entity.get("length")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise cant_parse(f"entity {index} has an invalid offset {offset!r}")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        raise cant_parse(f"entity {index} has an invalid length {length!r}")
    if offset + length > size:
        raise cant_parse(
            f"entity {index} ({kind}) ends at UTF-16 offset {offset + length}, "
            f"beyond the text of {size} UTF-16 code units"
        )
    needed = _REQUIRED.get(kind)
    if needed is not None and not entity.get(needed):
        raise cant_parse(f"field {needed!r} must be specified for a {kind} entity")
    if kind == "text_link" and not isinstance(entity["url"], str):
        raise cant_parse(f"field 'url' of entity {index} must be of type String")
    if kind == "pre" and entity.get("language") is not None:
        if not isinstance(entity["language"], str):
            raise cant_parse(f"field 'language' of entity {index} must be of type String")
    clean: Entity = {"type": kind, "offset": offset, "length": length}
    for name in _EXTRA_FIELDS:
        if entity.get(name) is not None:
            clean[name] = entity[name]
    return clean


def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip surrounding whitespace as Telegram does, keeping entities on the same characters."""
    stripped = text.lstrip()
    lead = utf16_len(text) - utf16_len(stripped)
    stripped = stripped.rstrip()
    size = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(size, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def finish(
    text: str, entities: list[Entity], *, caption: bool = False, allow_empty: bool = False
) -> tuple[str, list[Entity]]:
    """Trim, sort and cap entities, then refuse empty or over-long text as Telegram does."""
    text, entities = trim(text, entities)
    entities = sorted(entities, key=lambda e: (e["offset"], -e["length"]))[:MAX_ENTITIES]
    if not text and not (caption or allow_empty):
        raise bad_request("message text is empty")
    limit = MAX_CAPTION if caption else MAX_TEXT
    if utf16_len(text) > limit:
        raise bad_request("message caption is too long" if caption else "message is too long")
    return text, entities


_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}")


def detect_entities(text: str) -> list[Entity]:
    """The entities Telegram's servers add to a user's text: a leading command and mentions."""
    found: list[Entity] = []
    command = _COMMAND.match(text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for match in _MENTION.finditer(text):
        if command and match.start() < command.end():
            continue
        found.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return found
