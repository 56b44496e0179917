"""Round trips against the websockets library, and hypothesis properties of the parsers."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_proto_anomalies import request, response
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader

from analyzer.limits import Limits
from analyzer.protocol.flow import FlowParser, FlowResult
from analyzer.protocol.frames import FrameReader, parse_header, serialize, unmask

ROUND_TRIP = [
    (0x1, b"", True),
    (0x1, "héllo".encode(), True),
    (0x2, bytes(range(256)), False),
    (0x2, b"x" * 125, True),
    (0x2, b"x" * 126, True),
    (0x2, b"x" * 65535, False),
    (0x2, b"x" * 65536, True),
    (0x0, b"cont", False),
    (0x8, b"\x03\xe8bye", True),
    (0x9, b"ping", True),
    (0xA, b"", True),
]


@pytest.mark.parametrize(("opcode", "payload", "fin"), ROUND_TRIP)
@pytest.mark.parametrize("masked", [False, True])
def test_round_trip_with_websockets(opcode: int, payload: bytes, fin: bool, masked: bool) -> None:
    # websockets serializes; we parse.
    wire = WsFrame(WsOpcode(opcode), payload, fin).serialize(mask=masked)
    h = parse_header(wire)
    assert h is not None
    assert (h.fin, h.opcode, h.masked, h.length, h.rsv, h.flags) == (
        fin,
        opcode,
        masked,
        len(payload),
        0,
        0,
    )
    body = wire[h.size :]
    assert (unmask(body, h.mask) if h.mask else body) == payload
    # We serialize; websockets parses.
    ours = serialize(opcode, payload, fin=fin, mask=b"\x01\x02\x03\x04" if masked else None)
    reader = StreamReader()
    reader.feed_data(ours)
    gen = WsFrame.parse(reader.read_exact, mask=masked)
    try:
        next(gen)
        raise AssertionError("websockets wanted more bytes")
    except StopIteration as stop:
        frame = stop.value
    assert (frame.opcode, bytes(frame.data), frame.fin) == (opcode, payload, fin)
    if not masked:
        assert ours == wire


def test_serialize_forced_lengths() -> None:
    for size, head in ((1, 2), (2, 4), (8, 10)):
        wire = serialize(2, b"ab", length_size=size)
        h = parse_header(wire)
        assert h is not None and h.size == head and h.length == 2
        assert bool(h.flags) == (size != 1)


frame_st = st.tuples(
    st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11]),
    st.booleans(),  # fin
    st.integers(0, 7),  # rsv
    st.one_of(st.binary(max_size=200), st.binary(min_size=126, max_size=70000)),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frame_st, max_size=8), st.lists(st.integers(0, 10**6), max_size=30))
def test_reader_same_frames_however_chunked(frames: list[Any], cuts: list[int]) -> None:
    wire = b"".join(
        serialize(op, payload, fin=fin, rsv=rsv, mask=mask)
        for op, fin, rsv, payload, mask in frames
    )
    reader = FrameReader(1 << 20)
    got = []
    for i, piece in enumerate(_split(wire, cuts), 1):
        got += reader.feed(piece, i, float(i))
    assert reader.offset == len(wire) and not reader.in_payload and reader.pending == 0
    assert len(got) == len(frames)
    pos = 0
    for (op, fin, rsv, payload, mask), rf in zip(frames, got, strict=True):
        assert (rf.opcode, rf.fin, rf.rsv, rf.mask, rf.offset) == (op, fin, rsv, mask, pos)
        assert rf.payload is not None
        assert (unmask(rf.payload, mask) if mask else rf.payload) == payload
        pos += len(serialize(op, payload, fin=fin, rsv=rsv, mask=mask))


def _ws_bytes(items: list[tuple[bool, int, bool, int, bytes]]) -> list[tuple[bool, bytes]]:
    pmd = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    out = [(True, request()), (False, response(pmd))]
    for client, op, fin, rsv, payload in items:
        mask = b"abcd" if client else None
        if rsv == 4 and payload:
            c = zlib.compressobj(wbits=-15)
            payload = (c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        out.append((client, serialize(op, payload, fin=fin, rsv=rsv, mask=mask)))
    return out


def _run(chunks: list[tuple[bool, bytes]], cuts: list[int] | None) -> FlowResult:
    p = FlowParser("p.pcap", 0, Limits(max_preview_bytes=64))
    n = 0
    for orig, data in chunks:
        for piece in [data] if cuts is None else _split(data, cuts):
            n += 1
            p.data(orig, piece, n, float(n))
    r = p.result()
    assert r is not None
    return r


def _shape(r: FlowResult) -> tuple[Any, ...]:
    return (
        [
            (f.index, f.side, f.fin, f.rsv, f.opcode, f.length, f.offset, f.close_code)
            for f in r.frames
        ],
        [
            (m.index, m.side, m.opcode, m.size, m.preview, m.frames, m.frame_index)
            for m in r.messages
        ],
        [(c.side, c.code, c.reason, c.frame_index) for c in r.closes],
        [a.code for a in r.anomalies],
        r.message_count,
    )


ws_item = st.tuples(
    st.booleans(),
    st.sampled_from([0, 1, 2, 8, 9, 10]),
    st.booleans(),
    st.sampled_from([0, 0, 4, 2]),
    st.one_of(st.text(max_size=50).map(str.encode), st.binary(max_size=300)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ws_item, max_size=12), st.lists(st.integers(0, 10**5), min_size=1, max_size=20))
def test_flow_same_result_however_chunked(items: list[Any], cuts: list[int]) -> None:
    chunks = _ws_bytes(items)
    assert _shape(_run(chunks, None)) == _shape(_run(chunks, cuts))
    assert _shape(_run(chunks, None)) == _shape(_run(chunks, [1]))


@settings(max_examples=150, deadline=None)
@given(
    st.booleans(),
    st.lists(
        st.tuples(st.booleans(), st.one_of(st.binary(max_size=300), st.integers(1, 5000))),
        max_size=12,
    ),
)
def test_any_bytes_give_records_never_exceptions(handshake: bool, events: list[Any]) -> None:
    p = FlowParser("fuzz.pcap", 0, Limits(max_frame_bytes=1000, max_header_bytes=500))
    n = 0
    if handshake:
        p.data(True, request(), 1, 1.0)
        p.data(False, response("Sec-WebSocket-Extensions: permessage-deflate\r\n"), 2, 2.0)
        n = 2
    for orig, ev in events:
        n += 1
        if isinstance(ev, int):
            p.gap(orig, ev, n, float(n))
        else:
            p.data(orig, ev, n, float(n))
    r = p.result()
    assert r is None or isinstance(r, FlowResult)
    if r is not None:
        assert len(r.messages) <= sum(r.message_count.values())
        assert p.result() is not None  # result() may be called again


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 9]), st.binary(max_size=400)), min_size=1, max_size=10
    ),
    st.integers(0, 10**6),
    st.integers(1, 600),
)
def test_a_gap_never_invents_frames(items: list[Any], where: int, length: int) -> None:
    wire = b"".join(serialize(op, p) for op, p in items)
    full = _run([(True, request()), (False, response()), (False, wire)], None)
    cut = where % len(wire)
    length = min(length, len(wire) - cut)
    p = FlowParser("g.pcap", 0, Limits(max_preview_bytes=64))
    p.data(True, request(), 1, 1.0)
    p.data(False, response(), 2, 2.0)
    p.data(False, wire[:cut], 3, 3.0)
    p.gap(False, length, 4, 4.0)
    p.data(False, wire[cut + length :], 5, 5.0)
    r = p.result()
    assert r is not None
    base = len(response())
    true = {f.offset: f for f in full.frames}
    for f in r.frames:
        t = true[f.offset]  # every frame we report starts where a real frame starts
        assert (f.opcode, f.length, f.fin) == (t.opcode, t.length, t.fin)
    before = [f for f in full.frames if f.offset - base + 2 + f.length <= cut]
    assert [f.offset for f in r.frames][: len(before)] == [f.offset for f in before]
    assert "stream.gap" in [a.code for a in r.anomalies]
