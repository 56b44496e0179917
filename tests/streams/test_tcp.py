"""TCP flows and reassembly (analyzer.streams.tcp).

The reassembler is driven with segment tuples as the reader yields them. The bytes come
from a real flow (the client's stream of zeek wstunnel-ssh.pcap, 258 packets of SSH in
WebSocket frames) cut, reordered and duplicated by hypothesis; the property is that the
same bytes come out, or a gap is marked where bytes are missing: never other bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.inputs.pcap import PacketReader, Segment, reverse_key
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.streams.tcp import ACK, FIN, RST, SYN, TcpFlow, TcpTracker

DATA = Path(__file__).resolve().parents[1] / "data"
KEY = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0xC3, 0x50, 0x1F, 0x90])  # 10.0.0.1:50000 -> :8080
RKEY = reverse_key(KEY)


class Recorder:
    """A sink that keeps what it was given, per direction: ("data", bytes) or ("gap", n)."""

    def __init__(self, flow: TcpFlow, stop_after: int | None = None) -> None:
        self.flow = flow
        self.pieces: dict[bool, list[tuple[str, object]]] = {True: [], False: []}
        self.packets: list[int] = []
        self.stop_after = stop_after
        self.calls = 0

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        self.calls += 1
        self.pieces[from_orig].append(("data", chunk))
        self.packets.append(packet)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        self.pieces[from_orig].append(("gap", length))

    @property
    def interested(self) -> bool:
        return self.stop_after is None or self.calls < self.stop_after

    def stream(self, from_orig: bool) -> bytes:
        return b"".join(p for k, p in self.pieces[from_orig] if k == "data")  # type: ignore[misc]

    def layout(self, from_orig: bool) -> list[int | bytes]:
        """Bytes with gaps as lengths, adjacent data joined."""
        out: list[int | bytes] = []
        for kind, value in self.pieces[from_orig]:
            if kind == "data" and out and isinstance(out[-1], bytes):
                out[-1] += value  # type: ignore[operator]
            else:
                out.append(value)  # type: ignore[arg-type]
        return out


def track(
    segments: list[Segment], limits: Limits = DEFAULT_LIMITS, stop_after: int | None = None
) -> tuple[TcpTracker, list[TcpFlow], dict[int, Recorder]]:
    sinks: dict[int, Recorder] = {}

    def factory(flow: TcpFlow) -> Recorder:
        sinks[flow.stream] = Recorder(flow, stop_after)
        return sinks[flow.stream]

    tracker = TcpTracker("t.pcap", limits, factory)
    flows = list(tracker.run(segments))
    return tracker, flows, sinks


def seg(
    n: int, seq: int, payload: bytes = b"", flags: int = ACK, key: bytes = KEY, missing: int = 0
) -> Segment:
    return (n, 1000.0 + n / 1000, key, seq & 0xFFFFFFFF, flags, payload, missing)


def real_client_stream() -> bytes:
    """The client's bytes (after the SYN) of the first connection in wstunnel-ssh.pcap."""
    _, flows, sinks = track(list(PacketReader(DATA / "pcap" / "zeek" / "wstunnel-ssh.pcap")))
    first = min(sinks)
    data = sinks[first].stream(True)
    assert sinks[first].layout(True) == [data]  # the capture itself has no hole
    return data


STREAM = real_client_stream()


def test_real_stream_is_long_enough_to_matter() -> None:
    assert len(STREAM) > 4000
    assert STREAM.startswith(b"GET /")


def _cuts(draw: st.DrawFn, total: int) -> list[tuple[int, int]]:
    points = draw(st.lists(st.integers(1, total - 1), max_size=40, unique=True))
    bounds = [0, *sorted(points), total]
    return list(zip(bounds, bounds[1:], strict=False))


