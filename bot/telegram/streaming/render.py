"""Markdown to Telegram text with entities, cut into pieces that fit one message each."""

from __future__ import annotations

import bisect
import datetime as dtm
import logging
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

import telegramify_markdown
from telegram import MessageEntity, User

log = logging.getLogger(__name__)

TELEGRAM_LIMIT = 4096
# Telegram honours the first 100 entities of a message and silently drops the rest.
MAX_ENTITIES = 100
CODE_TYPES = frozenset({MessageEntity.PRE, MessageEntity.CODE})
# Ways to cut, best first: a paragraph break, a line break, a space.
_SEPARATORS = ("\n\n", "\n", " ")
_ZWJ = "\u200d"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Telegram limit and entity offset."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, eq=False)
class RenderedText:
    """Message text plus entities (UTF-16 offsets), exactly as it is sent to Telegram.

    Equality compares every entity field (url, language, ...), unlike `MessageEntity`'s own
    equality, so "would this edit change the message?" has a truthful answer.
    """

    text: str
    entities: tuple[MessageEntity, ...] = ()

    @cached_property
    def utf16_len(self) -> int:
        return utf16_len(self.text)

    @cached_property
    def signature(self) -> tuple[object, ...]:
        return (self.text, tuple(_entity_key(e) for e in self.entities))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RenderedText):
            return NotImplemented
        return self.signature == other.signature

    def __hash__(self) -> int:
        return hash(self.signature)

    def without_entities(self) -> RenderedText:
        """The same text unformatted, for when Telegram refuses the entities."""
        return RenderedText(self.text)


def _entity_key(entity: MessageEntity) -> tuple[object, ...]:
    user = entity.user.id if entity.user is not None else None
    return (
        entity.type,
        entity.offset,
        entity.length,
        entity.url,
        entity.language,
        entity.custom_emoji_id,
        user,
        entity.date_time_format,
        entity.unix_time,
    )


def plain(text: str) -> RenderedText:
    """Text shown as is; trimmed, because Telegram trims every message the same way."""
    return RenderedText(_valid_unicode(text).strip())


def italic(text: str) -> RenderedText:
    """A whole text in italics, for notes such as "⏹ Stopped."."""
    stripped = _valid_unicode(text).strip()
    if not stripped:
        return RenderedText("")
    return RenderedText(stripped, (MessageEntity(MessageEntity.ITALIC, 0, utf16_len(stripped)),))


def render_markdown(md: str) -> RenderedText:
    """Convert (possibly unfinished) Markdown; never raises, so a stream can always be shown.

    The result is trimmed of surrounding whitespace with entities shifted to match, which is
    what Telegram does to a message anyway: the text sent is the text shown.
    """
    md = _valid_unicode(md)
    try:
        text, raw = telegramify_markdown.convert(md)
        entities = [_to_ptb(entity) for entity in raw]
    except Exception:
        log.warning("Markdown conversion failed; showing plain text", exc_info=True)
        return plain(md)
    return _trim(text, entities)


def join(first: RenderedText, second: RenderedText, separator: str = "\n\n") -> RenderedText:
    """`first`, `separator`, `second` as one text; the separator is left out if one is empty."""
    if not first.text:
        return second
    if not second.text:
        return first
    shift = first.utf16_len + utf16_len(separator)
    moved = tuple(
        _moved(entity, entity.offset + shift, entity.length) for entity in second.entities
    )
    return RenderedText(first.text + separator + second.text, first.entities + moved)


