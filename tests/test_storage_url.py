"""DATABASE_URL parsing: SQLite paths accepted, anything else refused in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import StorageError, parse_database_url
from storage.url import MEMORY


def test_default_url_is_a_file_relative_to_the_working_directory() -> None:
    assert parse_database_url("sqlite:///phi4bot.db") == Path("phi4bot.db")


def test_relative_path_keeps_its_folders() -> None:
    assert parse_database_url("sqlite:///data/chats/bot.db") == Path("data/chats/bot.db")


def test_four_slashes_make_an_absolute_path() -> None:
    assert parse_database_url("sqlite:////var/lib/phi4bot/bot.db") == Path(
        "/var/lib/phi4bot/bot.db"
    )


def test_percent_escapes_are_decoded() -> None:
    assert parse_database_url("sqlite:////srv/my%20bot.db") == Path("/srv/my bot.db")


def test_memory_database_is_allowed() -> None:
    assert parse_database_url("sqlite:///:memory:") == MEMORY


def test_other_database_is_refused_without_echoing_credentials() -> None:
    with pytest.raises(StorageError) as caught:
        parse_database_url("postgresql://admin:hunter2@db.example/phi4bot")
    message = str(caught.value)
    assert "'postgresql://'" in message
    assert "sqlite:///" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    ["phi4bot.db", "sqlite://host/phi4bot.db", "sqlite:phi4bot.db", "sqlite:///", "sqlite:///dir/"],
)
def test_malformed_sqlite_urls_are_refused(url: str) -> None:
    with pytest.raises(StorageError, match="DATABASE_URL"):
        parse_database_url(url)


def test_query_options_are_refused_rather_than_silently_ignored() -> None:
    with pytest.raises(StorageError, match=r"without \?options"):
        parse_database_url("sqlite:///bot.db?mode=ro")
