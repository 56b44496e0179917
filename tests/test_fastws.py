"""analyzer._fastws (the compiled frame reader and WebSocket fast path) against the Python
reference (protocol/frames, protocol/messages, protocol/flow): the same records both ways.

- every packet capture under tests/data (the shared corpus is copied there), read whole both ways;
- hypothesis: random frame sequences (valid and invalid headers, masks, fragments with
  control frames between them, permessage-deflate and deflate-frame with real and broken
  compressed data, closes, invalid UTF-8) cut into random chunks, with gaps, through a
  ``FlowParser`` (handshake or none) and through bare frame readers.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import accel
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.protocol import frames as pyframes
from analyzer.protocol.flow import FlowParser, FlowResult
from analyzer.protocol.frames import serialize
from analyzer.session.build_pcap import read_packet_capture
from analyzer.session.model import Capture

if not accel.available()["_fastws"]:
    pytest.skip("analyzer._fastws is not built", allow_module_level=True)

from analyzer import _fastws  # noqa: E402

TESTS = Path(__file__).resolve().parent
SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")
CAPTURES = sorted(
    p for p in (TESTS / "data").rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
)
# Small enough to cross the skip, preview, record and inflate limits in real captures.
SMALL = Limits(
    max_frame_bytes=200,
    max_preview_bytes=5,
    max_messages_per_connection=7,
    max_decompressed_bytes=300,
)


def _both(run: Any) -> tuple[Any, Any]:
    before = accel.pure()
    try:
        accel.set_pure(False)
        fast = run()
        accel.set_pure(True)
        slow = run()
    finally:
        accel.set_pure(before)
    return fast, slow


def _first_difference(fast: Capture, slow: Capture) -> str:
    if len(fast.connections) != len(slow.connections):
        return f"{len(fast.connections)} connections != {len(slow.connections)}"
    for a, b in zip(fast.connections, slow.connections, strict=True):
        for name in ("frames", "messages", "anomalies", "close", "end", "request", "response"):
            x, y = getattr(a, name), getattr(b, name)
            if x != y:
                if isinstance(x, tuple) and isinstance(y, tuple):
                    i = next(
                        (i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), None
                    )
                    if i is not None:
                        return f"{a.id}.{name}[{i}]: {x[i]!r} != {y[i]!r}"
                return f"{a.id}.{name}: {x!r} != {y!r}"
    return "capture-level fields differ"


def test_there_are_captures_and_the_module_is_used() -> None:
    assert len(CAPTURES) > 90  # 97 in tests/data today
    before = accel.pure()
    try:
        accel.set_pure(False)
        parser = FlowParser("c", 0, DEFAULT_LIMITS)
        parser.data(True, _request(), 1, 1.0)
        parser.data(False, _response(""), 2, 2.0)
        assert isinstance(parser._readers[0], _fastws.FrameReader)  # type: ignore[index]
        accel.set_pure(True)
        parser = FlowParser("c", 0, DEFAULT_LIMITS)
        parser.data(True, _request(), 1, 1.0)
        parser.data(False, _response(""), 2, 2.0)
        assert isinstance(parser._readers[0], pyframes.FrameReader)  # type: ignore[index]
    finally:
        accel.set_pure(before)


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, SMALL], ids=["default", "small"])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_capture_both_ways(path: Path, limits: Limits) -> None:
    def run() -> Capture | str:
        try:
            return read_packet_capture(path, limits=limits)
        except Exception as exc:  # an unreadable capture must fail the same way
            return f"{type(exc).__name__}: {exc}"

    fast, slow = _both(run)
    if isinstance(fast, Capture) and isinstance(slow, Capture) and fast != slow:
        pytest.fail(_first_difference(fast, slow))
    assert fast == slow


# -- generated traffic -------------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
EXTENSIONS = [
    "",
    "permessage-deflate",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10",
    "x-webkit-deflate-frame",
    "permessage-deflate, x-other",
    None,  # no handshake: the heuristic decides
]


def _request() -> bytes:
    return (
        "GET /chat HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _response(ext: str) -> bytes:
    head = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {ACCEPT}\r\n"
    )
    if ext:
        head += f"Sec-WebSocket-Extensions: {ext}\r\n"
    return (head + "\r\n").encode()


TEXTS = st.one_of(
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),  # mostly invalid UTF-8
    st.sampled_from([b"", "h\u00e9llo \u20ac \U0001f600".encode(), b"\xed\xa0\x80", b"\xf4\x90"]),
    st.integers(0, 3000).map(lambda n: b"abc\xc3\xa9" * n),
)


@st.composite
def messages(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """One item of traffic: a message (maybe fragmented and compressed, maybe with control
    frames between its fragments), a control frame, or a raw frame with any header."""
    side = draw(st.sampled_from(["client", "server"]))
    kind = draw(st.sampled_from(["message", "message", "message", "control", "raw"]))
    wrong_mask = draw(st.integers(0, 20)) == 0
    masked = (side == "client") != wrong_mask
    if kind == "control":
        opcode = draw(st.sampled_from([8, 9, 10]))
        if opcode == 8:
            code = draw(st.sampled_from([1000, 1001, 1005, 1008, 999, 3000, 4999, 5000]))
            body = draw(
                st.sampled_from([b"", b"\x03", code.to_bytes(2, "big") + draw(TEXTS)[:100]])
            )
        else:
            body = draw(st.binary(max_size=130))
        return [(side, ("frame", opcode, body, True, 0, masked, None))]
    if kind == "raw":
        return [
            (
                side,
                (
                    "frame",
                    draw(st.integers(0, 15)),
                    draw(st.binary(max_size=300)),
                    draw(st.booleans()),
                    draw(st.integers(0, 7)),
                    draw(st.booleans()),
                    draw(st.sampled_from([None, 1, 2, 8])),
                ),
            )
        ]
    opcode = draw(st.sampled_from([1, 2]))
    payload = draw(TEXTS)
    compressed = draw(st.integers(0, 2)) == 0
    pieces = draw(st.integers(1, 4))
    garbage = compressed and draw(st.integers(0, 10)) == 0
    between = draw(st.lists(st.integers(0, pieces - 1), max_size=2))
    return [(side, ("message", opcode, payload, compressed, pieces, masked, garbage, between))]


def _fits(size: int | None, n: int) -> int | None:
    """A forced length encoding (1, 2 or 8 bytes) when it can hold ``n``, else None."""
    return size if size is None or n < (126, 0x10000, 1 << 64)[(1, 2, 8).index(size)] else None


def _mask(i: int) -> bytes:
    return bytes(((i * 37 + k * 11) & 0xFF) for k in range(4))


def _wire(items: list[list[tuple[str, Any]]], per_frame: bool) -> list[tuple[str, bytes]]:
    """The frames' bytes, in order, with a compressor per side (context takeover)."""
    comp = {
        "client": zlib.compressobj(wbits=-10),
        "server": zlib.compressobj(wbits=-10),
    }
    out: list[tuple[str, bytes]] = []
    n = 0
    for group in items:
        for side, spec in group:
            n += 1
            mask = _mask(n)
            if spec[0] == "frame":
                _, opcode, body, fin, rsv, masked, size = spec
                out.append(
                    (
                        side,
                        serialize(
                            opcode,
                            body,
                            fin=fin,
                            rsv=rsv,
                            mask=mask if masked else None,
                            length_size=_fits(size, len(body)),
                        ),
                    )
                )
                continue
            _, opcode, payload, compressed, pieces, masked, garbage, between = spec
            data = payload
            if compressed:
                c = comp[side]
                data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
                data = data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data
                if garbage:
                    data = b"\xff\xfe" + data
            step = max(1, -(-len(data) // pieces))
            parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                rsv = 4 if compressed and (i == 0 or per_frame) else 0
                out.append(
                    (
                        side,
                        serialize(
                            opcode if i == 0 else 0,
                            part,
                            fin=last,
                            rsv=rsv,
                            mask=mask if masked else None,
                        ),
                    )
                )
                for _ in range(between.count(i) if not last else 0):
                    out.append((side, serialize(9, b"between", mask=mask if masked else None)))
    return out


@st.composite
def traffic(draw: st.DrawFn) -> tuple[str | None, list[tuple[str, str, Any]], Limits]:
    """(extension header or None for no handshake, events, limits). Events are
    ("data", side, chunk) and ("gap", side, length), in capture order."""
    ext = draw(st.sampled_from(EXTENSIONS))
    items = draw(st.lists(messages(), max_size=14))
    if ext is None and draw(st.booleans()):
        # Give the no-handshake heuristic traffic it can accept: messages only.
        items = [g for g in items if all(spec[0] == "message" for _, spec in g)]
    per_frame = ext is not None and "deflate-frame" in ext
    wire = _wire(items, per_frame)
    # Consecutive frames of one side make a run; each run is cut at random places.
    runs: list[tuple[str, bytes]] = []
    for side, data in wire:
        if runs and runs[-1][0] == side and draw(st.booleans()):
            runs[-1] = (side, runs[-1][1] + data)
        else:
            runs.append((side, data))
    events: list[tuple[str, str, Any]] = []
    for side, data in runs:
        pos = 0
        while pos < len(data):
            size = draw(st.sampled_from([1, 2, 3, 7, 64, 1000, 1 << 20]))
            chunk = data[pos : pos + size]
            pos += len(chunk)
            if draw(st.integers(0, 40)) == 0:
                events.append(("gap", side, len(chunk)))
            else:
                events.append(("data", side, chunk))
    limits = draw(
        st.sampled_from(
            [
                DEFAULT_LIMITS,
                Limits(max_frame_bytes=100, max_preview_bytes=3),
                Limits(max_messages_per_connection=4, max_decompressed_bytes=50),
                Limits(max_preview_bytes=0, max_frame_bytes=20000),
            ]
        )
    )
    return ext, events, limits


def _run_flow(ext: str | None, events: list[tuple[str, str, Any]], limits: Limits) -> Any:
    parser = FlowParser("c", 3, limits)
    packet = 0
    seen: list[Any] = []
    if ext is not None:
        parser.data(True, _request(), 1, 1.0)
        parser.data(False, _response(ext), 2, 2.0)
        packet = 2
    for kind, side, value in events:
        packet += 1
        from_orig = side == "client"
        if kind == "data":
            parser.data(from_orig, value, packet, 10.0 + packet)
        else:
            parser.gap(from_orig, value, packet, 10.0 + packet)
        if packet % 5 == 0:
            seen.append(parser.result())  # results mid-way must not disturb the parse
    seen.append(parser.result())
    return seen


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_same_flow_results_both_ways(case: tuple[str | None, list[Any], Limits]) -> None:
    ext, events, limits = case
    fast, slow = _both(lambda: _run_flow(ext, events, limits))
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        if isinstance(a, FlowResult) and isinstance(b, FlowResult):
            assert a.frames == b.frames
            assert a.messages == b.messages
            assert a.closes == b.closes
            assert a.anomalies == b.anomalies
        assert a == b


def test_flow_results_cover_the_fast_and_the_python_cases() -> None:
    # A hand-made flow through every kind of frame the fast path takes or hands back,
    # compared both ways; the records themselves are checked against what was sent.
    c = zlib.compressobj(wbits=-15)
    deflated = c.compress(b'{"op": "hello"}') + c.flush(zlib.Z_SYNC_FLUSH)
    client = [
        serialize(1, "h\u00e9llo".encode(), mask=b"abcd"),
        serialize(2, bytes(range(200)), fin=False, mask=b"abcd"),
        serialize(9, b"p", mask=b"abcd"),
        serialize(0, b"tail", mask=b"abcd"),
        serialize(1, deflated[:-4], rsv=4, mask=b"wxyz"),
        serialize(1, b"\xff\xfe", mask=b"abcd"),  # invalid UTF-8: the Python path
        serialize(8, b"\x03\xe8bye", mask=b"abcd"),
    ]
    server = [serialize(2, b"x" * 5000), serialize(10, b"p"), serialize(8, b"\x03\xe8")]
    events: list[tuple[str, str, Any]] = [("data", "client", f) for f in client[:4]]
    events.append(("data", "server", server[0][:100]))
    events.append(("data", "server", server[0][100:] + server[1]))
    events += [("data", "client", f) for f in client[4:]]
    events.append(("data", "server", server[2]))
    fast, slow = _both(lambda: _run_flow("permessage-deflate", events, DEFAULT_LIMITS))
    assert fast == slow
    result = fast[-1]
    assert [m.size for m in result.messages] == [6, 204, 5000, 15, 2]
    assert result.messages[3].preview == b'{"op": "hello"}'
    assert result.messages[3].compressed
    assert [f.opcode for f in result.frames] == [1, 2, 9, 0, 2, 10, 1, 1, 8, 8]
    assert [a.code for a in result.anomalies] == ["message.invalid_utf8"]
    assert [(x.side, x.code) for x in result.closes] == [("client", 1000), ("server", 1000)]


# -- the frame reader alone ---------------------------------------------------------------


def _reader_run(cls: Any, chunks: list[tuple[str, Any]], limit: int) -> Iterator[Any]:
    reader = cls(limit, 7)
    for i, (kind, value) in enumerate(chunks):
        if kind == "data":
            yield reader.feed(value, i, float(i))
        else:
            yield reader.gap(value, i, float(i))
        yield reader.offset, reader.lost, reader.in_payload, reader.pending
    yield reader.unfinished()


@st.composite
def byte_streams(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], int]:
    frames = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=20),  # anything
                st.builds(
                    lambda op, body, fin, rsv, m, size: serialize(
                        op,
                        body,
                        fin=fin,
                        rsv=rsv,
                        mask=b"\x01\x80\xff\x00" if m else None,
                        length_size=_fits(size, len(body)),
                    ),
                    st.integers(0, 15),
                    st.one_of(st.binary(max_size=300), st.just(b"z" * 70000)),
                    st.booleans(),
                    st.integers(0, 7),
                    st.booleans(),
                    st.sampled_from([None, 1, 2, 8]),
                ),
                st.sampled_from(
                    [
                        b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x05abcde",  # 64-bit top bit
                        b"\x02\x7f\x40\x00\x00\x00\x00\x00\x00\x00abc",  # 2**62: skipped
                        b"\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x03abc",  # non-minimal
                        b"\x82\x7e\x00\x02ab",
                        b"\x81\xfe\x00\x80" + b"\x00" * 4 + b"m" * 128,
                    ]
                ),
            ),
            max_size=12,
        )
    )
    data = b"".join(frames)
    chunks: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(data):
        size = draw(st.sampled_from([1, 2, 3, 5, 9, 14, 100, 5000, 1 << 20]))
        chunk = data[pos : pos + size]
        pos += len(chunk)
        if draw(st.integers(0, 15)) == 0:
            chunks.append(("gap", len(chunk)))
        else:
            chunks.append(("data", chunk))
    if draw(st.booleans()):
        chunks.append(("data", b""))
    limit = draw(st.sampled_from([0, 3, 100, 1000, 16 * 1024 * 1024]))
    return chunks, limit


