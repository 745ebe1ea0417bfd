"""The Space turn's pure pieces: the history sent and the errors read back."""

from __future__ import annotations

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import BackendUnavailable, QuotaExceeded
from bot.phi4.space.turn import (
    build_history,
    completed_error,
    file_data,
    file_message,
    message_shape,
    one_sentence,
    queue_notice,
    text_message,
)


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
    assert "No GPU was available after 60s." in str(error)  # for the log
    assert error.user_message == "The model is out of quota or overloaded. Please try again later."


def test_other_errors_name_the_space_and_a_missing_message_still_explains() -> None:
    error = completed_error({"error": "ValueError: bad input"})
    assert isinstance(error, BackendUnavailable) and not isinstance(error, QuotaExceeded)
    assert "ValueError: bad input" in str(error)  # for the log; never in a chat
    assert error.user_message == "The Space failed while answering. Please try again."
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


def test_the_last_turns_files_are_left_out_of_the_history() -> None:
    image = Attachment(b"img", "image/png", "a.png")
    conversation = Conversation(turns=(Turn("user", "first"), Turn("user", "look", (image,))))
    assert build_history(conversation, []) == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "look"},
    ]


def test_gradio_6_and_later_get_lists_of_parts_and_earlier_or_unknown_versions_strings() -> None:
    assert [message_shape(v) for v in ("6.31.0", "7.0", "5.50.0", "4.44.1", None, "dev")] == [
        "parts", "parts", "plain", "plain", "plain", "plain"
    ]  # fmt: skip
    file = {"path": "/tmp/x"}
    assert text_message("user", "hi", "parts") == {
        "role": "user",
        "content": [{"type": "text", "text": "hi"}],
    }
    assert file_message(file, "parts")["content"] == [{"type": "file", "file": file}]
    assert file_message(file, "plain")["content"] == {"file": file}


def test_a_queue_notice_needs_someone_waiting_ahead_then_follows_the_queue_down() -> None:
    idle = {"msg": "estimation", "rank": 0, "queue_size": 1, "rank_eta": None}
    waiting = {"msg": "estimation", "rank": 1, "queue_size": 2, "rank_eta": 12.5}
    assert queue_notice(idle, told=False) is None
    notice = queue_notice(waiting, told=False)
    assert notice is not None and (notice.rank, notice.eta_seconds) == (1, 12.5)
    assert queue_notice(idle, told=True) is not None
