"""Reads /transcribe and /translate into turns: a speech instruction and the sound replied to."""

from __future__ import annotations

from telegram import Message

from bot.conversation.turns import IncomingTurn, MediaRef, ReplyTarget
from bot.media.sniff import document_form
from bot.telegram.downloads import media_of
from bot.telegram.reading import too_long
from bot.telegram.triggers import conversation_key, display_name, is_group, language_of

TRANSCRIBE = "Transcribe the audio clip into text."
"""Phi-4-multimodal's own speech-recognition instruction (its model card's wording)."""

TRANSLATE_AUDIO = "Translate the audio to {language}."
"""Phi-4-multimodal's speech-translation instruction."""

TRANSLATE_TEXT = "Translate the following text to {language}. Answer with the translation only."

SPEECH_LANGUAGES = frozenset({"en", "zh", "de", "fr", "it", "ja", "es", "pt"})
"""The languages Phi-4-multimodal's audio encoder was trained to recognise."""

LANGUAGE_NAMES = {
    "ar": "Arabic",
    "be": "Belarusian",
    "bg": "Bulgarian",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ka": "Georgian",
    "kk": "Kazakh",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sr": "Serbian",
    "sv": "Swedish",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "zh": "Chinese",
}
"""English names the model is told, for Telegram's `language_code`s (ISO 639-1)."""


def base_language(code: str | None) -> str | None:
    """ "pt-br" → "pt"; None when Telegram did not say."""
    if not code:
        return None
    return code.replace("_", "-").split("-")[0].lower() or None


def language_name(asked: str | None, fallback_code: str | None) -> str:
    """The language to translate into, as the model is told it: what the user wrote after
    /translate (a code such as `fr` becomes "French"), else their Telegram language, else
    English."""
    wanted = (asked or "").strip()
    if wanted:
        return LANGUAGE_NAMES.get(wanted.lower(), wanted)
    return LANGUAGE_NAMES.get(base_language(fallback_code) or "en", "English")


def is_speech_language(code: str | None) -> bool:
    """Whether Phi-4 recognises speech in this language well; True when it is unknown."""
    base = base_language(code)
    return base is None or base in SPEECH_LANGUAGES


def sound_of(message: Message) -> MediaRef | None:
    """The message's sound as audio to decode (a video's or video note's sound track too),
    or None when it has no sound to listen to."""
    if message.voice or message.audio:
        return media_of(message)[0]
    n = message.message_id
    if message.video_note:
        note = message.video_note
        return MediaRef("audio", note.file_id, note.file_size, "video/mp4", f"video_note_{n}.mp4")
    if message.video:
        video = message.video
        name = video.file_name or f"video_{n}.mp4"
        return MediaRef("audio", video.file_id, video.file_size, video.mime_type, name)
    document = message.document
    if document is not None and document_form(document.mime_type, document.file_name) in (
        "audio",
        "video",
    ):
        name = document.file_name or f"file_{n}"
        return MediaRef("audio", document.file_id, document.file_size, document.mime_type, name)
    return None


def speaks(message: Message) -> bool:
    """A voice note or video note: someone speaking, whose language the sender's is."""
    return bool(message.voice or message.video_note)


def command_turn(
    command: Message,
    text: str,
    *,
    sound: MediaRef | None = None,
    max_input_chars: int,
) -> IncomingTurn:
    """The turn a speech command stands for: its instruction (and the text to translate),
    with the sound replied to as the turn's own audio, answered in reply to the command."""
    return IncomingTurn(
        target=ReplyTarget(
            conversation_key(command), is_group(command), language=language_of(command)
        ),
        text=text,
        message_id=command.message_id,
        sender_id=command.from_user.id if command.from_user else None,
        sender_name=display_name(command),
        media=(sound,) if sound is not None else (),
        rejection=too_long(text, max_input_chars),
    )
