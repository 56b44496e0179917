"""The compiled record loop and TCP loop (analyzer/_fastcap.pyx) against the Python reference.

``PacketReader`` and ``TcpTracker`` look the compiled module up when they are made
(``analyzer.accel``); each test here runs the same input both ways in one process and
compares everything that can be observed: every segment tuple, packet numbers, reader and
flow anomalies in their order, counters, every call a sink receives (with its packet number
and time) and the flows the tracker yields, in order, with their state.

Inputs: every pcap/pcapng file under tests/data (the shared corpus is copied there), also
gzip-compressed;
captures written here from hypothesis-drawn TCP conversations (random segmentation, order,
duplicates, conflicting overlaps, snapped segments, SYN/FIN/RST, several flows, tight
limits) in every link type, byte order and block kind the reader knows, and real captures
with random bytes damaged.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import accel
from analyzer.errors import InputError
from analyzer.inputs.pcap import PacketReader, Segment
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.streams.tcp import ACK, FIN, RST, SYN, TcpFlow, TcpTracker

pytestmark = pytest.mark.skipif(
    not accel.available()["_fastcap"],
    reason="analyzer._fastcap is not built (pip install -e . compiles it)",
)

DATA = Path(__file__).resolve().parent / "data"


def _files() -> list[Path]:
    """Every capture under tests/data (the shared corpus's pcaps are all there), each
    content once."""
    seen: set[str] = set()
    out = []
    for root in (DATA,):
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".cap", ".gz")):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    out.append(p)
    return out


FILES = _files()
SMALL = [p for p in FILES if p.stat().st_size < 300_000]


@contextmanager
def mode(pure: bool) -> Iterator[None]:
    before = accel.pure()
    accel.set_pure(pure)
    try:
        yield
    finally:
        accel.set_pure(before)


def both(run: Callable[[], Any]) -> tuple[Any, Any]:
    """``run()`` with the Python code only, then with the compiled loops."""
    with mode(True):
        slow = run()
    with mode(False):
        fast = run()
    return slow, fast


# -- what can be observed ---------------------------------------------------------------------


def reader_state(reader: PacketReader) -> dict[str, object]:
    return {
        "format": reader.format,
        "packets": reader.packets,
        "creator": reader.creator,
        "hardware": reader.hardware,
        "os": reader.os,
        "secrets": list(reader.secrets),
        "linktypes": set(reader.linktypes),
        "truncated": reader.truncated,
        "snapped": reader.snapped,
        "anomaly_counts": dict(reader.anomaly_counts),
        "anomalies": reader.anomalies,
    }


def read_all(path: Path) -> dict[str, object]:
    reader = PacketReader(path)
    try:
        segments: object = list(reader)
    except InputError as exc:
        segments = ("InputError", exc.message)
    return {"segments": segments, **reader_state(reader)}


def half_state(flow: TcpFlow) -> list[tuple[object, ...]]:
    return [
        (h.from_orig, h.nxt, h.delivered, h.held, h.fin, h.isn, h.pending)
        for h in (flow.orig, flow.resp)
    ]


def flow_state(flow: TcpFlow) -> tuple[object, ...]:
    return (
        flow.stream,
        flow.key,
        flow.first_packet,
        flow.first_time,
        flow.last_packet,
        flow.last_time,
        flow.mark,
        flow.end,
        flow.end_time,
        flow.syn_seen,
        list(flow.anomalies),
        dict(flow.anomaly_counts),
        flow.finished,
        flow.dropped,
        half_state(flow),
        type(flow.sink).__name__,
    )


class Log:
    """A sink per flow, all writing to one log; stops being interested after ``stop_after``
    calls when told to."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.stop_after = stop_after

    def factory(self, flow: TcpFlow) -> Sink:
        self.calls.append(("new", flow.stream, flow.first_packet))
        return Sink(self, flow.stream)


class Sink:
    def __init__(self, log: Log, stream: int) -> None:
        self.log = log
        self.stream = stream
        self.n = 0

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        self.n += 1
        self.log.calls.append(("data", self.stream, from_orig, chunk, packet, time))

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        self.n += 1
        self.log.calls.append(("gap", self.stream, from_orig, length, packet, time))

    @property
    def interested(self) -> bool:
        return self.log.stop_after is None or self.n < self.log.stop_after


def track(
    segments: Iterable[Segment] | PacketReader,
    limits: Limits = DEFAULT_LIMITS,
    stop_after: int | None = None,
    keep: Callable[[TcpFlow], bool] | None = None,
) -> dict[str, object]:
    log = Log(stop_after)
    tracker = TcpTracker("t.pcap", limits, log.factory, keep)
    yielded = []
    error: tuple[str, str] | None = None
    try:
        for flow in tracker.run(segments):
            yielded.append(flow_state(flow))
            log.calls.append(("yield", flow.stream))
    except InputError as exc:
        error = ("InputError", exc.message)
    out: dict[str, object] = {
        "calls": log.calls,
        "flows": yielded,
        "error": error,
        "counters": (tracker.open, tracker.streams, tracker.evicted, tracker.dropped),
        "live": len(tracker.live),
        "done": dict(tracker.done),
    }
    if isinstance(segments, PacketReader):
        out["reader"] = reader_state(segments)
    return out


def assert_same(slow: dict[str, object], fast: dict[str, object]) -> None:
    assert slow.keys() == fast.keys()
    for k in slow:
        assert slow[k] == fast[k], k
    assert slow == fast


# -- the switch is honoured -------------------------------------------------------------------


def test_the_reader_and_tracker_take_the_loop_they_were_made_with() -> None:
    path = DATA / "pcap" / "zeek" / "message-too-big-status.pcap"
    with mode(False):
        fast_reader = PacketReader(path)
        fast_tracker = TcpTracker("t", DEFAULT_LIMITS, Log().factory)
    with mode(True):
        slow_reader = PacketReader(path)
        slow_tracker = TcpTracker("t", DEFAULT_LIMITS, Log().factory)
    fast_it, slow_it = iter(fast_reader), iter(slow_reader)
    assert type(fast_it).__name__ == "Scanner" and type(fast_it).__module__ == "analyzer._fastcap"
    assert type(slow_it).__name__ == "generator"
    assert list(fast_it) == list(slow_it) and len(fast_reader.anomalies) == 0
    assert fast_tracker._fast is not None and slow_tracker._fast is None


# -- every real capture -----------------------------------------------------------------------


def test_there_are_captures_to_compare() -> None:
    assert len(FILES) > 50
    assert any(p.suffix == ".pcapng" for p in FILES) and any(p.suffix == ".pcap" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_capture_gives_the_same_segments(path: Path) -> None:
    slow, fast = both(lambda: read_all(path))
    assert_same(slow, fast)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_capture_gives_the_same_flows(path: Path) -> None:
    slow, fast = both(lambda: track(PacketReader(path)))
    assert_same(slow, fast)
    # ... with flows evicted, held bytes given up and sinks losing interest on the way.
    tight = Limits(max_open_flows=2, max_buffered_bytes_per_flow=300)
    for stop_after, keep in ((None, None), (2, None), (1, "even")):
        slow, fast = both(
            lambda: track(PacketReader(path), tight, stop_after, _keep(keep))  # noqa: B023
        )
        assert_same(slow, fast)


def _mixed(path: Path, reader_pure: bool, tracker_pure: bool) -> dict[str, object]:
    with mode(reader_pure):
        reader = PacketReader(path)
    with mode(tracker_pure):
        log = Log()
        tracker = TcpTracker("t.pcap", DEFAULT_LIMITS, log.factory)
    flows = [flow_state(f) for f in tracker.run(reader)]
    return {"calls": log.calls, "flows": flows, "reader": reader_state(reader)}


@pytest.mark.parametrize("path", SMALL[:40], ids=lambda p: str(p.relative_to(p.parents[2])))
def test_a_compiled_tracker_reads_a_python_reader_and_the_reverse(path: Path) -> None:
    reference = _mixed(path, True, True)
    assert _mixed(path, True, False) == reference
    assert _mixed(path, False, True) == reference


@pytest.mark.parametrize("path", SMALL, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_capture_gzip_compressed_and_cut(path: Path, tmp_path: Path) -> None:
    packed = gzip.compress(path.read_bytes())
    whole = tmp_path / (path.name + ".gz")
    whole.write_bytes(packed)
    cut = tmp_path / ("cut-" + path.name + ".gz")
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    for p in (whole, cut):
        slow, fast = both(lambda: read_all(p))  # noqa: B023 - used at once
        assert_same(slow, fast)
        slow, fast = both(lambda: track(PacketReader(p)))  # noqa: B023
        assert_same(slow, fast)


def test_the_compiled_loop_decodes_the_common_case_itself() -> None:
    # The comparisons mean something only if the compiled loop decoded most packets itself
    # rather than handing them to the reader's _decode.
    big = max(FILES, key=lambda p: p.stat().st_size)
    handed: list[int] = []
    with mode(False):
        reader = PacketReader(big)
        decode = reader._decode

        def counting(
            buf: bytes, start: int, end: int, linktype: int, number: int
        ) -> tuple[bytes, int, int, int, int] | None:
            handed.append(number)
            return decode(buf, start, end, linktype, number)

        reader._decode = counting  # type: ignore[method-assign]
        segments = list(reader)
    assert len(segments) > 1000
    assert len(handed) < reader.packets // 10


# -- ways out of a pass -----------------------------------------------------------------------


def _abandon(path: Path, after: int, close: bool) -> dict[str, object]:
    reader = PacketReader(path)
    it = iter(reader)
    taken = [next(it) for _ in range(after)]
    if close:
        it.close()  # type: ignore[attr-defined]
        closed = reader_state(reader)
    del it
    gc.collect()
    return {"taken": taken, "closed": closed if close else None, **reader_state(reader)}


def test_a_pass_abandoned_half_way_ends_as_the_python_generator_does() -> None:
    # (A pass dropped before its first segment is not compared: the Python generator then
    # never ran, and its file is left to the garbage collector with a ResourceWarning.)
    path = DATA / "pcap" / "zeek" / "wstunnel-ssh.pcap"
    for after in (1, 5):
        for close in (False, True):
            slow, fast = both(lambda: _abandon(path, after, close))  # noqa: B023
            assert_same(slow, fast)
        assert slow["packets"] not in (0, PacketReader(path).packets)


class Boom(Exception):
    pass


def _sink_raises(path: Path) -> dict[str, object]:
    reader = PacketReader(path)

    class Raiser:
        interested = True

        def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
            if packet > 20:
                raise Boom(packet)

        def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
            pass

    tracker = TcpTracker("t", DEFAULT_LIMITS, lambda flow: Raiser())
    try:
        list(tracker.run(reader))
    except Boom as exc:
        raised = exc.args
    gc.collect()
    return {"raised": raised, **reader_state(reader)}


def test_an_exception_from_a_sink_leaves_the_reader_as_the_python_loop_does() -> None:
    slow, fast = both(lambda: _sink_raises(DATA / "pcap" / "zeek" / "wstunnel-ssh.pcap"))
    assert_same(slow, fast)


# -- captures written from drawn TCP conversations --------------------------------------------

IP4 = (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
IP6 = (bytes(15) + b"\x01", b"\xfe\x80" + bytes(13) + b"\x02")


def ip_packet(
    v6: bool, key: tuple[bytes, bytes, int, int], seq: int, flags: int, payload: bytes, ihl: int
) -> bytes:
    src, dst, sport, dport = key
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    if v6:
        return struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src + dst + tcp
    options = bytes(ihl - 20)
    total = ihl + len(tcp)
    head = struct.pack("!BBHHHBBH", 0x40 | ihl >> 2, 0, total, 1, 0x4000, 64, 6, 0)
    return head + src + dst + options + tcp


def link_frame(linktype: int, packet: bytes, v6: bool, vlan: int, pad: int, e: str) -> bytes:
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == 1:
        tags = b"".join(struct.pack("!HH", t, 100) for t in (0x88A8, 0x8100)[2 - vlan :])
        return bytes(12) + tags + struct.pack("!H", ethertype) + packet + bytes(pad)
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), ethertype) + packet
    if linktype == 276:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, bytes(8)) + packet
    if linktype == 0:  # in the capturing host's byte order
        return struct.pack(e + "I", 30 if v6 else 2) + packet
    if linktype == 108:
        return struct.pack(">I", 24 if v6 else 2) + packet
    return packet  # 101, 228, 229, 12


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], bool]:
    """Events of up to three TCP connections, interleaved: (flow, from_orig, seq, flags,
    payload, missing). Each side's bytes are cut into pieces sent in any order, some twice,
    some overlapping with other bytes, some cut by the snapshot length."""
    v6 = draw(st.booleans())
    events: list[tuple[Any, ...]] = []
    for flow in range(draw(st.integers(1, 3))):
        isn = {
            True: draw(st.sampled_from([0, 1000, 0xFFFFFF80, 0xFFFFFFFF])),
            False: draw(st.integers(0, 0xFFFFFFFF)),
        }
        handshake = draw(st.sampled_from(["syn", "synack", "none", "reuse"]))
        if handshake in ("syn", "reuse"):
            events.append((flow, True, isn[True], SYN, b"", 0))
        if handshake in ("syn", "synack", "reuse"):
            events.append((flow, False, isn[False], SYN | ACK, b"", 0))
        for side in (True, False):
            size = draw(st.integers(0, 300))
            stream = bytes((i * 7 + flow * 31 + side) & 0xFF for i in range(size))
            cuts = sorted(draw(st.sets(st.integers(1, max(1, size - 1)), max_size=8)))
            bounds = [0, *[c for c in cuts if c < size], size]
            pieces = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
            pieces += draw(st.lists(st.sampled_from(pieces), max_size=3)) if pieces else []
            for a, b in pieces:
                data = stream[a:b]
                if draw(st.integers(0, 9)) == 0:  # a copy with other bytes
                    data = bytes(x ^ 0x55 for x in data)
                missing = draw(st.sampled_from([0, 0, 0, 0, min(3, b - a)]))
                seq = (isn[side] + 1 + a) & 0xFFFFFFFF
                events.append((flow, side, seq, ACK, data, missing))
            end = draw(st.sampled_from([None, None, FIN | ACK, RST, RST | ACK]))
            if end is not None:
                events.append((flow, side, (isn[side] + 1 + size) & 0xFFFFFFFF, end, b"", 0))
        if handshake == "reuse":  # the port used again with a new ISN
            events.append((flow, True, (isn[True] + 77777) & 0xFFFFFFFF, SYN, b"", 0))
            events.append((flow, True, (isn[True] + 77778) & 0xFFFFFFFF, ACK, b"x" * 5, 0))
    order = draw(st.permutations(events))
    # Some ACKs without data, as real captures have plenty.
    acks = draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    return list(order) + [(f, s, q, ACK, b"", 0) for f, s, q, *_ in acks], v6


