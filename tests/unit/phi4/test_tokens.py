"""The token estimate errs high, never low, against the tokenizer of Phi-4's family."""

from __future__ import annotations

from pathlib import Path

import pytest
import quicktok

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.tokens import (
    UNKNOWN_AUDIO_SECONDS,
    UNKNOWN_IMAGE_TOKENS,
    audio_tokens,
    image_tokens,
    prompt_tokens,
    text_tokens,
)
from tests.media_factory import make_jpeg, make_png, make_wav

ROOT = Path(__file__).parents[3]
SAMPLES = sorted((ROOT / "bench" / "samples").glob("*.txt"))
O200K = quicktok.get_encoding("o200k_base")


def real(text: str) -> int:
    return len(O200K.encode(text))


def test_there_are_samples_of_each_script() -> None:
    assert {p.stem for p in SAMPLES} >= {"english", "russian", "code", "emoji", "chinese"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_text_is_never_underestimated_and_rarely_by_much_over(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ratio = text_tokens(text) / real(text)
    assert 1.0 <= ratio <= 1.4, ratio


@pytest.mark.parametrize(
    "source", ["README.md", "bot/conversation/pipeline.py", "bot/shared/locale/phi4bot.pot"]
)
def test_markdown_code_and_catalogs_of_this_project_are_not_underestimated(source: str) -> None:
    text = (ROOT / source).read_text(encoding="utf-8")
    assert text_tokens(text) >= 0.97 * real(text)


def test_numbers_and_json_are_not_underestimated() -> None:
    numbers = " ".join(str(n * 7919) for n in range(2000))
    listing = str({f"key{n}": [n, n * 2.5, "value"] for n in range(300)})
    for text in (numbers, listing):
        assert text_tokens(text) >= real(text)


def test_empty_text_costs_nothing() -> None:
    assert text_tokens("") == 0


def test_an_image_costs_at_least_what_phi4_makes_of_it() -> None:
    # vLLM's Phi4MMProcessingInfo.get_num_image_tokens: 448x448 -> 545, 1000x600 -> 1694
    assert image_tokens(make_png(448, 448)) == 545
    assert 1694 <= image_tokens(make_jpeg(1000, 600)) <= 1.1 * 1694


def test_an_unreadable_or_enormous_image_costs_the_most_an_image_can() -> None:
    assert image_tokens(b"not an image") == UNKNOWN_IMAGE_TOKENS
    assert image_tokens(make_png(448 * 7, 448 * 6)) == UNKNOWN_IMAGE_TOKENS


def test_audio_costs_twelve_and_a_half_tokens_a_second() -> None:
    # Phi-4: (samples - 400) // 160 + 1 frames, 8 frames a token -> 13 for 1 s, 125 for 10 s
    assert 13 <= audio_tokens(make_wav(1.0)) <= 15
    assert 125 <= audio_tokens(make_wav(10.0)) <= 128
    assert audio_tokens(b"OggS not a wav") >= UNKNOWN_AUDIO_SECONDS * 12.5


def test_a_prompt_counts_the_system_prompt_every_turn_and_its_media() -> None:
    photo = Attachment(make_png(448, 448), "image/png", "p.png")
    bare = Conversation((Turn("user", "hello"),))
    with_system = Conversation((Turn("user", "hello"),), system_prompt="Be brief.")
    with_photo = Conversation((Turn("user", "hello", (photo,)),))
    assert prompt_tokens(bare) < prompt_tokens(with_system)
    assert prompt_tokens(with_photo) >= prompt_tokens(bare) + 545
