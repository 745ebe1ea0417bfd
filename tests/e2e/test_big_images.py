"""Big photos cost bounded memory: six 36-megapixel photos at once, end to end.

The real `phi4bot run` downloads them from the fake Telegram, decodes at most
`PHI4BOT_DECODE_CONCURRENCY` at a time, each at a reduced scale, and gives the model (and the
database) an image whose longest side is `PHI4BOT_IMAGE_MAX_SIDE`.
"""

from __future__ import annotations

import asyncio

from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import StartBot
from tests.e2e.test_media import image_of, parts_of
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo

WIDTH, HEIGHT = 7360, 4912  # 36 megapixels, a full-frame camera's photo
PEAK_RSS_MIB = 400


def peak_rss_mib(bot: BotProcess) -> float:
    """The bot process's peak resident memory so far (VmHWM), in MiB."""
    assert bot.proc is not None
    with open(f"/proc/{bot.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


async def test_six_36_megapixel_photos_at_once_are_answered_scaled_in_bounded_memory(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    photos = await asyncio.gather(
        *(asyncio.to_thread(make_photo, WIDTH, HEIGHT, seed=n) for n in range(6))
    )
    model.answer = "A landscape."
    bot = await start_bot()
    print(f"RSS of the bot at start: {peak_rss_mib(bot):.0f} MiB")
    users = [tg.private_user(100 + n, f"User{n}") for n in range(6)]
    for user, photo in zip(users, photos, strict=True):
        tg.send_photo(user.chat, user, photo, caption="What is this?")
    await tg.wait_until(
        lambda: all(tg.text_of(u.id) == "A landscape." for u in users),
        timeout=90,
        what="six answers",
    )
    peak = peak_rss_mib(bot)
    print(f"peak RSS of the bot: {peak:.0f} MiB")
    sizes = [
        image_of(part).size
        for request in model.chat_requests
        for part in parts_of(request.json, "image_url")
    ]
    assert len(sizes) == 6
    for width, height in sizes:
        assert max(width, height) == 2048
        assert abs(width / height - WIDTH / HEIGHT) < 0.01, "the aspect ratio is kept"
    assert peak < PEAK_RSS_MIB, f"peak RSS {peak:.0f} MiB"
