"""An error answer's message and code, read from whole JSON, JSON cut short, or plain text."""

from __future__ import annotations

import json

import pytest

from bot.phi4.error_body import ERROR_BODY_BYTES, MESSAGE_CHARS, parse_error_body
from bot.phi4.openai_window import overflow_from


def test_an_openai_style_body_gives_its_message_and_code() -> None:
    raw = json.dumps(
        {"error": {"message": "Too long.", "type": "x", "code": "context_length_exceeded"}}
    ).encode()
    parsed = parse_error_body(raw, status=400)
    assert (parsed.message, parsed.code) == ("Too long.", "context_length_exceeded")


def test_fastapis_validation_list_gives_its_first_messages() -> None:
    raw = json.dumps({"detail": [{"loc": ["body"], "msg": "Input should be a string"}]}).encode()
    assert parse_error_body(raw, status=422).message == "Input should be a string"


def test_a_validation_dump_cut_at_64_kb_still_gives_its_message() -> None:
    audio = "UklGRiQAAABXQVZF" * 30000  # base64 audio the server repeats, far past 64 kB
    message = f"1 validation error: input_audio is not a valid part, input: {audio}"
    raw = json.dumps({"error": {"message": message, "type": "internal_server_error"}}).encode()
    assert len(raw) > ERROR_BODY_BYTES
    parsed = parse_error_body(raw[:ERROR_BODY_BYTES], status=500)
    assert parsed.message.startswith("1 validation error: input_audio is not a valid part")
    assert len(parsed.message) == MESSAGE_CHARS and parsed.message.endswith("…")


@pytest.mark.parametrize("cut", range(1, 14))
def test_a_body_cut_inside_an_escape_or_a_character_still_decodes(cut: int) -> None:
    raw = json.dumps({"error": {"message": 'say "hé" \\ ok \u2603 end'}}, ensure_ascii=True)
    body = raw.encode()
    start = body.index(b'"message": "') + len(b'"message": "')
    parsed = parse_error_body(body[: start + cut], status=500)
    assert 'say "hé" \\ ok \u2603 end'.startswith(parsed.message)


def test_plain_text_is_kept_with_the_status() -> None:
    parsed = parse_error_body(b"502 Bad Gateway", status=502)
    assert parsed.message == "Error code: 502 - 502 Bad Gateway"
    assert parsed.code is None


@pytest.mark.parametrize(
    ("message", "code", "limit", "requested"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, your request has "
            "5000 input tokens. Please reduce the length of the input messages.",
            400,
            4096,
            5000,
        ),
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum "
            "context length is 4096 tokens and your request has 2778 input tokens "
            "(8000 > 4096 - 2778). None",
            400,
            4096,
            2778,
        ),
        (
            "This model's maximum context length is 512 tokens. However, you requested 3204 "
            "tokens (3204 in the messages, None in the completion). Please reduce the length "
            "of the messages or completion.",
            "context_length_exceeded",
            512,
            3204,
        ),
        (
            "Request body too large for gpt-4o model. Max size: 8000 tokens.",
            "tokens_limit_reached",
            8000,
            None,
        ),
    ],
)
def test_each_servers_overflow_gives_the_window_and_what_was_asked(
    message: str, code: object, limit: int, requested: int | None
) -> None:
    overflow = overflow_from(code, message, detail=message)
    assert overflow is not None
    assert (overflow.window, overflow.requested) == (limit, requested)


def test_other_refusals_are_not_overflows() -> None:
    assert overflow_from(400, "temperature must be positive", detail="") is None