def flow_key(flow: int, from_orig: bool, v6: bool) -> tuple[bytes, bytes, int, int]:
    a, b = IP6 if v6 else IP4
    key = (a, b, 40000 + flow, 8080)
    return key if from_orig else (b, a, 8080, 40000 + flow)


def as_tuples(events: list[tuple[Any, ...]], v6: bool) -> list[Segment]:
    out = []
    for n, (flow, side, seq, flags, payload, missing) in enumerate(events, 1):
        src, dst, sport, dport = flow_key(flow, side, v6)
        key = src + dst + struct.pack("!HH", sport, dport)
        out.append(
            (n, 1_700_000_000 + n / 7, key, seq, flags, payload[: len(payload) - missing], missing)
        )
    return out


LINKTYPES = [1, 113, 276, 101, 228, 229, 0, 108, 12]


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "linktype": draw(st.sampled_from(LINKTYPES)),
        "vlan": draw(st.integers(0, 2)),
        "pad": draw(st.sampled_from([0, 0, 6])),
        "ihl": draw(st.sampled_from([20, 20, 24])),
        "endian": draw(st.sampled_from("<>")),
        "nano": draw(st.booleans()),
        "pcapng": draw(st.booleans()),
        "blocks": draw(st.lists(st.sampled_from(["epb", "epb", "epb", "pb", "spb"]), min_size=1)),
        "tsresol": draw(st.sampled_from([None, 6, 9, 0x8A, 3, 19])),
        "tsoffset": draw(st.sampled_from([0, 0, 3600, -(1 << 40)])),
        "sections": draw(st.integers(1, 2)),
    }


