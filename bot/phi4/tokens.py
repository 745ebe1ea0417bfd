"""How many tokens Phi-4-multimodal reads for a prompt: a fast estimate that errs high.

The window is counted in the model's tokens, which only the server's tokenizer knows; asking
it for every request would cost a round trip per turn. Text is instead estimated from how
many characters of each kind it holds, in one pass over its UTF-8 bytes made by C code
(`bytes.translate` and `bytes.count`), with weights calibrated on Phi-4's tokenizer family
(the 200k-entry o200k vocabulary) so that English, Russian, Chinese, code, Markdown and emoji
are never underestimated (`python -m bench.context` measures it). Images and audio cost what
Phi-4's processors make of them: 448-pixel crops of 256 tokens each plus a global view, and
12.5 tokens a second of sound.
"""

from __future__ import annotations

import io
import math
import string
import struct
from functools import lru_cache

from PIL import Image, UnidentifiedImageError

from bot.phi4.conversation import Attachment, Conversation, Turn

MESSAGE_TOKENS = 4
"""Per message: the role and end markers of the chat template, with a token to spare."""
ANSWER_PROMPT_TOKENS = 4
"""The `<|assistant|>` marker the server adds after the last message."""
MEDIA_MARKER_TOKENS = 3
"""The `<|image_1|>` / `<|audio_1|>` placeholder a server writes for each media part."""

_ALNUM, _DIGIT, _SPACE, _NEWLINE, _PUNCT, _LEAD2, _LEAD3, _LEAD4, _TAIL = range(9)


def _classes() -> bytes:
    """A byte → class table: ASCII by kind, and UTF-8 lead bytes by sequence length."""
    table = bytearray(256)
    for byte in range(256):
        char = chr(byte)
        if byte >= 0xF0:
            table[byte] = _LEAD4  # emoji and other astral characters
        elif byte >= 0xE0:
            table[byte] = _LEAD3  # CJK, most symbols, variation selectors, joiners
        elif byte >= 0xC0:
            table[byte] = _LEAD2  # Cyrillic, Greek, Latin with accents, Arabic, Hebrew
        elif byte >= 0x80:
            table[byte] = _TAIL
        elif char.isdigit():
            table[byte] = _DIGIT
        elif char.isalpha():
            table[byte] = _ALNUM
        elif char in "\r\n":
            table[byte] = _NEWLINE
        elif char in string.whitespace:
            table[byte] = _SPACE
        else:
            table[byte] = _PUNCT
    return bytes(table)


CLASSES = _classes()
WEIGHTS: dict[int, float] = {
    _ALNUM: 0.31,  # English prose ~4.7 letters a token, code ~3.8: the weight covers both
    _DIGIT: 0.60,  # numbers split in groups of up to three digits
    _NEWLINE: 0.10,  # runs of newlines and indentation merge into few tokens
    _PUNCT: 0.70,  # code and Markdown: most marks are tokens of their own
    _LEAD2: 0.37,  # Cyrillic ~3.3 characters a token
    _LEAD3: 1.00,  # Chinese and Japanese ~1.2 characters a token
    _LEAD4: 2.60,  # an emoji is one to three tokens
}
"""Tokens per character of each class, fitted on o200k counts and raised until no sample
was underestimated (the worst overestimate is about 30 %, on plain code)."""


def text_tokens(text: str) -> int:
    """Tokens of `text`, rounded up; the empty text costs nothing.

    Each answer re-sends the same history, so the estimates of recent texts are kept
    (`_estimate`'s cache): a turn is measured once, not once per answer.
    """
    if not text:
        return 0
    if len(text) < SHORT:
        return _measure(text)
    return _estimate(text)


SHORT = 64
"""Texts shorter than this are measured every time: caching them costs as much."""


@lru_cache(maxsize=8192)
def _estimate(text: str) -> int:
    return _measure(text)


def forget_estimates() -> None:
    """Empty the cache of estimates (to measure the cost of a history never seen before)."""
    _estimate.cache_clear()


def _measure(text: str) -> int:
    classes = text.encode("utf-8", "surrogatepass").translate(CLASSES)
    total = sum(weight * classes.count(kind) for kind, weight in WEIGHTS.items())
    return math.ceil(total)


CROP = 448
"""Phi-4's vision encoder reads 448×448 crops, 256 tokens each (32×32 patches pooled 2×2)."""
MAX_CROPS = 36
"""Phi-4-multimodal's `dynamic_hd`: an image is cut into at most this many crops."""
GLOBAL_VIEW_TOKENS = 256 + 16 + 1
"""The whole image at 448×448 (256 tokens and a newline token per row) and a separator."""
UNKNOWN_IMAGE_TOKENS = GLOBAL_VIEW_TOKENS + MAX_CROPS * 256 + 6 * 16
"""An image whose size cannot be read is counted at the most an image can cost."""


def image_tokens(data: bytes) -> int:
    """Tokens Phi-4 makes of an image: the global view, plus each crop and its row ends."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return UNKNOWN_IMAGE_TOKENS
    columns, rows = math.ceil(width / CROP), math.ceil(height / CROP)
    if columns * rows > MAX_CROPS:
        return UNKNOWN_IMAGE_TOKENS
    return GLOBAL_VIEW_TOKENS + columns * rows * 256 + rows * 16


AUDIO_TOKENS_PER_SECOND = 12.5
"""Phi-4's audio encoder: 10 ms frames, compressed 8 to 1."""
UNKNOWN_AUDIO_SECONDS = 30 * 60
"""Audio whose length cannot be read is counted as the longest Phi-4 takes (30 minutes)."""


def audio_seconds(data: bytes) -> float:
    """The length of a WAV file from its header and data size (the bot sends 16 kHz WAV)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return UNKNOWN_AUDIO_SECONDS
    channels: int
    rate: int
    bits: int
    channels, rate = struct.unpack_from("<HI", data, 22)
    (bits,) = struct.unpack_from("<H", data, 34)
    bytes_per_second = channels * rate * max(bits // 8, 1)
    if not bytes_per_second:
        return UNKNOWN_AUDIO_SECONDS
    return (len(data) - 44) / bytes_per_second


def audio_tokens(data: bytes) -> int:
    return math.ceil(audio_seconds(data) * AUDIO_TOKENS_PER_SECOND) + 1


def attachment_tokens(attachment: Attachment) -> int:
    """One media part, with the marker that stands for it in the prompt."""
    if attachment.mime_type.startswith("image/"):
        return image_tokens(attachment.data) + MEDIA_MARKER_TOKENS
    return audio_tokens(attachment.data) + MEDIA_MARKER_TOKENS


def media_tokens(turn: Turn) -> int:
    return sum(attachment_tokens(a) for a in turn.attachments)


def turn_tokens(turn: Turn) -> int:
    """One message: its text, its media and the template's markers."""
    return MESSAGE_TOKENS + text_tokens(turn.text) + media_tokens(turn)


def system_tokens(system_prompt: str | None) -> int:
    return MESSAGE_TOKENS + text_tokens(system_prompt) if system_prompt else 0


def prompt_tokens(conversation: Conversation) -> int:
    """The whole prompt as the server will count it, up to where the answer begins."""
    return (
        system_tokens(conversation.system_prompt)
        + sum(turn_tokens(t) for t in conversation.turns)
        + ANSWER_PROMPT_TOKENS
    )
