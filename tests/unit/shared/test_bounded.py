"""A bounded map holds at most its capacity, forgets the oldest write first, and expires."""

from __future__ import annotations

import pytest

from bot.shared.bounded import BoundedDict


def test_a_million_keys_leave_only_the_newest_capacity() -> None:
    seen: BoundedDict[int, int] = BoundedDict(1000)
    for n in range(1_000_000):
        seen[n] = n
    assert len(seen) == 1000
    assert 999_000 in seen and 998_999 not in seen


def test_the_least_recently_written_goes_first() -> None:
    seen: BoundedDict[str, int] = BoundedDict(2)
    seen["a"], seen["b"] = 1, 2
    seen["a"] = 3  # written again: now the newest
    seen["c"] = 4
    assert list(seen) == ["a", "c"]
    assert seen["a"] == 3 and seen.get("b") is None


def test_entries_not_written_for_the_ttl_expire() -> None:
    now = [0.0]
    seen: BoundedDict[str, int] = BoundedDict(10, ttl=60.0, clock=lambda: now[0])
    seen["old"] = 1
    now[0] += 30.0
    seen["new"] = 2
    now[0] += 30.0
    assert "old" not in seen and seen["new"] == 2
    assert len(seen) == 1


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        BoundedDict(0)