def write_capture(path: Path, events: list[tuple[Any, ...]], v6: bool, lay: dict[str, Any]) -> None:
    linktype = lay["linktype"]
    if v6 and linktype == 228:
        linktype = 229
    if not v6 and linktype == 229:
        linktype = 228
    e = lay["endian"]
    frames = []
    for n, (flow, side, seq, flags, payload, missing) in enumerate(events, 1):
        packet = ip_packet(v6, flow_key(flow, side, v6), seq, flags, payload, lay["ihl"])
        frame = link_frame(linktype, packet, v6, lay["vlan"], lay["pad"], lay["endian"])
        caplen = len(frame)
        if missing:  # the snapshot length cuts the padding and the payload's last bytes
            caplen -= (lay["pad"] if linktype == 1 else 0) + missing
        frames.append((1_700_000_000 * 10**9 + n * 123_456_789, frame, caplen))
    if not lay["pcapng"]:
        unit = 1 if lay["nano"] else 1000
        magic = 0xA1B23C4D if lay["nano"] else 0xA1B2C3D4
        out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
        for ns, frame, caplen in frames:
            sec, frac = divmod(ns // unit, 10**9 // unit)
            out.append(struct.pack(e + "IIII", sec, frac, caplen, len(frame)) + frame[:caplen])
        path.write_bytes(b"".join(out))
        return
    out = []
    per_section = -(-len(frames) // lay["sections"]) or 1
    blocks = lay["blocks"]
    for i, (ns, frame, caplen) in enumerate(frames):
        if i % per_section == 0:
            e = "<" if (i // per_section) % 2 == 0 else ">"
            if lay["endian"] == ">":
                e = "<" if e == ">" else ">"
            out.append(_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e))
            opts = b""
            if lay["tsresol"] is not None:
                opts += _opt(9, bytes([lay["tsresol"]]), e)
            if lay["tsoffset"]:
                opts += _opt(14, struct.pack(e + "q", lay["tsoffset"]), e)
            opts += bytes(4) if opts else b""
            out.append(_block(1, struct.pack(e + "HHI", linktype, 0, 0) + opts, e))
        r = lay["tsresol"]
        per_s = 10**6 if r is None else (2 ** (r & 0x7F) if r & 0x80 else 10**r)
        ticks = (ns * per_s) // 10**9 % (1 << 64)
        kind = blocks[i % len(blocks)]
        data = frame[:caplen]
        if kind == "epb":
            head = struct.pack(e + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen, len(frame))
            out.append(_block(6, head + data, e))
        elif kind == "pb":
            head = struct.pack(
                e + "HHIIII", 0, 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen, len(frame)
            )
            out.append(_block(2, head + data, e))
        else:
            out.append(_block(3, struct.pack(e + "I", len(data)) + data, e))
    if not frames:  # a capture of no packets still has its section header
        e = lay["endian"]
        out.append(_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e))
    path.write_bytes(b"".join(out))


def _opt(code: int, value: bytes, e: str) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(btype: int, body: bytes, e: str) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


LIMITS = st.sampled_from(
    [
        DEFAULT_LIMITS,
        Limits(max_open_flows=1, max_buffered_bytes_per_flow=100),
        Limits(max_open_flows=2, max_buffered_bytes_per_flow=40),
    ]
)
SINKS = st.sampled_from([(None, None), (3, None), (1, "keep"), (2, "even")])


def _keep(name: str | None) -> Callable[[TcpFlow], bool] | None:
    if name == "keep":
        return lambda flow: True
    if name == "even":
        return lambda flow: flow.stream % 2 == 0
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), LIMITS, SINKS)
def test_drawn_segments_give_the_same_flows(
    conv: tuple[list[tuple[Any, ...]], bool], limits: Limits, sink: tuple[int | None, str | None]
) -> None:
    """The compiled TCP loop fed tuples (as from any iterable) against TcpTracker._run."""
    events, v6 = conv
    segments = as_tuples(events, v6)
    stop_after, keep = sink
    slow, fast = both(lambda: track(segments, limits, stop_after, _keep(keep)))
    assert_same(slow, fast)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), layouts(), LIMITS, SINKS)