@st.composite
def shuffled(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    isn = draw(st.sampled_from([0, 1000, 0xFFFFFF00, 0xFFFFFFFF, 0x7FFFFFFF]))
    pieces = _cuts(draw, len(STREAM))
    dups = draw(st.lists(st.sampled_from(pieces), max_size=10))
    # Retransmissions with other boundaries: ranges overlapping several pieces.
    spans = draw(
        st.lists(
            st.tuples(st.integers(0, len(STREAM) - 1), st.integers(1, 3000)).map(
                lambda t: (t[0], min(len(STREAM), t[0] + t[1]))
            ),
            max_size=6,
        )
    )
    order = draw(st.permutations(pieces + dups + spans))
    return isn, order


def _segments(isn: int, order: list[tuple[int, int]], fin: bool) -> list[Segment]:
    out = [seg(1, isn, flags=SYN), seg(2, 5000, flags=SYN | ACK, key=RKEY)]
    for i, (a, b) in enumerate(order):
        out.append(seg(3 + i, isn + 1 + a, STREAM[a:b]))
    if fin:
        n = len(out) + 1
        out.append(seg(n, isn + 1 + len(STREAM), flags=FIN | ACK))
        out.append(seg(n + 1, 5001, flags=FIN | ACK, key=RKEY))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled(), st.booleans())
def test_reordered_and_duplicated_segments_give_the_same_bytes(
    case: tuple[int, list[tuple[int, int]]], fin: bool
) -> None:
    isn, order = case
    tracker, flows, sinks = track(_segments(isn, order, fin))
    assert len(flows) == 1 and flows[0].stream == 0
    assert sinks[0].layout(True) == [STREAM]
    assert flows[0].end == ("fin" if fin else None)
    assert not flows[0].anomalies
    assert tracker.live == {}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled(), st.data())
def test_missing_segments_are_marked_gaps_never_filled(
    case: tuple[int, list[tuple[int, int]]], data: st.DataObject
) -> None:
    isn, order = case
    dropped = data.draw(st.sets(st.sampled_from(sorted(set(order)))))
    kept = [p for p in order if p not in dropped]
    _, _, sinks = track(_segments(isn, kept, fin=True))
    if not kept:
        # Nothing carried data: no sink was made, or it saw only the gap up to the FIN.
        assert all(r.stream(True) == b"" for r in sinks.values())
        return
    layout = sinks[0].layout(True)
    have = [False] * len(STREAM)
    for a, b in kept:
        have[a:b] = [True] * (b - a)
    pos = 0
    for piece in layout:
        if isinstance(piece, int):
            assert piece > 0 and not any(have[pos : pos + piece])  # a gap: bytes we never had
            pos += piece
        else:
            assert piece == STREAM[pos : pos + len(piece)]  # data: exactly the original
            assert all(have[pos : pos + len(piece)])
            pos += len(piece)
    assert pos == len(STREAM)  # the FIN tells where the stream ends: the rest is a gap


def test_overlap_with_different_bytes_first_copy_wins() -> None:
    segs = [
        seg(1, 99, flags=SYN),
        seg(2, 110, b"WORLD"),  # held: bytes 10..15
        seg(3, 108, b"xxEVIL!!"),  # overlaps 10..15 with other bytes, then 1 new
        seg(4, 100, b"hello, w"),  # fills 0..8
    ]
    _, flows, sinks = track(segs)
    assert sinks[0].stream(True) == b"hello, wxxWORLD!"
    (anomaly,) = flows[0].anomalies
    assert anomaly.code == "tcp.overlap_conflict" and anomaly.packet == 3


def test_retransmission_is_dropped_silently() -> None:
    segs = [seg(1, 99, flags=SYN), seg(2, 100, b"abc"), seg(3, 100, b"abc"), seg(4, 101, b"bcde")]
    _, flows, sinks = track(segs)
    assert sinks[0].stream(True) == b"abcde"
    assert sinks[0].packets == [2, 4]
    assert not flows[0].anomalies


