"""DATABASE_URL parsing: SQLite paths and PostgreSQL URLs accepted, anything else refused in
one sentence, and passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import StorageError, database_engine, parse_database_url
from storage.url import MEMORY, redact


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
        database_engine("mysql://admin:hunter2@db.example/phi4bot")
    message = str(caught.value)
    assert "'mysql://'" in message
    assert "sqlite:///" in message
    assert "postgresql://" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("sqlite:///phi4bot.db", "sqlite"),
        ("postgresql://bot@db.example:5432/phi4bot", "postgresql"),
        ("postgres://bot:secret@db.example/phi4bot", "postgresql"),
        ("  PostgreSQL://bot@db.example/phi4bot?sslmode=require", "postgresql"),
    ],
)
def test_the_scheme_selects_the_engine(url: str, engine: str) -> None:
    assert database_engine(url) == engine


def test_a_postgresql_url_is_shown_without_password_or_options() -> None:
    url = "postgresql://bot:hunter2@db.example:5433/phi4bot?sslmode=require&password=x"
    assert redact(url) == "postgresql://bot@db.example:5433/phi4bot"
    assert redact("postgres://[::1]/phi4bot") == "postgres://[::1]/phi4bot"
    assert redact("sqlite:////var/lib/bot.db") == "sqlite:////var/lib/bot.db"


def test_a_postgresql_url_is_not_taken_for_a_sqlite_file() -> None:
    with pytest.raises(StorageError, match="PostgreSQL") as caught:
        parse_database_url("postgresql://admin:hunter2@db.example/phi4bot")
    assert "hunter2" not in str(caught.value)


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
