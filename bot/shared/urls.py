"""URLs as they may be shown anywhere, and the secrets a configured URL carries.

An operator may put credentials in any URL the bot is given: `user:password@` in
`OPENAI_BASE_URL` or `DATABASE_URL`, `?api-key=...` on an Azure endpoint, a proxy login in
`TELEGRAM_API_URL`. Every URL the bot shows — in the log, `phi4bot check`, `/readyz`, an
admin's notice, a metric label, an error — goes through `display_url`, and the values
`url_secrets` finds join the secrets the log masks, so a URL that escapes `display_url`
(inside a library's error text, say) is still masked.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

MASK = "***"

_SECRET_NAME = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential", re.IGNORECASE)
"""Query parameter names whose values are secrets (`api-key`, `access_token`, `sig`, ...)."""


def secret_parameter(name: str) -> bool:
    """Whether a query parameter of this name carries a secret value."""
    return _SECRET_NAME.search(name) is not None


def display_url(url: str) -> str:
    """`url` fit to be shown: no `user:password@`, secret-looking query values masked, no
    fragment, no trailing slash; each of several comma-separated URLs alike.

    `https://u:p@gpu1:8000/v1?api-version=1&api-key=abc` becomes
    `https://gpu1:8000/v1?api-version=1&api-key=***`.
    """
    if "," in url:
        return ",".join(display_url(part.strip()) for part in url.split(","))
    parts = urlsplit(url.strip())
    if not parts.netloc:
        return url.strip()  # a path (`sqlite:////data/bot.db`) or a name: nothing hides in it
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{quote(name, safe='-_.')}={MASK if secret_parameter(name) else quote(value, safe='')}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), query, ""))


def url_secrets(url: str) -> list[str]:
    """The secret values in `url` (and in each of several comma-separated URLs), as written
    and decoded: a password with its user info, and secret-looking query values."""
    found: list[str] = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        userinfo = parts.netloc.rpartition("@")[0]
        password = userinfo.partition(":")[2]
        if password:  # a user name alone is no secret, and masking it would change words
            found += [userinfo, password, unquote(password)]
        for raw in parts.query.split("&"):
            name, _, value = raw.partition("=")
            if value and secret_parameter(unquote(name)):
                found += [value, unquote(value)]
    return list(dict.fromkeys(s for s in found if s))