def split_for_telegram(
    rendered: RenderedText, limit: int = TELEGRAM_LIMIT, max_entities: int = MAX_ENTITIES
) -> list[RenderedText]:
    """Cut `rendered` into pieces of at most `limit` UTF-16 units and at most `max_entities`
    entities, one Telegram message each (Telegram ignores entities past the 100th).

    Whitespace rule: every piece is a slice of `rendered.text.strip()` with no whitespace at
    either end, and the slices follow each other so that only whitespace lies between two
    neighbours — the whole whitespace run at the cut, which is dropped (Telegram would trim it
    anyway). So `rendered.text.strip()` equals the pieces joined with the runs that separated
    them: a cut at a paragraph break drops "\\n\\n", at a line break "\\n", at a word " ", and a
    hard cut inside a word drops nothing. Text of whitespace only gives no pieces at all.
    A hard cut never tears a character apart (surrogate pair, combining mark, emoji sequence).

    A cut is the latest paragraph break in the piece, else line break, else space, else a hard
    cut at the limit; cuts that fill at least half a piece win over better kinds of cut that do
    not, and cuts outside `pre`/`code` entities win over cuts inside them. A code block longer
    than a piece is cut at its line breaks and every part keeps its own clipped `pre` entity
    with the same language. Entities are clipped to their piece and shifted; none is empty.
    A piece that would hold more than `max_entities` entities ends before the first one too
    many begins (with the same choice of cut inside that shorter window).
    """
    if limit < 2:
        raise ValueError("a piece must hold at least 2 UTF-16 units (one astral character)")
    text = rendered.text
    end = len(text.rstrip())
    start = len(text) - len(text.lstrip()) if end else 0
    few_entities = len(rendered.entities) <= max_entities
    if start == 0 and end == len(text) and rendered.utf16_len <= limit and few_entities:
        return [rendered] if text else []
    units = _Units(text)
    code = _CodeSpans(rendered.entities)
    counted = _EntityBudget(rendered.entities, max_entities)
    pieces: list[RenderedText] = []
    while start < end:
        window = units.last_fitting(start, limit)
        bound = counted.first_too_many(units.at(start))
        if bound is not None:
            window = min(window, max(start + 1, units.index_at(bound)))
        if window >= end:
            stop, resume = end, end
        else:
            stop, resume = _choose_cut(text, start, window, units, code)
        pieces.append(
            _piece(rendered, units.at(start), units.at(stop), text[start:stop], max_entities)
        )
        start = resume
    return pieces


class _Units:
    """UTF-16 offsets of every string index; pure-ASCII text needs no table."""

    def __init__(self, text: str) -> None:
        self._table: list[int] | None = None
        if not text.isascii():
            widths = (2 if ord(ch) > 0xFFFF else 1 for ch in text)
            self._table = list(accumulate(widths, initial=0))

    def at(self, index: int) -> int:
        return index if self._table is None else self._table[index]

    def index_at(self, unit: int) -> int:
        """The string index where UTF-16 offset `unit` falls (rounded down)."""
        if self._table is None:
            return unit
        return max(0, bisect.bisect_right(self._table, unit) - 1)

    def last_fitting(self, start: int, limit: int) -> int:
        """The largest index whose distance from `start` is at most `limit` units."""
        if self._table is None:
            return start + limit
        return max(start + 1, bisect.bisect_right(self._table, self._table[start] + limit) - 1)


class _EntityBudget:
    """Where a piece must end so that it carries at most `most` entities."""

    def __init__(self, entities: tuple[MessageEntity, ...], most: int) -> None:
        self._spans = sorted((e.offset, e.offset + e.length) for e in entities)
        self._most = most

    def first_too_many(self, first: int) -> int | None:
        """The UTF-16 offset where the entity one too many begins, for a piece starting at
        `first`; None when the rest of the text holds few enough. Entities that began
        earlier and reach into the piece count as well."""
        if len(self._spans) <= self._most:
            return None
        carried = sum(1 for begin, end in self._spans if begin < first < end)
        index = bisect.bisect_left(self._spans, (first, -1))
        room = self._most - carried
        if index + room >= len(self._spans):
            return None
        return max(first + 1, self._spans[index + max(room, 0)][0])


class _CodeSpans:
    """Where `pre` and `code` entities lie, to keep cuts out of them when possible."""

    def __init__(self, entities: tuple[MessageEntity, ...]) -> None:
        spans = sorted((e.offset, e.offset + e.length) for e in entities if e.type in CODE_TYPES)
        self._starts = [begin for begin, _ in spans]
        self._reach = list(accumulate((end for _, end in spans), max))

    def touch(self, gap_start: int, gap_end: int) -> bool:
        """Whether code covers the cut [gap_start, gap_end) or reaches into it.

        A span does when it starts before the gap ends and ends after the gap starts (for a
        cut of zero width: when it starts before and ends after the cut).
        """
        index = bisect.bisect_left(self._starts, max(gap_start, gap_end))
        return index > 0 and self._reach[index - 1] > gap_start


