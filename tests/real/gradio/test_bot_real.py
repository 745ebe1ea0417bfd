"""`phi4bot run` with the Space backend pointed at real Gradio 5 and 6 servers.

What a Telegram user sends (an album, a voice note, follow-up questions) must reach the
Space's answer function once per file, and no queue notice may appear when nobody waits.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StartBot
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_ogg_opus, make_png
from tests.real.gradio.server import GradioServer


def answered(tg: FakeTelegram, count: int) -> bool:
    """Whether the bot's `count`-th reply holds the whole summary (it ends in "texts")."""
    messages = tg.messages(42)
    return len(messages) >= count and messages[count - 1].text.endswith(" texts")


pytestmark = pytest.mark.timeout(900)


async def test_album_voice_note_and_follow_up_each_reach_the_space_once(
    gradio_server: GradioServer, tg: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=gradio_server.url)
    alice = tg.private_user(42, "Alice")
    for n, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        caption = "#summary compare these" if n == 0 else None
        tg.send_photo(
            alice.chat, alice, make_png(40 + n, 30, color), caption=caption, media_group_id="a1"
        )
    await tg.wait_until(lambda: answered(tg, 1), timeout=60)
    assert tg.messages(42)[-1].text.startswith(
        "summary: 2 files, 2 images, 0 other, each at most 1 times"
    )

    tg.send_voice(alice.chat, alice, make_ogg_opus(2.0), duration=2)
    await tg.wait_until(lambda: answered(tg, 2), timeout=60)
    assert tg.messages(42)[1].text.startswith("summary: 3 files, 2 images, 1 other, each at most 1")

    tg.send_text(alice.chat, alice, "And all of it again?")
    await tg.wait_until(lambda: answered(tg, 3), timeout=60)
    assert tg.messages(42)[2].text.startswith("summary: 3 files, 2 images, 1 other, each at most 1")
    shown = [text for message in tg.messages(42) for _, text in message.history]
    assert not any("queue" in text.lower() for text in shown), shown
