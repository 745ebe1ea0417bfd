"""Allow-lists, admins and the per-user rate limit."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.conversation.access import AccessPolicy, UserRateLimiter
from bot.conversation.errors import RateLimited


def test_empty_lists_let_everyone_in() -> None:
    policy = AccessPolicy(frozenset(), frozenset(), frozenset())
    assert policy.user_allowed(5, 5, private=True)
    assert policy.user_allowed(5, -100, private=False)


def test_allowed_users_limit_private_chats_and_groups() -> None:
    policy = AccessPolicy(frozenset({1}), frozenset(), frozenset({9}))
    assert policy.user_allowed(1, 1, private=True)
    assert not policy.user_allowed(2, 2, private=True)
    assert not policy.user_allowed(2, -100, private=False)
    assert policy.user_allowed(9, 9, private=True)  # admins always


def test_a_listed_group_is_open_to_all_its_members() -> None:
    policy = AccessPolicy(frozenset({1}), frozenset({-100}), frozenset())
    assert policy.user_allowed(2, -100, private=False)
    assert not policy.chat_allowed(-200, private=False)
    assert not policy.user_allowed(1, -200, private=False)
    assert policy.chat_allowed(1, private=True)


def test_settings_parse_comma_separated_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHI4BOT_ALLOWED_USERS", "1, 2,3")
    monkeypatch.setenv("PHI4BOT_ADMINS", "")
    monkeypatch.setenv("PHI4BOT_GROUP_ADMIN_ONLY", "/system,new")
    settings = Settings(_env_file=None)
    assert settings.allowed_users == {1, 2, 3}
    assert settings.admins == frozenset()
    assert settings.group_admin_only == {"system", "new"}


def test_rate_limiter_refuses_the_request_over_the_limit_then_recovers() -> None:
    now = [0.0]
    limiter = UserRateLimiter(2, clock=lambda: now[0])
    limiter.check(1)
    limiter.check(1)
    with pytest.raises(RateLimited, match="Try again in"):
        limiter.check(1)
    limiter.check(2)
    now[0] = 61.0
    limiter.check(1)


def test_rate_limiter_is_off_at_zero() -> None:
    limiter = UserRateLimiter(0)
    for _ in range(1000):
        limiter.check(1)
