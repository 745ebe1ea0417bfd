"""Allow-lists, admins and the per-user rate limit."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.conversation.access import REMEMBERED_USERS, AccessPolicy, UserRateLimiter
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


def test_the_limiter_remembers_only_users_of_the_last_minute_and_at_most_its_cap() -> None:
    now = [0.0]
    limiter = UserRateLimiter(20, clock=lambda: now[0])
    for user in range(REMEMBERED_USERS + 5_000):
        limiter.check(user)
    assert len(limiter._seen) == REMEMBERED_USERS
    now[0] = 61.0
    limiter.check(1)
    assert len(limiter._seen) == 1, "users quiet for a minute are forgotten"


def test_the_per_user_rate_is_on_by_default() -> None:
    assert Settings(_env_file=None).user_rate_per_minute == 20


def test_allowed_chats_without_allowed_users_is_a_mistake_named_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHI4BOT_ALLOWED_CHATS", "-100")
    mistake = Settings(_env_file=None).access_mistake()
    assert mistake is not None and "set PHI4BOT_ALLOWED_USERS" in mistake.replace("Set", "set")
    monkeypatch.setenv("PHI4BOT_ALLOWED_USERS", "1")
    assert Settings(_env_file=None).access_mistake() is None