def test_buffer_limit_gives_up_the_hole() -> None:
    limits = replace(DEFAULT_LIMITS, max_buffered_bytes_per_flow=10)
    segs = [
        seg(1, 99, flags=SYN),
        seg(2, 100, b"ab"),
        seg(3, 106, b"0123456789"),
        seg(4, 116, b"!"),
    ]
    _, flows, sinks = track(segs, limits)
    assert sinks[0].layout(True) == [b"ab", 4, b"0123456789!"]
    assert [a.code for a in flows[0].anomalies] == ["tcp.buffer_limit"]


def test_snapshot_length_cut_is_a_gap() -> None:
    segs = [seg(1, 99, flags=SYN), seg(2, 100, b"abc", missing=5), seg(3, 108, b"next")]
    _, _, sinks = track(segs)
    assert sinks[0].layout(True) == [b"abc", 5, b"next"]


def test_capture_starting_mid_connection() -> None:
    segs = [
        seg(1, 5000, b"frame", key=RKEY),
        seg(2, 777, b"reply"),
        seg(3, 5005, b"more", key=RKEY),
    ]
    _, flows, sinks = track(segs)
    (flow,) = flows
    assert flow.key == RKEY  # the first sender is the originator
    assert sinks[0].stream(True) == b"framemore" and sinks[0].stream(False) == b"reply"
    assert flow.end is None and not flow.syn_seen


def test_syn_ack_first_makes_the_receiver_the_originator() -> None:
    segs = [
        seg(1, 5000, flags=SYN | ACK, key=RKEY),
        seg(2, 101, b"GET"),
        seg(3, 5001, b"HTTP", key=RKEY),
    ]
    _, flows, sinks = track(segs)
    assert flows[0].key == KEY
    assert sinks[0].stream(True) == b"GET" and sinks[0].stream(False) == b"HTTP"


def test_fin_both_ways_finishes_the_flow_and_late_packets_are_not_a_new_stream() -> None:
    segs = [
        seg(1, 99, flags=SYN),
        seg(2, 100, b"x"),
        seg(3, 101, flags=FIN | ACK),
        seg(4, 500, flags=FIN | ACK, key=RKEY),
        seg(5, 102),  # the last ACK
        seg(6, 1000, flags=SYN),  # port reused: a new connection
        seg(7, 1001, b"y"),
    ]
    tracker, flows, sinks = track(segs)
    assert [f.stream for f in flows] == [0, 1]
    assert flows[0].end == "fin" and flows[0].last_packet == 4
    assert sinks[1].stream(True) == b"y"
    assert tracker.streams == 2


def test_rst_ends_the_flow() -> None:
    segs = [
        seg(1, 99, flags=SYN),
        seg(2, 100, b"x"),
        seg(3, 0, flags=RST, key=RKEY),
        seg(4, 101, b"z"),
    ]
    _, flows, sinks = track(segs)
    assert len(flows) == 1 and flows[0].end == "rst"
    assert sinks[0].stream(True) == b"x"  # packet 4 belongs to the reset connection


def test_new_isn_on_a_live_flow_is_a_new_stream() -> None:
    segs = [seg(1, 99, flags=SYN), seg(2, 100, b"x"), seg(3, 7000, flags=SYN), seg(4, 7001, b"y")]
    _, flows, _ = track(segs)
    assert [(f.stream, f.end) for f in flows] == [(0, None), (1, None)]


def test_uninterested_sink_is_dropped_at_once() -> None:
    segs = [seg(1, 99, flags=SYN), seg(2, 100, b"SSH-2.0"), seg(3, 107, b"more"), seg(4, 111, b"!")]
    tracker, flows, sinks = track(segs, stop_after=1)
    assert flows == []  # never yielded
    assert sinks[0].packets == [2]  # nothing fed after it lost interest
    assert tracker.live == {} and tracker.dropped == 1
    assert tracker.streams == 1  # its later packets did not start a new stream


