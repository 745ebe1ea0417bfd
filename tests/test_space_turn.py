"""The Space turn's pure pieces: the history sent and the errors read back."""

from __future__ import annotations

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import BackendUnavailable, QuotaExceeded
from bot.phi4.space.turn import build_history, completed_error, file_data, one_sentence


def test_one_sentence_strips_markup_and_anything_shaped_like_a_token() -> None:
    text = "Bad token <b>hf_abcdefghijklmnop</b> used.  Second sentence."
    assert one_sentence(text) == "Bad token [redacted] used."


def test_one_sentence_prefers_the_sentence_about_the_subject() -> None:
    text = "Error. You have exceeded your <a href='x'>GPU quota</a> (5s vs. 0s left). Sign up."
    assert one_sentence(text, about=("quota",)) == (
        "You have exceeded your GPU quota (5s vs. 0s left)."
    )


def test_one_sentence_caps_very_long_messages() -> None:
    assert len(one_sentence("x" * 1000)) == 300


def test_a_quota_or_gpu_error_becomes_quota_exceeded() -> None:
    error = completed_error({"error": "No GPU was available after 60s. Retry later"})
    assert isinstance(error, QuotaExceeded)
    assert error.user_message == "No GPU was available after 60s."


def test_other_errors_name_the_space_and_a_missing_message_still_explains() -> None:
    error = completed_error({"error": "ValueError: bad input"})
    assert isinstance(error, BackendUnavailable) and not isinstance(error, QuotaExceeded)
    assert error.user_message == "The Space could not answer: ValueError: bad input"
    assert "failed while answering" in completed_error({"error": None}).user_message
    assert "failed while answering" in completed_error(None).user_message


def test_history_places_files_before_their_turns_text() -> None:
    image = Attachment(b"img", "image/png", "a.png")
    conversation = Conversation(
        turns=(Turn("user", "look", (image, image)), Turn("assistant", "ok"), Turn("user", "more")),
        system_prompt="S",
    )
    files = [file_data("http://space", "/gradio_api", f"/tmp/{i}", image) for i in range(2)]
    history = build_history(conversation, files)
    assert history == [
        {"role": "user", "content": {"file": files[0]}},
        {"role": "user", "content": {"file": files[1]}},
        {"role": "user", "content": "S\n\nlook"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "more"},
    ]
    assert files[0]["url"] == "http://space/gradio_api/file=/tmp/0"
    assert files[0]["meta"] == {"_type": "gradio.FileData"} and files[0]["size"] == 3
