"""URLs shown anywhere hide their credentials; the secrets they carry are found for the log."""

from __future__ import annotations

from bot.shared.urls import display_url, url_secrets


def test_user_info_is_dropped_and_secret_query_values_masked() -> None:
    url = "https://u:p%40ss@gpu1:8000/v1/?api-version=2024-05&api-key=abc%2Fdef#frag"
    assert display_url(url) == "https://gpu1:8000/v1?api-version=2024-05&api-key=***"


def test_every_url_of_a_list_is_shown_safely() -> None:
    shown = display_url("http://a:b@gpu1/v1, http://gpu2/v1?access_token=t0ken")
    assert shown == "http://gpu1/v1,http://gpu2/v1?access_token=***"


def test_a_plain_url_and_a_sqlite_path_are_shown_as_they_are() -> None:
    assert display_url("https://api.telegram.org") == "https://api.telegram.org"
    assert display_url("sqlite:////var/lib/bot.db") == "sqlite:////var/lib/bot.db"
    assert display_url("phi4bot.db") == "phi4bot.db"


def test_the_secrets_of_a_url_are_found_as_written_and_decoded() -> None:
    found = url_secrets("postgresql://bot:p%40ss-word@db/phi4bot?sslmode=require&sig=s1gnature")
    assert set(found) == {"bot:p%40ss-word", "p%40ss-word", "p@ss-word", "s1gnature"}


def test_a_user_name_alone_is_no_secret() -> None:
    assert url_secrets("postgresql://postgres@127.0.0.1:5432/test") == []
    assert url_secrets("https://models.github.ai/inference?api-version=1") == []