def test_open_flows_are_bounded() -> None:
    limits = replace(DEFAULT_LIMITS, max_open_flows=2)
    keys = [bytes([10, 0, 0, i, 10, 0, 0, 2, 0xC3, 0x50, 0x1F, 0x90]) for i in (1, 2, 3)]
    segs = [
        seg(1, 99, flags=SYN, key=keys[0]),
        seg(2, 99, flags=SYN, key=keys[1]),
        seg(3, 100, b"a", key=keys[1]),  # flow 1 seen again: flow 0 is least recent
        seg(4, 99, flags=SYN, key=keys[2]),
        seg(5, 100, b"c", key=keys[2]),
    ]
    tracker, flows, sinks = track(segs, limits)
    assert tracker.evicted == 1
    assert sorted(f.stream for f in flows) == [1, 2]  # flow 0 carried no data: no sink
    assert len(tracker.live) == 0


def test_evicted_flow_is_yielded_with_an_anomaly() -> None:
    limits = replace(DEFAULT_LIMITS, max_open_flows=1)
    other = bytes([10, 0, 0, 9, 10, 0, 0, 2, 0xC3, 0x50, 0x1F, 0x90])
    segs = [seg(1, 99, flags=SYN), seg(2, 100, b"a"), seg(3, 99, flags=SYN, key=other)]
    tracker, flows, _ = track(segs, limits)
    assert flows[0].stream == 0
    assert [a.code for a in flows[0].anomalies] == ["tcp.flow_evicted"]


def _streams_per_packet(path: Path) -> dict[int, int]:
    reader = PacketReader(path)
    out: dict[int, int] = {}
    tracker = TcpTracker(str(path), DEFAULT_LIMITS, lambda flow: Recorder(flow))

    def feed() -> Iterator[Segment]:
        last: Segment | None = None
        for s in reader:
            if last is not None:
                out[last[0]] = _stream_of(tracker, last[2])
            yield s
            last = s
        if last is not None:
            out[last[0]] = _stream_of(tracker, last[2])

    for _ in tracker.run(feed()):
        pass
    return out


def _stream_of(tracker: TcpTracker, key: bytes) -> int:
    half = tracker.live.get(key)
    return half.flow.stream if half is not None else tracker.done[key]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
@pytest.mark.parametrize(
    "name", ["arkime/arkime_synthetic.pcap", "nDPI/1kxun.pcap", "zeek/wstunnel-ssh.pcap"]
)
def test_stream_numbers_are_wiresharks(name: str) -> None:
    path = DATA / "pcap" / name
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {int(a): int(b) for a, b in (line.split("\t") for line in out.splitlines())}
    assert _streams_per_packet(path) == expected


def test_uninterested_flow_kept_to_its_end_when_asked() -> None:
    # A rejected upgrade: the parser is done with the bytes, the builder wants the FIN.
    segs = [
        seg(1, 99, flags=SYN),
        seg(2, 100, b"GET"),
        seg(3, 103, b"more"),
        seg(4, 107, flags=FIN | ACK),
        seg(5, 500, flags=FIN | ACK, key=RKEY),
    ]
    sinks: dict[int, Recorder] = {}

    def factory(flow: TcpFlow) -> Recorder:
        sinks[flow.stream] = Recorder(flow, stop_after=1)
        return sinks[flow.stream]

    tracker = TcpTracker("t.pcap", DEFAULT_LIMITS, factory, keep=lambda flow: True)
    (flow,) = tracker.run(segs)
    assert flow.end == "fin" and flow.last_packet == 5
    assert sinks[0].packets == [2]  # its bytes were no longer fed
    assert tracker.live == {} and tracker.dropped == 0


def test_syn_after_a_flow_seen_mid_connection_is_a_new_stream() -> None:
    segs = [seg(1, 5000, b"old data"), seg(2, 9000, flags=SYN), seg(3, 9001, b"new")]
    _, flows, sinks = track(segs)
    assert [f.stream for f in flows] == [0, 1]
    assert sinks[1].stream(True) == b"new"
