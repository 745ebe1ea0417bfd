"""The bot's own sentences in the reader's language: gettext catalogs with English as source.

A sentence is written in English where it is made — an error's `user_message`, a notice —
as a `Sentence`: a `str` holding the English text, which also remembers its msgid (the
English template) and the values filled into it. Code that only passes it along sees plain
English. Where the reader's language is known (the Telegram adapter), `translate` looks the
msgid up in that language's catalog under `locale/` and fills the values in again, so
translators see "{size}" once, not every size. A language without a catalog, or a sentence
missing from one, reads English. Adding a language is adding `locale/<code>/LC_MESSAGES/
phi4bot.po` and compiling it (`make messages`).
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "phi4bot"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"


class Sentence(str):
    """English text that can be shown in another language: `str(sentence)` is the English,
    `msgid` the catalog key and `params` the values for its `{placeholders}`."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Sentence:
        english = msgid.format(**params) if params else msgid
        sentence = super().__new__(cls, english)
        sentence.msgid = msgid
        sentence.params = params
        return sentence

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.msgid, self.params))


def N_(msgid: str) -> str:
    """Mark a template whose values are filled in later (`Sentence(TEMPLATE, name=...)`), so
    the catalog tools find it; returns it unchanged."""
    return msgid


def _rebuild(msgid: str, params: dict[str, Any]) -> Sentence:
    return Sentence(msgid, **params)


def language_of(code: str | None) -> str:
    """The catalog language for a Telegram `language_code` ("pt-br" → "pt"); English if
    none is known."""
    if not code:
        return SOURCE_LANGUAGE
    return code.replace("_", "-").split("-")[0].lower() or SOURCE_LANGUAGE


@cache
def _catalogs() -> dict[str, gettext.NullTranslations]:
    """Every compiled catalog, loaded once. Kept by the languages the bot speaks, not by the
    codes its readers' clients send, so what it holds cannot grow with odd codes."""
    return {
        language: gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
        for language in languages()
        if language != SOURCE_LANGUAGE
    }


def translate(text: str, language: str | None) -> str:
    """`text` in `language` (a Telegram language code); values that are sentences
    themselves are translated too. Text no catalog knows is returned as it is."""
    lang = language_of(language)
    catalog = _catalogs().get(lang)
    if catalog is None:  # English, or a language without a catalog
        return str(text)
    if not isinstance(text, Sentence):
        return catalog.gettext(text) if text else str(text)
    translated = catalog.gettext(text.msgid)
    if not text.params:
        return translated
    values = {
        name: translate(value, lang) if isinstance(value, Sentence) else value
        for name, value in text.params.items()
    }
    try:
        return translated.format(**values)
    except (KeyError, IndexError, ValueError):
        return str(text)  # a broken translation must not lose the sentence


def languages() -> list[str]:
    """Every language the bot speaks: English and each compiled catalog."""
    found = sorted(
        path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")
    )
    return [SOURCE_LANGUAGE, *(lang for lang in found if lang != SOURCE_LANGUAGE)]
