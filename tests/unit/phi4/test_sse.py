"""The Server-Sent-Events parser: the WHATWG rules, whatever the chunking."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bot.phi4.sse import (
    ServerSentEvent,
    SSEDataParser,
    SSEParser,
)


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_data_lines_of_one_event_are_joined_with_newlines() -> None:
    events = parse(b"data: first\ndata: second\n\n")
    assert events == [ServerSentEvent(data="first\nsecond")]


def test_comment_lines_and_unknown_fields_are_ignored() -> None:
    events = parse(b": keepalive\nfoo: bar\ndata: x\n\n:\n\n")
    assert [e.data for e in events] == ["x"]


def test_crlf_and_lone_cr_end_lines_like_lf() -> None:
    assert [e.data for e in parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n")] == ["a", "b", "c"]


def test_cr_at_end_of_a_chunk_and_lf_at_start_of_the_next_are_one_line_end() -> None:
    events = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert [e.data for e in events] == ["a\nb"]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert parse(b"data:  two spaces\ndata:none\n\n")[0].data == " two spaces\nnone"


def test_event_type_and_id_are_reported_and_id_persists() -> None:
    events = parse(b"event: update\nid: 7\ndata: a\n\ndata: b\n\n")
    assert (events[0].event, events[0].id) == ("update", "7")
    assert (events[1].event, events[1].id) == ("message", "7")


def test_a_blank_line_without_data_dispatches_nothing() -> None:
    assert parse(b"event: ping\n\n\n\n") == []


def test_an_incomplete_event_stays_pending_until_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: half") == []
    assert parser.feed(b" done\n") == []
    assert parser.feed(b"\n") == [ServerSentEvent(data="half done")]


def test_multibyte_characters_split_across_chunks_survive() -> None:
    raw = 'data: {"t": "héllo 😀"}\n\n'.encode()
    cut = raw.index("😀".encode()) + 2
    assert parse(raw[:cut], raw[cut:])[0].data == '{"t": "héllo 😀"}'


def test_a_leading_byte_order_mark_is_dropped() -> None:
    assert parse(b"\xef\xbb", b"\xbfdata: x\n\n")[0].data == "x"


def test_retry_field_is_read_when_numeric() -> None:
    assert parse(b"retry: 3000\ndata: x\n\n")[0].retry == 3000
    assert parse(b"retry: soon\ndata: x\n\n")[0].retry is None


_line = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
)
_field = st.one_of(
    _line.map(lambda v: f"data: {v}"),
    _line.map(lambda v: f"data:{v}"),
    _line.map(lambda v: f": {v}"),
    _line.map(lambda v: f"event: {v}"),
    _line.map(lambda v: f"id: {v}"),
    st.just("data"),
    st.just(""),
)


@st.composite
def _stream_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    lines = draw(st.lists(_field, max_size=25))
    ends = draw(
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines))
    )
    raw = "".join(line + end for line, end in zip(lines, ends, strict=True)).encode()
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    return raw, cuts


@given(_stream_and_cuts())
def test_any_split_of_the_byte_stream_gives_the_same_events(case: tuple[bytes, list[int]]) -> None:
    raw, cuts = case
    bounds = [0, *cuts, len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert parse(*chunks) == parse(raw)


@given(_stream_and_cuts())
def test_byte_by_byte_feeding_gives_the_same_events(case: tuple[bytes, list[int]]) -> None:
    raw, _ = case
    assert parse(*(raw[i : i + 1] for i in range(len(raw)))) == parse(raw)


# -- the hot path's data-only parser --------------------------------------------------


def data_of(*chunks: bytes) -> list[bytes]:
    parser = SSEDataParser()
    return [data for chunk in chunks for data in parser.feed(chunk)]


def test_every_event_already_buffered_comes_out_of_one_read() -> None:
    raw = b"".join(b'data: {"n": %d}\n\n' % i for i in range(5))
    assert SSEDataParser().feed(raw) == [b'{"n": %d}' % i for i in range(5)]


def test_keepalive_comments_and_other_fields_give_no_data() -> None:
    assert data_of(b": keepalive\n\n", b"event: ping\nid: 3\nretry: 10\n\n") == []
    assert data_of(b": keepalive\n\ndata: x\n\n: again\n\n") == [b"x"]


def test_a_field_merely_starting_with_data_is_not_data() -> None:
    assert data_of(b"database: no\ndata: yes\n\n") == [b"yes"]


def test_an_event_cut_inside_a_utf8_character_comes_out_whole() -> None:
    raw = 'data: {"t": "héllo 😀"}\n\n'.encode()
    cut = raw.index("😀".encode()) + 2
    assert data_of(raw[:cut], raw[cut:]) == ['{"t": "héllo 😀"}'.encode()]


def test_a_byte_order_mark_split_over_reads_is_dropped() -> None:
    assert data_of(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [b"x"]


@given(_stream_and_cuts())
def test_the_data_parser_agrees_with_the_full_parser_on_any_split(
    case: tuple[bytes, list[int]],
) -> None:
    raw, cuts = case
    bounds = [0, *cuts, len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    expected = [event.data.encode() for event in parse(raw)]
    assert data_of(*chunks) == expected
    assert data_of(*(raw[i : i + 1] for i in range(len(raw)))) == expected
