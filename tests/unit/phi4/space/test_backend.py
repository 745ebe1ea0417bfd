"""The Space backend over real HTTP against the fake Gradio Space."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import wave
from collections.abc import AsyncGenerator, AsyncIterator

import aiohttp
import pytest
from PIL import Image

from bot.phi4.backend import Backend
from bot.phi4.conversation import Attachment, Conversation, QueuePosition, Turn
from bot.phi4.errors import (
    AccessDenied,
    BackendTimeout,
    BackendUnavailable,
    ConnectionRefused,
    EmptyConversation,
    FailureClass,
    QuotaExceeded,
    ServerNotFound,
    SpaceAsleep,
    SpaceNotFound,
    SpacePaused,
)
from bot.phi4.space.backend import SpaceBackend
from bot.phi4.space.reading import CONNECTION_BROKE
from bot.phi4.space.zerogpu import ZeroGpuAuth, space_id_from_url
from tests.fakes.space import FakeSpace


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 30)).save(out, "JPEG")
    return out.getvalue()


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(16_000)
        sink.writeframes(bytes(range(256)) * 25)
    return out.getvalue()


def ask(text: str, *attachments: Attachment, system: str | None = None) -> Conversation:
    return Conversation(turns=(Turn("user", text, attachments),), system_prompt=system)


async def collect(backend: SpaceBackend, conversation: Conversation, **kwargs: object) -> list[str]:
    return [piece async for piece in backend.stream(conversation, **kwargs)]  # type: ignore[arg-type]


@pytest.fixture
async def space() -> AsyncIterator[FakeSpace]:
    async with FakeSpace() as fake:
        yield fake


@pytest.fixture
async def backend(space: FakeSpace) -> AsyncIterator[SpaceBackend]:
    async with SpaceBackend(space.url, stream_timeout=5.0) as client:
        yield client


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_space_backend_satisfies_the_backend_protocol() -> None:
    backend = SpaceBackend("http://127.0.0.1:1")
    assert isinstance(backend, Backend)
    assert backend.name == "space" and backend.accepts == {"image", "audio"}


async def test_answer_arrives_in_pieces_that_join_to_the_whole_answer(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.answer = "Phi-4 streams this answer in several small pieces."
    space.chunk_delay = 0.01  # diffs that arrive together are given out as one piece
    pieces = await collect(backend, ask("hello"))
    assert len(pieces) > 5
    assert "".join(pieces) == space.answer


async def test_first_piece_reaches_the_caller_before_the_space_sends_the_last(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.answer, space.pause_after = "one two three four", 1
    stream = backend.stream(ask("hello"))
    first = await anext(stream)
    record = space.requests[-1]
    assert first == "one " and record.chunks_sent == 1 and not record.completed
    space.resume()
    rest = [piece async for piece in stream]
    assert first + "".join(rest) == space.answer and record.completed


async def test_full_history_and_media_reach_the_space_intact(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    photo = Attachment(jpeg(), "image/jpeg", "photo.jpg")
    voice = Attachment(wav(), "audio/wav", "voice.wav")
    conversation = Conversation(
        turns=(
            Turn("user", "What is in this picture?", (photo,)),
            Turn("assistant", "A red rectangle."),
            Turn("user", "And what do I say here?", (voice,)),
        ),
        system_prompt="Be brief.",
    )
    assert "".join(await collect(backend, conversation)) == space.answer

    by_name = {u.filename: u for u in space.uploads}
    assert by_name["photo.jpg"].data == photo.data and by_name["voice.wav"].data == voice.data
    assert by_name["photo.jpg"].content_type == "image/jpeg"
    assert by_name["voice.wav"].content_type == "audio/wav"
    record = space.requests[-1]
    assert {u.upload_id for u in space.uploads} == {record.session_hash}
    history = record.history
    assert [m["role"] for m in history] == ["user", "user", "assistant", "user"]
    assert history[0]["content"]["file"]["path"] == by_name["photo.jpg"].path
    assert history[0]["content"]["file"]["size"] == len(photo.data)
    assert history[0]["content"]["file"]["mime_type"] == "image/jpeg"
    assert history[1]["content"] == "Be brief.\n\nWhat is in this picture?"
    assert history[2]["content"] == "A red rectangle."
    assert history[3]["content"] == "And what do I say here?"
    [voice_message] = record.files
    assert voice_message["content"]["file"]["orig_name"] == "voice.wav"
    assert voice_message["content"]["file"]["path"] == by_name["voice.wav"].path
    assert set(record.file_counts().values()) == {1}
    assert record.predict is not None
    assert record.predict["data"][1]["text"] == "And what do I say here?"
    assert record.predict["data"][1]["files"] == [voice_message["content"]["file"]]
    assert (record.fn_index, record.trigger_id, record.predict["fn_index"]) == (11, 8, 10)


async def test_an_album_reaches_the_space_once_per_photo(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    photos = [Attachment(jpeg(), "image/jpeg", f"p{i}.jpg") for i in range(2)]
    photos[1] = Attachment(photos[1].data + b"\0", "image/jpeg", "p1.jpg")
    await collect(backend, ask("compare", *photos))
    record = space.requests[-1]
    assert sorted(record.file_counts().values()) == [1, 1]
    assert record.history == [{"role": "user", "content": "compare"}]


async def test_gradio_6_gets_every_message_as_a_list_of_parts(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.version = "6.31.0"
    photo = Attachment(jpeg(), "image/jpeg", "photo.jpg")
    conversation = Conversation(
        turns=(
            Turn("user", "Look", (photo,)),
            Turn("assistant", "A photo."),
            Turn("user", "Again", (photo,)),
        ),
    )
    assert "".join(await collect(backend, conversation)) == space.answer
    record = space.requests[-1]
    assert record.history[1:] == [
        {"role": "user", "content": [{"type": "text", "text": "Look"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A photo."}]},
        {"role": "user", "content": [{"type": "text", "text": "Again"}]},
    ]
    assert record.history[0]["content"][0]["type"] == "file"
    assert record.files[0]["content"][0]["type"] == "file"
    assert list(record.file_counts().values()) == [2]


async def test_a_file_is_uploaded_once_and_again_only_when_the_space_lost_it(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    photo = Attachment(jpeg(), "image/jpeg", "photo.jpg")
    first = (Turn("user", "Look", (photo,)),)
    await collect(backend, Conversation(first))
    follow_up = (*first, Turn("assistant", "A photo."), Turn("user", "And now?"))
    await collect(backend, Conversation(follow_up))
    assert len(space.uploads) == 1
    space.forget_uploads()
    assert "".join(await collect(backend, Conversation(follow_up))) == space.answer
    assert len(space.uploads) == 2


async def test_text_only_turn_uploads_nothing(space: FakeSpace, backend: SpaceBackend) -> None:
    assert "".join(await collect(backend, ask("just text"))) == space.answer
    assert space.uploads == []
    assert space.requests[-1].history == [{"role": "user", "content": "just text"}]
    assert space.requests[-1].files == []


async def test_a_media_only_first_turn_carries_the_system_prompt_as_its_text(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    await collect(backend, ask("", Attachment(jpeg(), "image/jpeg", "p.jpg"), system="Sys."))
    record = space.requests[-1]
    assert record.history == [{"role": "user", "content": "Sys."}]
    assert "file" in record.files[0]["content"]


async def test_queue_positions_are_reported_while_waiting(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.queue_ahead, space.queue_delay = 2, 0.01
    positions: list[QueuePosition] = []
    assert "".join(await collect(backend, ask("hi"), on_queue=positions.append)) == space.answer
    assert [p.rank for p in positions] == [2, 1, 0]
    assert positions[0].queue_size == 3 and positions[0].eta_seconds == pytest.approx(0.02)


async def test_rank_0_without_anyone_ahead_is_no_queue_to_report(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    positions: list[QueuePosition] = []
    assert "".join(await collect(backend, ask("hi"), on_queue=positions.append)) == space.answer
    assert positions == []


async def test_waiting_in_the_queue_longer_than_the_stream_timeout_is_not_a_stall(
    space: FakeSpace,
) -> None:
    space.queue_ahead, space.queue_delay = 1, 0.4
    async with SpaceBackend(space.url, stream_timeout=0.3) as backend:
        assert "".join(await collect(backend, ask("hi"))) == space.answer


async def test_quota_error_becomes_quota_exceeded_with_the_spaces_sentence_in_the_log_only(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.fail_next("quota")
    with pytest.raises(QuotaExceeded) as caught:
        await collect(backend, ask("hi"))
    assert "You have exceeded your GPU quota (60s requested vs. 0s left)." in str(caught.value)
    assert caught.value.user_message == QuotaExceeded.user_message  # the Space's words: log only


async def test_other_space_errors_become_backend_unavailable_their_sentence_in_the_log(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.fail_next("error")
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend, ask("hi"))
    assert "Generation failed: the model raised." in str(caught.value)  # the log's detail
    assert caught.value.user_message == "The Space failed while answering. Please try again."


@pytest.mark.parametrize("version", ["5.50.0", "6.31.0"])
async def test_a_failure_without_a_message_names_what_is_known(
    space: FakeSpace, backend: SpaceBackend, version: str
) -> None:
    space.version = version
    space.fail_next("crash", after=2)
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend, ask("hi"))
    assert caught.value.user_message == "The Space failed while answering. Please try again."
    assert str(caught.value) == (
        f"Space reported failure without a message (Gradio {version}, function 11, "
        "stream HTTP 200, event title None, after 2 streamed update(s))"
    )


async def test_content_in_a_shape_the_gradio_version_refuses_is_reported_as_refused(
    space: FakeSpace,
) -> None:
    async with SpaceBackend(space.url) as backend:
        await backend.probe()
        space.version = "6.31.0"
        with pytest.raises(BackendUnavailable) as caught:
            await collect(backend, ask("hi"))
        assert "Gradio 5.50.0" in str(caught.value) and "before any output" in str(caught.value)
        assert "".join(await collect(backend, ask("after the upgrade"))) == space.answer
    assert space.requests[-1].history[0]["content"] == [
        {"type": "text", "text": "after the upgrade"}
    ]


@pytest.mark.parametrize("kind", ["unexpected_error", "join_500", "data_500"])
async def test_server_failures_become_backend_unavailable_never_an_empty_answer(
    space: FakeSpace, backend: SpaceBackend, kind: str
) -> None:
    space.fail_next(kind)
    with pytest.raises(BackendUnavailable):
        await collect(backend, ask("hi"))
    assert "".join(await collect(backend, ask("again"))) == space.answer


async def test_a_sleeping_space_is_transient_and_says_it_is_waking_up(space: FakeSpace) -> None:
    space.fail_next("sleeping")
    async with SpaceBackend(space.url) as backend:
        with pytest.raises(SpaceAsleep) as caught:
            await collect(backend, ask("hi"))
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert "try again in a minute" in caught.value.user_message


async def test_a_paused_space_is_a_configuration_failure(space: FakeSpace) -> None:
    space.fail_next("paused")
    async with SpaceBackend(space.url) as backend:
        with pytest.raises(SpacePaused) as caught:
            await collect(backend, ask("hi"))
    assert caught.value.failure_class is FailureClass.CONFIGURATION
    assert "not set up to answer" in caught.value.user_message
    assert caught.value.where == space.url


async def test_a_missing_space_is_a_configuration_failure(space: FakeSpace) -> None:
    space.fail_next("missing")
    async with SpaceBackend(space.url) as backend:
        with pytest.raises(SpaceNotFound) as caught:
            await backend.probe()
    assert caught.value.failure_class is FailureClass.CONFIGURATION


async def test_a_private_space_without_a_token_is_access_denied(space: FakeSpace) -> None:
    space.fail_next("private")
    async with SpaceBackend(space.url) as backend:
        with pytest.raises(AccessDenied):
            await collect(backend, ask("hi"))


async def test_a_host_name_that_does_not_resolve_is_a_configuration_failure() -> None:
    async with SpaceBackend("http://phi4-space.invalid", connect_timeout=5.0) as backend:
        with pytest.raises(ServerNotFound) as caught:
            await backend.probe()
    assert "phi4-space.invalid" in str(caught.value)
    assert caught.value.failure_class is FailureClass.CONFIGURATION


@pytest.mark.parametrize("kind", ["broken", "truncated"])
async def test_a_stream_ending_before_completion_is_a_broken_connection(
    space: FakeSpace, backend: SpaceBackend, kind: str
) -> None:
    space.answer = "a fairly long answer that will not arrive whole"
    space.fail_next(kind, after=2)
    pieces: list[str] = []
    with pytest.raises(BackendUnavailable) as caught:
        async for piece in backend.stream(ask("hi")):
            pieces.append(piece)
    assert caught.value.user_message == CONNECTION_BROKE
    assert "".join(pieces) == space.answer[:8]


async def test_a_stall_with_only_heartbeats_times_out(space: FakeSpace) -> None:
    space.heartbeat_interval, space.stall_seconds = 0.05, 5.0
    space.fail_next("stall", after=1)
    async with SpaceBackend(space.url, stream_timeout=0.3) as backend:
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            await collect(backend, ask("hi"))
        assert time.monotonic() - started < space.stall_seconds / 2, "ended by the timeout"
    await space.wait_for(lambda: bool(space.cancels))
    assert space.cancels[0]["event_id"] == space.requests[-1].event_id


async def test_a_closed_local_port_is_a_configuration_failure() -> None:
    async with SpaceBackend(closed_port_url(), connect_timeout=2.0) as backend:
        with pytest.raises(ConnectionRefused):
            await collect(backend, ask("hi"))
        with pytest.raises(ConnectionRefused):
            await backend.probe()


async def test_a_wrong_path_is_backend_unavailable(space: FakeSpace) -> None:
    async with SpaceBackend(f"{space.url}/not-a-space") as backend:
        with pytest.raises(BackendUnavailable):
            await collect(backend, ask("hi"))


async def test_a_conversation_without_a_user_turn_to_answer_is_refused(
    backend: SpaceBackend,
) -> None:
    with pytest.raises(EmptyConversation):
        await collect(backend, Conversation(turns=()))
    with pytest.raises(EmptyConversation):
        await collect(backend, Conversation(turns=(Turn("assistant", "hello"),)))
    with pytest.raises(EmptyConversation):
        await collect(backend, ask("  "))


async def test_closing_the_stream_early_cancels_the_event_and_drops_the_connection(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.answer, space.pause_after = "x" * 400, 1
    space.heartbeat_interval = 0.05
    stream = backend.stream(ask("hi"))
    await anext(stream)
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()
    record = space.requests[-1]
    await space.wait_for(lambda: bool(space.cancels))
    assert space.cancels == [
        {"session_hash": record.session_hash, "fn_index": 11, "event_id": record.event_id}
    ]
    await asyncio.wait_for(record.disconnected.wait(), 2.0)
    assert not record.completed or record.chunks_sent < 100


async def test_cancelling_the_consuming_task_cancels_the_event(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.answer, space.pause_after = "x" * 400, 1
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(ask("hi")):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await space.wait_for(lambda: bool(space.cancels))
    assert space.cancels[0]["event_id"] == space.requests[-1].event_id


async def test_concurrent_turns_get_their_own_answers(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.reply = lambda request: f"You said {request.history[-1]['content']}."
    space.chunk_delay = 0.005
    answers = await asyncio.gather(*(collect(backend, ask(f"n{i}")) for i in range(5)))
    assert ["".join(a) for a in answers] == [f"You said n{i}." for i in range(5)]


async def test_function_numbers_of_a_duplicated_space_are_looked_up() -> None:
    async with FakeSpace(add_fn=3, answer_fn=4, trigger_id=21) as space:
        async with SpaceBackend(space.url) as backend:
            assert "".join(await collect(backend, ask("hi"))) == space.answer
            assert "".join(await collect(backend, ask("again"))) == space.answer
        assert (space.requests[-1].fn_index, space.requests[-1].trigger_id) == (4, 21)
        assert [s.path for s in space.seen].count("/config") == 1
        async with SpaceBackend(space.url, fn_index=11, trigger_id=8) as backend:
            with pytest.raises(BackendUnavailable):
                await collect(backend, ask("explicit numbers win"))


async def test_without_hf_token_no_credentials_are_sent(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    await collect(backend, ask("hi", Attachment(jpeg(), "image/jpeg", "p.jpg")))
    assert space.jwt_requests == []
    for seen in space.seen:
        lowered = {k.lower() for k in seen.headers}
        assert not lowered & {"authorization", "x-zerogpu-token", "x-zerogpu-uuid"}, seen.path


async def test_hf_token_is_sent_with_a_zerogpu_token_from_the_hub(space: FakeSpace) -> None:
    async with SpaceBackend(space.url, hf_token="hf_secret", hf_endpoint=space.hub_url) as backend:
        await collect(backend, ask("hi", Attachment(jpeg(), "image/jpeg", "p.jpg")))
        await collect(backend, ask("again"))
    [jwt] = space.jwt_requests
    assert jwt.path == "/api/spaces/fake-owner/fake-phi4/jwt"
    assert jwt.headers["Authorization"] == "Bearer hf_secret"
    space_calls = [s for s in space.seen if not s.path.startswith("/api/spaces/")]
    assert all(s.headers.get("Authorization") == "Bearer hf_secret" for s in space_calls)
    joins = [s for s in space_calls if s.path.endswith("/queue/join")]
    assert [s.headers.get("x-zerogpu-token") for s in joins] == ["fake-jwt-1", "fake-jwt-1"]
    assert joins[0].headers["x-zerogpu-uuid"] == joins[1].headers["x-zerogpu-uuid"]


async def test_a_refused_zerogpu_token_only_drops_that_header(space: FakeSpace) -> None:
    space.fail_next("jwt")
    async with SpaceBackend(space.url, hf_token="hf_secret", hf_endpoint=space.hub_url) as backend:
        assert "".join(await collect(backend, ask("hi"))) == space.answer
    join = next(s for s in space.seen if s.path.endswith("/queue/join"))
    assert join.headers["Authorization"] == "Bearer hf_secret"
    assert "x-zerogpu-token" not in join.headers


async def test_probe_names_the_gradio_version_and_space(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    assert await backend.probe() == "Gradio 5.50.0 Space fake-owner/fake-phi4"
    assert "".join(await collect(backend, ask("hi"))) == space.answer
    assert [s.path for s in space.seen].count("/config") == 1
    space.fail_next("sleeping")
    with pytest.raises(SpaceAsleep):
        await backend.probe()


async def test_a_given_session_is_left_open_and_an_own_session_is_closed(space: FakeSpace) -> None:
    async with aiohttp.ClientSession() as session:
        async with SpaceBackend(space.url, session=session) as backend:
            await collect(backend, ask("hi"))
        assert not session.closed
    own = SpaceBackend(space.url)
    await collect(own, ask("hi"))
    wire_session = own._wire.session
    await own.aclose()
    assert wire_session.closed


async def test_zerogpu_token_is_renewed_a_minute_before_it_expires(space: FakeSpace) -> None:
    now = [0.0]
    auth = ZeroGpuAuth("hf_x", space.hub_url, clock=lambda: now[0])
    async with aiohttp.ClientSession() as session:
        await auth.refresh(session, "o/n", 5.0)
        assert auth.space_headers()["x-zerogpu-token"] == "fake-jwt-1"
        now[0] = 530.0
        await auth.refresh(session, "o/n", 5.0)
        assert len(space.jwt_requests) == 1
        now[0] = 545.0
        await auth.refresh(session, "o/n", 5.0)
        assert auth.space_headers()["x-zerogpu-token"] == "fake-jwt-2"
    query = space.jwt_requests[0].query
    assert query["include_pro_status"] == "true" and query["expiration"].endswith("Z")


def test_space_id_is_guessed_from_an_hf_space_host() -> None:
    assert space_id_from_url("https://microsoft-phi-4-multimodal.hf.space") == (
        "microsoft/phi-4-multimodal"
    )
    assert space_id_from_url("http://127.0.0.1:7860") is None


async def test_a_full_queue_is_reported_as_overloaded(
    space: FakeSpace, backend: SpaceBackend
) -> None:
    space.fail_next("queue_full")
    with pytest.raises(QuotaExceeded):
        await collect(backend, ask("hi"))
