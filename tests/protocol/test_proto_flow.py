"""FlowParser without a handshake (the heuristic), gaps, and a capture starting mid-session."""

from __future__ import annotations

import os
import zlib

from test_proto_anomalies import M, request, response

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.flow import FlowParser
from analyzer.protocol.frames import serialize as ser


def flow(chunks: list[tuple[bool, bytes]], limits: Limits | None = None) -> FlowParser:
    p = FlowParser("h.pcap", 3, limits or Limits())
    for i, (orig, data) in enumerate(chunks, 1):
        p.data(orig, data, i, 100.0 + i)
    return p


def test_heuristic_both_directions() -> None:
    p = flow([(False, ser(1, b"server first")), (True, ser(1, b"client", mask=M))])
    assert p.interested
    r = p.result()
    assert r is not None and not r.handshake_seen and r.request is None
    assert r.client_is_orig  # the masked side (orig) is the client, whoever spoke first
    assert [(m.side, m.preview) for m in r.messages] == [
        ("server", b"server first"),
        ("client", b"client"),
    ]
    assert r.start == 101.0 and r.anomalies == ()


def test_heuristic_one_direction_needs_three_frames() -> None:
    p = flow([(True, ser(2, b"a")), (True, ser(2, b"b"))])
    assert p.interested
    p.data(True, ser(9, b"") + ser(1, b"c"), 3, 103.0)
    r = p.result()
    assert r is not None and not r.client_is_orig  # unmasked frames: orig is the server
    assert [m.preview for m in r.messages] == [b"a", b"b", b"c"]


def test_heuristic_false_positive_guards() -> None:
    cases = [
        [(True, os.urandom(64) + b"\xff")],  # arbitrary bytes
        [(True, b"\x00" * 32)],  # zero bytes would parse as empty continuations
        [(True, ser(1, b"a", mask=M)), (False, ser(1, b"b", mask=M))],  # both masked
        [(True, ser(1, b"\xff\xfe")), (False, ser(1, b"ok", mask=M))],  # text not UTF-8
        [(True, ser(8, b"\x03")), (False, ser(1, b"ok", mask=M))],  # 1-byte close body
        [(True, ser(9, b"p", fin=False))],  # fragmented control
        [(True, ser(2, b"abc", length_size=2))],  # non-minimal length
        [(True, ser(1, b"a", mask=M) + ser(1, b"b"))],  # mixed masking in one direction
    ]
    for chunks in cases:
        p = flow(chunks)  # type: ignore[arg-type]
        r = p.result()
        assert r is None, chunks
        assert not p.interested


def test_heuristic_undecided_until_end_accepts_two_frames() -> None:
    p = flow([(True, ser(2, b"a", mask=M) + ser(2, b"b", mask=M))])
    assert p.interested
    r = p.result()
    assert r is not None and r.client_is_orig and r.message_count["client"] == 2


def test_gap_inside_payload_keeps_frame_boundaries() -> None:
    p = flow([(True, request()), (False, response())])
    frame = ser(2, b"x" * 100)
    p.data(False, frame[:30], 3, 3.0)
    p.gap(False, 50, 4, 4.0)
    p.data(False, frame[80:] + ser(1, b"after"), 5, 5.0)
    r = p.result()
    assert r is not None
    assert [a.code for a in r.anomalies] == [A.STREAM_GAP]
    assert r.anomalies[0].location is not None and r.anomalies[0].location.offset == (
        len(response()) + 30
    )
    assert [(m.size, m.preview) for m in r.messages] == [(100, b""), (5, b"after")]


def test_gap_ending_exactly_at_frame_end() -> None:
    p = flow([(True, request()), (False, response())])
    frame = ser(2, b"x" * 100)
    p.data(False, frame[:30], 3, 3.0)
    p.gap(False, len(frame) - 30, 4, 4.0)
    p.data(False, ser(1, b"next"), 5, 5.0)
    r = p.result()
    assert r is not None and [m.size for m in r.messages] == [100, 4]
    assert r.frames[0].last_packet == 4


