"""What /transcribe and /translate ask the model, and which messages have sound to hear."""

from __future__ import annotations

from typing import Any

from telegram import Message

from bot.telegram.speech import command_turn, is_speech_language, language_name, sound_of

ALICE = {"id": 1, "is_bot": False, "first_name": "Alice", "language_code": "de"}
PRIVATE = {"id": 1, "type": "private", "first_name": "Alice"}


def message(**fields: Any) -> Message:
    data: dict[str, Any] = {"message_id": 5, "date": 0, "chat": PRIVATE, "from": ALICE}
    data.update(fields)
    return Message.de_json(data, None)


def file(name: str, **extra: Any) -> dict[str, Any]:
    return {"file_id": name, "file_unique_id": name, **extra}


def test_the_language_is_the_one_named_else_the_users_else_english() -> None:
    assert language_name("fr", "de") == "French"
    assert language_name("  Klingon ", "de") == "Klingon"
    assert language_name("", "pt-br") == "Portuguese"
    assert language_name(None, None) == "English"
    assert language_name(None, "xx") == "English"


def test_phi4_hears_its_eight_languages_and_unknown_speakers_get_the_benefit() -> None:
    assert all(is_speech_language(c) for c in ("en", "zh-hans", "de", "fr", "it", "ja", "es"))
    assert is_speech_language("pt-BR") and is_speech_language(None)
    assert not is_speech_language("ru") and not is_speech_language("uk")


def test_voice_audio_videos_and_sound_documents_have_sound_and_the_rest_not() -> None:
    voice = sound_of(message(voice=file("v", duration=2, mime_type="audio/ogg")))
    assert voice is not None and voice.how == "audio" and voice.file_id == "v"
    note = sound_of(message(video_note=file("n", length=240, duration=3)))
    assert note is not None and note.how == "audio", "a video note is heard, not watched"
    video = message(video=file("m", width=8, height=8, duration=3, mime_type="video/mp4"))
    sound = sound_of(video)
    assert sound is not None and sound.how == "audio" and sound.file_id == "m"
    clip = sound_of(message(document=file("d", file_name="talk.m4a", mime_type="audio/mp4")))
    assert clip is not None and clip.how == "audio"
    assert sound_of(message(text="hello")) is None
    assert sound_of(message(photo=[file("p", width=1, height=1)])) is None
    assert sound_of(message(document=file("x", file_name="a.pdf"))) is None


def test_a_command_turn_replies_to_the_command_and_refuses_what_is_too_long() -> None:
    command = message(text="/translate", message_id=9)
    turn = command_turn(command, "Translate this.", max_input_chars=100)
    assert turn.message_id == 9 and turn.media == () and turn.rejection is None
    assert turn.target.language == "de"
    long = command_turn(command, "x" * 101, max_input_chars=100)
    assert long.rejection is not None
