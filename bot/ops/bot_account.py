"""What `getMe` says about the bot's Telegram account, for `phi4bot check`: who the bot is
and whether guest mode (being summoned in chats it is not a member of) is switched on."""

from __future__ import annotations

import aiohttp

TIMEOUT = 10.0
GUEST_OFF_HINT = "switch it on in @BotFather to be summoned in any chat"


async def describe_bot_account(api_url: str, token: str, *, timeout: float = TIMEOUT) -> str:
    """One line: `@username; guest mode: on|off|not reported`, or why Telegram was not
    reached. Never raises: the model check goes on either way. The caller masks the token."""
    url = f"{api_url}/bot{token}/getMe"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            body = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return f"not reached ({type(exc).__name__}: {exc})"
    if not isinstance(body, dict) or not body.get("ok"):
        description = body.get("description") if isinstance(body, dict) else None
        return f"refused ({description or response.status})"
    me = body.get("result") or {}
    guests = me.get("supports_guest_queries")
    if guests is None:
        mode = "not reported"
    else:
        mode = "on" if guests else f"off ({GUEST_OFF_HINT})"
    return f"@{me.get('username')}; guest mode: {mode}"