def test_gap_on_a_header_stops_that_direction_only() -> None:
    p = flow([(True, request()), (False, response())])
    p.data(False, ser(1, b"one"), 3, 3.0)
    p.gap(False, 7, 4, 4.0)
    p.data(False, ser(1, b"lost"), 5, 5.0)
    p.data(True, ser(1, b"client still parsed", mask=M), 6, 6.0)
    r = p.result()
    assert r is not None
    assert [a.code for a in r.anomalies] == [A.STREAM_GAP, A.STREAM_UNPARSED]
    p.gap(False, 5, 7, 7.0)
    r = p.result()
    assert r is not None and [a.code for a in r.anomalies][-1] == A.STREAM_GAP
    assert [m.preview for m in r.messages] == [b"one", b"client still parsed"]


def _session_compressed(texts: list[bytes]) -> list[bytes]:
    c = zlib.compressobj(wbits=-15)
    out = []
    for t in texts:
        data = c.compress(t) + c.flush(zlib.Z_SYNC_FLUSH)
        out.append(ser(1, data[:-4], rsv=4))
    return out


def test_mid_session_under_context_takeover_is_an_anomaly_not_garbage() -> None:
    texts = [b"the quick brown fox jumps " * 3, b"the quick brown fox jumps again", b"new words"]
    frames = _session_compressed(texts)
    # The whole session with its handshake inflates cleanly.
    ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    p = flow([(True, request()), (False, response(ext))] + [(False, f) for f in frames])
    r = p.result()
    assert r is not None and [m.preview for m in r.messages] == texts
    # Capture starting after the first message: the second refers to it.
    q = flow([(False, frames[1]), (False, frames[2]), (False, ser(9, b""))])
    r = q.result()
    assert r is not None and not r.handshake_seen
    assert [a.code for a in r.anomalies] == [A.MID_STREAM_CONTEXT]
    m1, m2 = r.messages
    assert m1.preview is None and m1.size == len(frames[1]) - 2  # the wire size
    assert m2.preview == b"new words"  # self-contained: inflates in a fresh window


def test_heuristic_then_frames_keep_coming_and_offsets() -> None:
    chunks = [(True, ser(1, b"a", mask=M)), (False, ser(1, b"b")), (False, ser(1, b"cc"))]
    p = flow(chunks)
    p.data(True, ser(1, b"d", mask=M), 9, 109.0)
    r = p.result()
    assert r is not None
    assert [(f.side, f.offset, f.packet) for f in r.frames] == [
        ("client", 0, 1),
        ("server", 0, 2),
        ("server", 3, 3),
        ("client", 7, 9),
    ]


def test_gap_before_any_data_shifts_offsets() -> None:
    p = FlowParser("h.pcap", 3, Limits())
    p.gap(False, 1000, 1, 1.0)
    p.data(False, ser(1, b"x") * 3, 2, 2.0)
    r = p.result()
    assert r is not None and [f.offset for f in r.frames] == [1000, 1003, 1006]


def test_result_can_be_taken_midway_and_bytes_may_be_views() -> None:
    p = flow([(True, request()), (False, response())])
    p.data(False, memoryview(ser(1, b"one", fin=False)), 3, 3.0)
    early = p.result()
    assert early is not None and [a.code for a in early.anomalies] == [A.MESSAGE_INCOMPLETE]
    p.data(False, bytearray(ser(0, b" two")), 4, 4.0)
    late = p.result()
    assert late is not None and late.anomalies == ()
    assert [m.preview for m in late.messages] == [b"one two"]


def test_gap_during_heuristic_decides_on_what_was_seen() -> None:
    p = flow([(True, ser(1, b"a", mask=M) + ser(1, b"b", mask=M))])
    p.gap(True, 100, 2, 102.0)
    p.data(True, ser(1, b"lost sync", mask=M), 3, 103.0)
    r = p.result()
    assert r is not None and [m.preview for m in r.messages] == [b"a", b"b"]
    assert [a.code for a in r.anomalies] == [A.STREAM_GAP, A.STREAM_UNPARSED]
    q = flow([(True, ser(1, b"a", mask=M))])
    q.gap(True, 100, 2, 102.0)
    assert not q.interested and q.result() is None