@settings(max_examples=500, deadline=None)
@given(byte_streams())
def test_same_frame_records_both_ways(case: tuple[list[tuple[str, Any]], int]) -> None:
    chunks, limit = case
    fast = list(_reader_run(_fastws.FrameReader, chunks, limit))
    slow = list(_reader_run(pyframes.FrameReader, chunks, limit))
    assert fast == slow
    for out in fast:
        if isinstance(out, list):
            assert all(type(rf) is pyframes.RawFrame for rf in out)


def test_limits_too_large_for_c_integers_use_the_python_path() -> None:
    huge = Limits(max_frame_bytes=1 << 70, max_decompressed_bytes=1 << 64)
    events: list[tuple[str, str, Any]] = [
        ("data", "client", serialize(1, b"hi", mask=b"abcd")),
        ("data", "server", serialize(2, b"x" * 300)),
    ]
    fast, slow = _both(lambda: _run_flow("permessage-deflate", events, huge))
    assert fast == slow
    assert [m.size for m in fast[-1].messages] == [2, 300]
    before = accel.pure()
    try:
        accel.set_pure(False)
        parser = FlowParser("c", 0, huge)
        parser.data(True, _request(), 1, 1.0)
        parser.data(False, _response(""), 2, 2.0)
        assert isinstance(parser._readers[0], pyframes.FrameReader)  # type: ignore[index]
    finally:
        accel.set_pure(before)