def _choose_cut(
    text: str, start: int, window_end: int, units: _Units, code: _CodeSpans
) -> tuple[int, int]:
    """(end of this piece, start of the next) for a piece starting at `start`."""
    half = (units.at(start) + units.at(window_end)) // 2
    outside = [_latest_cut(text, sep, start, window_end, units, code) for sep in _SEPARATORS]
    anywhere = [_latest_cut(text, sep, start, window_end, units, None) for sep in _SEPARATORS[1:]]
    for group in (outside, anywhere):
        found = [cut for cut in group if cut is not None]
        for cut in found:
            if units.at(cut[0]) >= half:
                return cut
        if found:
            return found[0]
    end = window_end
    while end > start + 1 and (_joins_previous(text[end]) or text[end - 1] == _ZWJ):
        end -= 1
    stop = end
    while stop > start + 1 and text[stop - 1].isspace():
        stop -= 1
    return stop, _skip_space(text, end)


def _joins_previous(char: str) -> bool:
    """Whether cutting before `char` would tear a visible character apart."""
    if char in "\u200d\ufe0e\ufe0f" or 0x1F3FB <= ord(char) <= 0x1F3FF:  # ZWJ, VS, skin tone
        return True
    return unicodedata.combining(char) > 0


def _latest_cut(
    text: str,
    separator: str,
    start: int,
    window_end: int,
    units: _Units,
    code: _CodeSpans | None,
) -> tuple[int, int] | None:
    """The latest whitespace run containing `separator` that ends a non-empty piece in time."""
    search_end = window_end + len(separator)
    while True:
        found = text.rfind(separator, start + 1, search_end)
        if found < 0:
            return None
        stop = found
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop == start:
            return None
        resume = _skip_space(text, found)
        if code is None or not code.touch(units.at(stop), units.at(resume)):
            return stop, resume
        search_end = stop


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _piece(rendered: RenderedText, first: int, stop: int, text: str, most: int) -> RenderedText:
    """The slice [first, stop) (in UTF-16 units) with its entities clipped and shifted.

    More than `most` entities remain only when they are stacked on one character; the
    first `most` of them are kept, as Telegram would."""
    entities = []
    for entity in rendered.entities:
        begin = max(entity.offset, first)
        end = min(entity.offset + entity.length, stop)
        if end > begin:
            entities.append(_moved(entity, begin - first, end - begin))
    return RenderedText(text, tuple(entities[:most]))


def _trim(text: str, entities: list[MessageEntity]) -> RenderedText:
    stripped = text.lstrip()
    lead = utf16_len(text[: len(text) - len(stripped)])
    stripped = stripped.rstrip()
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        begin = max(0, entity.offset - lead)
        end = min(size, entity.offset + entity.length - lead)
        if end > begin:
            kept.append(_moved(entity, begin, end - begin))
    return RenderedText(stripped, tuple(kept))


def _moved(entity: MessageEntity, offset: int, length: int) -> MessageEntity:
    if entity.offset == offset and entity.length == length:
        return entity
    return MessageEntity(
        entity.type,
        offset,
        length,
        url=entity.url,
        user=entity.user,
        language=entity.language,
        custom_emoji_id=entity.custom_emoji_id,
        date_time_format=entity.date_time_format,
        unix_time=entity.unix_time,
    )


def _to_ptb(entity: telegramify_markdown.MessageEntity) -> MessageEntity:
    user = User.de_json(entity.user, None) if isinstance(entity.user, dict) else None
    when = None
    if entity.unix_time is not None:
        when = dtm.datetime.fromtimestamp(entity.unix_time, tz=dtm.UTC)
    return MessageEntity(
        entity.type,
        entity.offset,
        entity.length,
        url=entity.url,
        user=user,
        language=entity.language,
        custom_emoji_id=entity.custom_emoji_id,
        date_time_format=entity.date_time_format,
        unix_time=when,
    )


def _valid_unicode(text: str) -> str:
    """Replace lone surrogates, which no Telegram request can carry."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")
