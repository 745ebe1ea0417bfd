"""The bot's own sentences in the user's language: complete catalogs, faithful translation."""

from __future__ import annotations

import gettext
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.conversation.errors import InputTooLong, QueueFull
from bot.phi4.errors import MediaNotSupported
from bot.shared.i18n import DOMAIN, LOCALE_DIR, Sentence, language_of, languages, translate

ROOT = Path(__file__).resolve().parents[3]
COMPLETE = ["ru"]  # languages every sentence must be translated into
PLACEHOLDER = re.compile(r"{(\w*)}")


def sentences_in_the_code() -> set[str]:
    found = extract_from_dir(
        str(ROOT / "bot"), keywords={"Sentence": None, "N_": None}, comment_tags=()
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def catalog(language: str, suffix: str = "po") -> dict[str, str]:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.{suffix}"
    with path.open("rb") as file:
        read = read_po(file) if suffix == "po" else read_mo(file)
    return {
        m.id: m.string
        for m in read
        if m.id and not m.fuzzy and isinstance(m.id, str) and isinstance(m.string, str)
    }


def test_the_template_holds_exactly_the_sentences_in_the_code() -> None:
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as file:
        template = {m.id for m in read_po(file) if m.id}
    assert template == sentences_in_the_code(), "run `make messages`"


@pytest.mark.parametrize("language", COMPLETE)
def test_every_sentence_is_translated(language: str) -> None:
    translated = catalog(language)
    missing = sorted(s for s in sentences_in_the_code() if not translated.get(s))
    assert missing == [], f"untranslated into {language}; run `make messages` and translate"


@pytest.mark.parametrize("language", COMPLETE)
def test_the_compiled_catalog_is_the_source_catalog(language: str) -> None:
    assert catalog(language, "mo") == catalog(language), "run `make messages` to compile"


@pytest.mark.parametrize("language", COMPLETE)
def test_translations_keep_every_placeholder(language: str) -> None:
    for msgid, msgstr in catalog(language).items():
        assert sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(msgid)), msgid


def test_the_catalogs_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["bot.shared"]
    shipped = {p for pattern in patterns for p in LOCALE_DIR.parent.glob(pattern)}
    assert set(LOCALE_DIR.glob("*/LC_MESSAGES/*.mo")) <= shipped
    assert "ru" in languages() and languages()[0] == "en"


def test_a_sentence_is_english_text_that_translates_with_its_values() -> None:
    too_long = InputTooLong(
        Sentence(
            "That message is {length} characters long; I read at most {most}.",
            length=9000,
            most=8000,
        )
    )
    assert too_long.user_message == "That message is 9000 characters long; I read at most 8000."
    assert translate(too_long.user_message, "ru") == (
        "В этом сообщении 9000 символов; я читаю не больше 8000."
    )
    assert translate(QueueFull().user_message, "ru-RU").startswith("Я ещё отвечаю")


def test_values_that_are_sentences_are_translated_too() -> None:
    problem = MediaNotSupported.refusing(frozenset({"audio"}), frozenset({"image"}))
    assert problem.user_message == "This model takes text and images, not audio."
    assert translate(problem.user_message, "ru") == (
        "Эта модель принимает текст и изображения, но не аудио."
    )


def test_unknown_languages_and_unknown_text_read_as_written() -> None:
    sentence = Sentence("⏹ Stopped.")
    assert translate(sentence, None) == translate(sentence, "de") == "⏹ Stopped."
    assert translate("answer text from the model", "ru") == "answer text from the model"
    assert translate("⏹ Stopped.", "ru") == "⏹ Остановлено.", "plain English is its own msgid"
    assert language_of("pt-br") == "pt" and language_of(None) == "en"


def test_language_codes_without_a_catalog_cost_no_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers' clients may send any code; only the catalogs the bot has are ever loaded, so
    a flood of odd codes leaves nothing behind."""
    loaded: list[str] = []
    load = gettext.translation

    def counting(*args: Any, **kwargs: Any) -> gettext.NullTranslations:
        loaded.extend(kwargs.get("languages") or [])
        return load(*args, **kwargs)

    monkeypatch.setattr(gettext, "translation", counting)
    for n in range(300):
        assert translate(Sentence("⏹ Stopped."), f"x{n}-odd") == "⏹ Stopped."
    assert translate(Sentence("⏹ Stopped."), "ru") == "⏹ Остановлено."
    assert set(loaded) <= set(languages()), loaded[:5]