def test_drawn_captures_give_the_same_segments_and_flows(
    tmp_path_factory: pytest.TempPathFactory,
    conv: tuple[list[tuple[Any, ...]], bool],
    lay: dict[str, Any],
    limits: Limits,
    sink: tuple[int | None, str | None],
) -> None:
    """The same conversations written as a capture: the compiled record loop feeding the
    compiled TCP loop directly, against the Python reader and tracker."""
    events, v6 = conv
    path = tmp_path_factory.mktemp("drawn") / ("c.pcapng" if lay["pcapng"] else "c.pcap")
    write_capture(path, events, v6, lay)
    slow, fast = both(lambda: read_all(path))
    assert_same(slow, fast)
    segments = slow["segments"]
    assert isinstance(segments, list) and len(segments) == len(events)
    stop_after, keep = sink
    slow, fast = both(lambda: track(PacketReader(path), limits, stop_after, _keep(keep)))
    assert_same(slow, fast)


def test_drawn_capture_writer_makes_what_the_reader_reads(tmp_path: Path) -> None:
    """The writer above is right about what it writes (else the comparisons could pass on
    captures that are all slow path or all skipped)."""
    events = [
        (0, True, 100, SYN, b"", 0),
        (0, False, 500, SYN | ACK, b"", 0),
        (0, True, 101, ACK, b"hello", 0),
        (0, False, 501, ACK, b"world!", 2),
        (0, True, 106, FIN | ACK, b"", 0),
    ]
    for v6 in (False, True):
        expected = as_tuples(events, v6)
        for linktype in LINKTYPES:
            for pcapng, blocks in ((False, ["epb"]), (True, ["epb"]), (True, ["pb", "spb"])):
                lay = {
                    "linktype": linktype, "vlan": 1, "pad": 6, "ihl": 24, "endian": ">",
                    "nano": True, "pcapng": pcapng, "blocks": blocks, "tsresol": 9,
                    "tsoffset": 0, "sections": 2,
                }  # fmt: skip
                path = tmp_path / f"w-{v6}-{linktype}-{pcapng}-{blocks[0]}"
                write_capture(path, events, v6, lay)
                with mode(True):
                    reader = PacketReader(path)
                    got = list(reader)
                # Same packets, keys, sequence numbers, flags, payloads and missing bytes.
                strip = [(s[0], s[2], s[3], s[4], s[5], s[6]) for s in got]
                assert strip == [(s[0], s[2], s[3], s[4], s[5], s[6]) for s in expected]
                assert reader.snapped == 1 and not reader.anomalies


