"""Which part of a conversation fits the model's window: the newest turns, whole.

The system prompt and the turn being answered are always sent. Older turns are added from
the newest back while they fit; when room runs out, the media of the oldest kept turns go
first (each becomes a short placeholder, so the model knows something was shown), then whole
turns. Nothing here touches stored history: a turn left out now is still in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.phi4.conversation import Conversation, Turn
from bot.phi4.errors import TurnTooLong
from bot.phi4.tokens import (
    ANSWER_PROMPT_TOKENS,
    MESSAGE_TOKENS,
    media_tokens,
    system_tokens,
    text_tokens,
)
from bot.shared import Sentence

PLACEHOLDERS = {"image": "[image]", "audio": "[audio]"}


@dataclass(frozen=True, slots=True)
class Fitted:
    """The conversation to send, and what fitting it cost."""

    conversation: Conversation
    tokens: int
    """The estimated prompt size."""
    turns_kept: int
    turns_given: int
    media_dropped: int


def answer_room(window: int, answer_tokens: int) -> int:
    """Tokens kept free for the answer: as asked, but never more than a quarter of a small
    window, so a 512-token server still sees some history."""
    return max(1, min(answer_tokens, window // 4))


def fit(conversation: Conversation, *, budget: int) -> Fitted:
    """The newest whole turns whose estimated prompt stays within `budget` tokens.

    Raises `TurnTooLong`, naming what to shorten, when the system prompt and the turn being
    answered alone exceed the budget.
    """
    turns = conversation.turns
    if not turns:
        return Fitted(conversation, ANSWER_PROMPT_TOKENS, 0, 0, 0)
    current = turns[-1]
    system = system_tokens(conversation.system_prompt)
    current_text = MESSAGE_TOKENS + text_tokens(current.text)
    current_media = media_tokens(current)
    used = system + current_text + current_media + ANSWER_PROMPT_TOKENS
    if used > budget:
        raise _too_long(current, system, current_text, current_media, budget)
    older = turns[:-1]
    first, cost = len(older), 0
    while first > 0:  # from the newest back, measuring only what is looked at
        cost = MESSAGE_TOKENS + text_tokens(_with_placeholders(older[first - 1]).text)
        if used + cost > budget:
            break
        first -= 1
        used += cost
    if first < len(older) and older[first].role == "assistant":
        used -= MESSAGE_TOKENS + text_tokens(_with_placeholders(older[first]).text)
        first += 1  # a conversation read by the model starts with a question
    kept = list(older[first:])
    media_dropped = 0
    for index in range(len(kept) - 1, -1, -1):  # media back from the newest while it fits
        turn = kept[index]
        if not turn.attachments:
            continue
        extra = media_tokens(turn) + text_tokens(turn.text) - text_tokens(_plain(turn).text)
        if used + extra <= budget:
            used += extra
        else:
            kept[index] = _plain(turn)
            media_dropped += len(turn.attachments)
    chosen = (*kept, current)
    fitted = Conversation(chosen, system_prompt=conversation.system_prompt)
    return Fitted(fitted, used, len(chosen), len(turns), media_dropped)


def _plain(turn: Turn) -> Turn:
    """The turn with its media replaced by placeholders."""
    return _with_placeholders(turn) if turn.attachments else turn


def _with_placeholders(turn: Turn) -> Turn:
    if not turn.attachments:
        return turn
    marks = " ".join(PLACEHOLDERS[a.kind] for a in turn.attachments)
    return Turn(turn.role, f"{turn.text} {marks}".strip())


def _too_long(current: Turn, system: int, text: int, media: int, budget: int) -> TurnTooLong:
    """The sentence names the biggest part of what does not fit."""
    detail = (
        f"the message alone needs ~{system + text + media} tokens "
        f"(system prompt {system}, text {text}, media {media}); {budget} fit"
    )
    if system > max(text, media):
        sentence = Sentence(
            "This chat's system prompt is too long for the model: shorten it with /system."
        )
    elif media > text:
        kinds = {a.kind for a in current.attachments}
        sentence = (
            Sentence("That recording is too long for the model: send a shorter one.")
            if kinds == {"audio"}
            else Sentence("That is too many images for the model: send fewer at a time.")
        )
    else:
        sentence = Sentence(
            "Your message is too long for the model: shorten its text and send it again."
        )
    return TurnTooLong(detail, user_message=sentence)
