"""Delivery of pending updates to the webhook set with setWebhook, one at a time, in order.

Like Telegram, an update counts as delivered only when the bot's server answers 2xx; any
other answer (or no answer) is recorded in getWebhookInfo's `last_error_message` and the
same update is tried again after a short back-off.
"""

from __future__ import annotations

import asyncio

import aiohttp

from .state import World

RETRY_AFTER_ERROR = 0.2
TIMEOUT = aiohttp.ClientTimeout(total=30)


async def push_updates(world: World) -> None:
    """Run until cancelled: POST each pending update to the webhook while one is set (or in
    turn to the URLs of `world.webhook_spread`, like a load balancer)."""
    turn = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        while True:
            changed = world.changed
            url = str(world.webhook.get("url") or "")
            if url and world.webhook_spread:
                url = world.webhook_spread[turn % len(world.webhook_spread)]
                turn += 1
            batch = world.updates.take(1) if url else []
            if not batch:
                await changed.wait()
                continue
            update = batch[0]
            headers: dict[str, str] = {}
            secret = world.webhook.get("secret_token")
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = str(secret)
            error = await _post(session, url, update, headers)
            if error is None:
                world.webhook_deliveries[url] += 1
                world.updates.confirm(update["update_id"] + 1)
                world.webhook.pop("last_error_message", None)
                world.notify()
                continue
            world.webhook["last_error_message"] = error
            world.webhook["last_error_date"] = int(world.wall_clock())
            world.notify()
            await asyncio.sleep(RETRY_AFTER_ERROR)  # back-off before retrying, as Telegram does


async def _post(
    session: aiohttp.ClientSession, url: str, update: dict[str, object], headers: dict[str, str]
) -> str | None:
    """None when the bot accepted the update, else Telegram-style error text."""
    try:
        async with session.post(url, json=update, headers=headers) as response:
            if 200 <= response.status < 300:
                return None
            return f"Wrong response from the webhook: {response.status} {response.reason}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"Connection failed: {exc.__class__.__name__}"