# -- damaged real captures --------------------------------------------------------------------

DAMAGE_SOURCES = [
    DATA / "pcap" / "zeek" / "message-too-big-status.pcap",
    DATA / "pcap" / "evsetool" / "cap.pcapng",
]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_captures_give_the_same_result(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Flip, cut or insert bytes in real pcap and pcapng files: the same segments, anomalies
    and flows, or the same InputError, both ways."""
    source = data.draw(st.sampled_from(DAMAGE_SOURCES))
    raw = bytearray(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 64))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=32))
    path = tmp_path_factory.mktemp("damaged") / source.name
    path.write_bytes(bytes(raw))
    slow, fast = both(lambda: read_all(path))
    assert_same(slow, fast)
    slow, fast = both(lambda: track(PacketReader(path)))
    assert_same(slow, fast)


# -- odd records the compiled loop hands to the reader's methods ------------------------------


def _eth_ipv4(payload_ip: bytes) -> bytes:
    return bytes(12) + b"\x08\x00" + payload_ip


def _odd_records() -> list[bytes]:
    """Link-layer frames (Ethernet) the compiled decoder must not decide alone."""
    key = (IP4[0], IP4[1], 40000, 8080)
    good = ip_packet(False, key, 1, ACK, b"data", 20)
    v6 = ip_packet(True, (IP6[0], IP6[1], 40000, 8080), 1, ACK, b"data6", 20)
    frag = bytearray(good)
    frag[6] = 0x20  # MF
    malformed = bytearray(good)
    malformed[0] = 0x43  # IHL 12
    small_total = bytearray(good)
    small_total[2:4] = (12).to_bytes(2, "big")
    zero_total = bytearray(good)
    zero_total[2:4] = b"\x00\x00"
    bad_doff = bytearray(good)
    bad_doff[32] = 0x30  # data offset 3 words
    v6_ext = v6[:6] + b"\x00" + v6[7:40] + bytes([6, 0]) + bytes(6) + v6[40:]
    v6_frag = v6[:6] + b"\x2c" + v6[7:40] + bytes([6, 0]) + bytes(6) + v6[40:]
    udp = bytearray(good)
    udp[9] = 17
    gtp_inner = ip_packet(False, key, 9, ACK, b"tunnel", 20)
    gtp = (
        struct.pack("!HHHH", 2152, 2152, 8 + 8 + len(gtp_inner), 0)
        + struct.pack("!BBHI", 0x30, 0xFF, len(gtp_inner), 1)
        + gtp_inner
    )
    gtp_ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(gtp), 1, 0, 64, 17, 0) + IP4[0] + IP4[1]
    gtp_bad_ext = bytearray(gtp)
    gtp_bad_ext[8] = 0x34  # extension header flag, and a zero extension length below
    gtp_bad_ext[8 + 8 : 8 + 8] = bytes([0, 0, 0, 0x85, 0, 0, 0, 0])
    # Options (12 bytes) in the TCP header, and the snapshot length cutting inside them.
    with_options = bytearray(ip_packet(False, key, 1, ACK, bytes(12) + b"payload", 20))
    with_options[32] = 8 << 4
    snapped_in_options = bytes(with_options[: 20 + 24])
    snapped_in_payload = bytes(with_options[: 20 + 32 + 3])
    # No payload, cut inside the options: snapped, with no byte of payload missing.
    options_only = bytearray(ip_packet(False, key, 1, SYN, bytes(12), 20))
    options_only[32] = 8 << 4
    snapped_no_payload = bytes(options_only[: 20 + 24])
    ipip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(good), 1, 0, 64, 4, 0) + IP4[0] + IP4[1]
    icmp = bytearray(good)
    icmp[9] = 1
    not_ip = bytes(12) + b"\x08\x06" + bytes(28)
    v6_in_v4_ethertype = bytes(12) + b"\x08\x00" + v6
    return [
        _eth_ipv4(good),
        _eth_ipv4(bytes(frag)),
        _eth_ipv4(bytes(malformed)),
        _eth_ipv4(bytes(small_total)),
        _eth_ipv4(bytes(zero_total)),
        _eth_ipv4(bytes(bad_doff)),
        _eth_ipv4(good[:30]),  # TCP header cut short
        _eth_ipv4(good[:12]),  # IPv4 header cut short
        bytes(12) + b"\x86\xdd" + v6_ext,
        bytes(12) + b"\x86\xdd" + v6_frag,
        bytes(12) + b"\x86\xdd" + v6[:30],
        _eth_ipv4(bytes(udp)),
        _eth_ipv4(gtp_ip + gtp),
        _eth_ipv4(gtp_ip + bytes(gtp_bad_ext)),
        _eth_ipv4(ipip + good),
        _eth_ipv4(bytes(icmp)),
        _eth_ipv4(bytes(with_options)),
        _eth_ipv4(snapped_in_options),
        _eth_ipv4(snapped_in_payload),
        _eth_ipv4(snapped_no_payload),
        not_ip,
        v6_in_v4_ethertype,
        bytes(10),
    ]


def test_odd_records_are_handed_to_the_reader(tmp_path: Path) -> None:
    frames = _odd_records()
    for linktype in (1, 147):  # Ethernet, and a link type the reader does not know
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
        for i, frame in enumerate(frames * 2):
            out.append(struct.pack("<IIII", 1_700_000_000, i, len(frame), len(frame)) + frame)
        path = tmp_path / f"odd-{linktype}.pcap"
        path.write_bytes(b"".join(out))
        slow, fast = both(lambda: read_all(path))  # noqa: B023
        assert_same(slow, fast)
        if linktype == 1:
            codes = [a.code for a in slow["anomalies"]]
            assert {"ip.fragment", "ip.malformed", "tcp.malformed", "tcp.truncated"} <= set(codes)
            assert len(slow["segments"]) >= 8
            assert slow["snapped"] == 6


def _ticks_file(path: Path, tsresol: int, tsoffset: int, ticks: list[int]) -> None:
    e = "<"
    frame = link_frame(1, ip_packet(False, (IP4[0], IP4[1], 1, 2), 1, ACK, b"x", 20), False,
                       0, 0, e)  # fmt: skip
    opts = _opt(9, bytes([tsresol]), e) + _opt(14, struct.pack(e + "q", tsoffset), e) + bytes(4)
    out = [
        _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e),
        _block(1, struct.pack(e + "HHI", 1, 0, 0) + opts, e),
    ]
    for t in ticks:
        head = struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame))
        out.append(_block(6, head + frame, e))
    path.write_bytes(b"".join(out))


def _ties(r: int) -> list[int]:
    """Ticks whose quotient by 2**r lies exactly between two doubles (or just beside)."""
    out = []
    for top in (53, 54, 60, 63):
        # quotient 2**(top-r) + half an ulp: the bits dropped are exactly 100...0
        half = 1 << (top - 53)
        base = (1 << top) + (3 << (top - 50))
        for t in (base + half, base + 2 * half + half, base + half - 1, base + half + 1):
            out.append(t % (1 << 64))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([6, 9, 12, 3, 0, 19, 22, 23, 0x80, 0x8A, 0x9E, 0xBF]),
    st.sampled_from([0, 1, -7, 1 << 40, 1 << 60, -(1 << 62)]),
    st.lists(
        st.one_of(
            st.integers(0, (1 << 64) - 1),
            st.integers(0, 64).map(lambda b: (1 << b) - 1),
            st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9),
        ),
        min_size=1,
        max_size=50,
    ),
)
def test_timestamps_are_the_floats_python_computes(
    tmp_path_factory: pytest.TempPathFactory, tsresol: int, tsoffset: int, ticks: list[int]
) -> None:
    """``ticks / divisor + offset`` as Python rounds it (int / int is correctly rounded, ties
    to even), for every resolution: decimal and binary, ticks above 2**53 included."""
    if tsresol & 0x80:
        ticks = ticks + _ties(tsresol & 0x7F)
    path = tmp_path_factory.mktemp("ticks") / "t.pcapng"
    _ticks_file(path, tsresol, tsoffset, ticks)
    slow, fast = both(lambda: read_all(path))
    assert_same(slow, fast)
    assert [s[1] for s in slow["segments"]] == [
        t / (2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol) + tsoffset for t in ticks
    ]


@pytest.mark.parametrize("tsresol", [0x8A, 0x9E, 0xBF])
def test_timestamps_exactly_between_two_floats_round_to_even(tmp_path: Path, tsresol: int) -> None:
    ticks = _ties(tsresol & 0x7F)
    _ticks_file(tmp_path / "t.pcapng", tsresol, 0, ticks)
    slow, fast = both(lambda: read_all(tmp_path / "t.pcapng"))
    assert_same(slow, fast)
    assert [s[1] for s in fast["segments"]] == [t / 2 ** (tsresol & 0x7F) for t in ticks]


@pytest.mark.parametrize(
    "content",
    [
        # An enhanced packet block too short for its own header.
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + _block(1, struct.pack("<HHI", 1, 0, 0), "<")
            + struct.pack("<III", 6, 12, 12)
        ),
        # The same, obsolete packet block.
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + _block(1, struct.pack("<HHI", 1, 0, 0), "<")
            + struct.pack("<III", 2, 16, 16)
            + bytes(4)
        ),
        # A section header block and a secrets block too short for their fields.
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + struct.pack("<III", 0x0A0D0D0A, 12, 0x1A2B3C4D)
        ),
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + struct.pack("<III", 0x0A, 12, 12)
        ),
        # A packet on an interface never described, then a block with a bad byte-order magic.
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + _block(6, struct.pack("<IIIII", 3, 0, 0, 4, 4) + bytes(4), "<")
            + _block(0x0A0D0D0A, struct.pack("<IHHq", 0x11223344, 1, 0, -1), "<")
        ),
        # A captured length beyond the block.
        lambda: (
            _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), "<")
            + _block(1, struct.pack("<HHI", 1, 0, 0), "<")
            + _block(6, struct.pack("<IIIII", 0, 0, 0, 400, 400) + bytes(8), "<")
        ),
        # A record claiming more than any record may.
        lambda: (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
            + struct.pack("<IIII", 1, 0, 1 << 29, 1 << 29)
        ),
        # Records cut: header, then body.
        lambda: struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + bytes(9),
        lambda: (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
            + struct.pack("<IIII", 1, 0, 60, 60)
            + bytes(30)
        ),
    ],
)
def test_damaged_files_end_the_same_way(tmp_path: Path, content: Callable[[], bytes]) -> None:
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(content())
    slow, fast = both(lambda: read_all(path))
    assert_same(slow, fast)
    assert slow["segments"] == [] or slow["segments"][0] == "InputError"
