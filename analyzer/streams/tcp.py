"""TCP flows and reassembly: segments in, ordered byte streams (with holes marked) out.

Theory of operation
-------------------
``TcpTracker.run`` consumes the reader's segment tuples (``analyzer.inputs.pcap``) and
yields each ``TcpFlow`` when it is finished: a RST, FIN both ways with nothing left to
reassemble, eviction, or the end of the capture.

Flows are keyed by the 4-tuple as the packet carries it; both directions' keys map to that
direction's ``Half`` in one dict, so a packet costs one lookup. Flows are numbered in the
order of their first packet, as Wireshark numbers ``tcp.stream``; a SYN (without ACK) on a
4-tuple whose flow has ended, or with a new initial sequence number, starts a new stream.

Per direction, bytes are delivered from the SYN (or from the first segment seen when the
capture starts mid-connection). The in-order case is a comparison and a call. Otherwise:

- a segment wholly before the next expected byte is a retransmission and is dropped;
- a segment that starts before it and runs past it delivers only its new part;
- a segment after it is held (``pending``) until the hole is filled. Held segments never
  overlap: where a later copy overlaps an earlier one, the first copy wins and a
  ``tcp.overlap_conflict`` anomaly is recorded if the bytes differ;
- past ``Limits.max_buffered_bytes_per_flow`` held bytes, or when the flow finishes, the
  hole is given up: ``sink.gap`` says how many bytes are missing, and they are never filled.

The bytes go to a ``ByteSink`` (``FlowParser``, or a decryption layer in front of one),
made by ``sink_factory`` when the flow carries its first byte. A sink that says it is not
``interested`` is dropped at once and its flow forgotten: only a tombstone (the stream
number) stays, so that its later packets are neither parsed nor numbered as a new stream.

Open flows are bounded by ``Limits.max_open_flows``: past it the least recently seen flow
is finished early (second-chance approximation of LRU, no per-packet bookkeeping beyond
the last packet number), with a ``tcp.flow_evicted`` anomaly.

"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from analyzer.inputs.pcap import Segment, reverse_key
from analyzer.limits import Limits

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
KEEP_FLOW_ANOMALIES = 20  # per flow and code; the rest are counted


class ByteSink(Protocol):
    """What receives one flow's reassembled bytes (``analyzer.protocol.flow.FlowParser``)."""

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None: ...

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None: ...

    @property
    def interested(self) -> bool: ...


class Half:
    """One direction of a flow: what was delivered, what is held, how it ended."""

    __slots__ = ("flow", "from_orig", "nxt", "delivered", "pending", "held", "fin", "isn")

    def __init__(self, flow: TcpFlow, from_orig: bool) -> None:
        self.flow = flow
        self.from_orig = from_orig
        self.nxt = -1  # sequence number of the next byte expected; -1 until known
        self.delivered = 0  # bytes handed on (data and gaps) since the start of the stream
        self.pending: dict[int, tuple[bytes, int, float]] | None = None  # offset -> segment
        self.held = 0  # bytes in pending
        self.fin = -1  # stream offset of the FIN, -1 when none seen
        self.isn = -1  # sequence number of the SYN, -1 when none seen


class TcpFlow:
    """One TCP connection (a 4-tuple between a SYN and its end)."""

    __slots__ = (
        "stream",
        "key",
        "orig",
        "resp",
        "first_packet",
        "first_time",
        "last_packet",
        "last_time",
        "mark",
        "sink",
        "end",
        "end_time",
        "syn_seen",
        "anomalies",
        "anomaly_counts",
        "finished",
        "dropped",
        "owner",
    )

    def __init__(self, stream: int, key: bytes, packet: int, time: float) -> None:
        self.stream = stream
        self.key = key  # as sent by the originator
        self.orig = Half(self, True)
        self.resp = Half(self, False)
        self.first_packet = packet
        self.first_time = time
        self.last_packet = packet
        self.last_time = time
        # Eviction (second chance): a flow seen after ``mark`` is spared once. A new flow
        # counts as seen.
        self.mark = packet - 1
        self.sink: ByteSink | None = None
        self.end: str | None = None  # "fin" or "rst", whichever came first
        self.end_time: float | None = None
        self.syn_seen = False
        self.anomalies: list[TcpAnomaly] = []
        self.anomaly_counts: dict[str, int] = {}
        self.finished = False
        self.dropped = False  # its sink lost interest: nothing more is fed
        self.owner: object = None  # for the tracker's user (build_pcap keeps its parser here)

    def release(self) -> None:
        """Break the flow's reference cycles once it is finished and used, so that its
        memory returns at once instead of at the next cyclic garbage collection."""
        for half in (self.orig, self.resp):
            half.pending = None
            del half.flow
        self.sink = None
        self.owner = None

    def note(self, code: str, detail: str, packet: int, from_orig: bool) -> None:
        """Record a TCP anomaly; the builder adds the location once it knows the client."""
        n = self.anomaly_counts.get(code, 0)
        self.anomaly_counts[code] = n + 1
        if n < KEEP_FLOW_ANOMALIES:
            self.anomalies.append(TcpAnomaly(code, detail, packet, from_orig))


class TcpAnomaly(NamedTuple):
    code: str
    detail: str
    packet: int
    from_orig: bool


SinkFactory = Callable[[TcpFlow], ByteSink]


class _Muted:
    """The sink of a flow followed to its end without its bytes."""

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        pass

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        pass

    @property
    def interested(self) -> bool:
        return True


MUTED = _Muted()


class TcpTracker:
    """Flows of one capture. ``run`` drives it; see the module doc."""

    def __init__(
        self,
        capture: str,
        limits: Limits,
        sink_factory: SinkFactory,
        keep: Callable[[TcpFlow], bool] | None = None,
    ) -> None:
        self.capture = capture
        self.limits = limits
        self.sink_factory = sink_factory
        self.keep = keep  # asked when a sink loses interest: follow the flow to its end?
        self.live: dict[bytes, Half] = {}
        self.done: dict[bytes, int] = {}  # tombstones: key -> stream of a finished flow
        self.open = 0
        self.streams = 0  # next tcp.stream number
        self.evicted = 0
        self.dropped = 0  # flows whose sink lost interest
        self._finished: list[TcpFlow] = []

    # -- the per-packet loop ----------------------------------------------------------------

    def run(self, segments: Iterable[Segment]) -> Iterator[TcpFlow]:
        """Feed every segment to its flow; yield each flow once it is finished."""
        live = self.live
        finished = self._finished
        syn, fin_rst, mask = SYN, FIN | RST, MASK32  # locals: no global lookups per packet
        for number, time, key, seq, flags, payload, missing in segments:
            half = live.get(key)
            if half is None or flags & syn:
                half = self._syn_or_new(half, key, number, time, seq, flags)
                if half is None:
                    continue
            flow = half.flow
            flow.last_packet = number
            flow.last_time = time
            if payload:
                if seq == half.nxt and half.pending is None and not missing:
                    n = len(payload)
                    half.nxt = (seq + n) & mask
                    half.delivered += n
                    sink = flow.sink
                    if sink is None:
                        sink = self._sink(flow)
                    sink.data(half.from_orig, payload, number, time)
                    if not sink.interested and self._drop(flow):
                        continue
                else:
                    self._segment(half, number, time, seq, payload, missing)
            elif missing:
                self._segment(half, number, time, seq, payload, missing)
            if flags & fin_rst:
                self._fin_rst(half, number, time, seq, flags, len(payload) + missing)
            if finished:
                yield from finished
                finished.clear()
        yield from self.close_all()

    def close_all(self) -> Iterator[TcpFlow]:
        """Finish every open flow (end of capture), in stream order."""
        flows = sorted({h.flow for h in self.live.values()}, key=lambda f: f.stream)
        for flow in flows:
            if not flow.finished:
                self._finish(flow)
        out = self._finished[:]
        self._finished.clear()
        yield from out

    # -- flows ------------------------------------------------------------------------------

    def _syn_or_new(
        self, half: Half | None, key: bytes, number: int, time: float, seq: int, flags: int
    ) -> Half | None:
        if half is not None:
            # flags has SYN. A SYN without ACK with a new ISN on a live flow: port reuse.
            flow = half.flow
            # (Wireshark: a SYN with another sequence number than the base starts anew.)
            if (
                flags & ACK
                or not half.from_orig
                or half.isn == seq
                or (half.isn == -1 and half.delivered == 0)
            ):
                if half.isn == -1:
                    self._set_isn(half, seq, number)
                return half
            self._finish(flow)
            half = None
        if key in self.done:
            if flags & (SYN | ACK) != SYN:
                return None  # a late packet of a flow already finished or dropped
            del self.done[key]
            self.done.pop(reverse_key(key), None)
        # A SYN+ACK as first packet: the sender is the responder.
        responder_first = flags & (SYN | ACK) == (SYN | ACK)
        rkey = reverse_key(key)
        flow = TcpFlow(self.streams, rkey if responder_first else key, number, time)
        self.streams += 1
        this, other = (flow.resp, flow.orig) if responder_first else (flow.orig, flow.resp)
        self.live[key] = this
        self.live[rkey] = other
        self.open += 1
        if flags & SYN:
            flow.syn_seen = True
            self._set_isn(this, seq, number)
        else:
            this.nxt = seq  # mid-connection: the stream starts at the first segment seen
        if self.open > self.limits.max_open_flows:
            self._evict(number)
        return this

    def _set_isn(self, half: Half, seq: int, number: int) -> None:
        half.isn = seq
        if half.nxt == -1 or half.delivered == 0:
            half.nxt = (seq + 1) & MASK32

    def _sink(self, flow: TcpFlow) -> ByteSink:
        sink = flow.sink = self.sink_factory(flow)
        return sink

    def _forget(self, flow: TcpFlow) -> None:
        okey = flow.key
        rkey = reverse_key(okey)
        live, done = self.live, self.done
        for k in (okey, rkey):
            h = live.get(k)
            if h is not None and h.flow is flow:
                del live[k]
            done[k] = flow.stream
        self.open -= 1
        # Tombstones only need to outlive a finished flow's stragglers (last ACKs, late
        # retransmissions): as many as there may be open flows is plenty.
        limit = self.limits.max_open_flows
        while len(done) > limit:
            del done[next(iter(done))]

    def _drop(self, flow: TcpFlow) -> bool:
        """The sink is not interested: forget the flow now, unless ``keep`` wants to see how
        it ends (a rejected upgrade): then it goes on, its bytes no longer fed. True when
        forgotten."""
        if self.keep is not None and self.keep(flow):
            flow.sink = MUTED
            return False
        flow.finished = True
        flow.dropped = True
        flow.sink = None
        self.dropped += 1
        self._forget(flow)
        return True

    def _finish(self, flow: TcpFlow) -> None:
        if flow.finished:
            return
        flow.finished = True
        if flow.sink is None and (flow.orig.pending or flow.resp.pending):
            self._sink(flow)  # all its bytes were held behind a hole
        for half in (flow.orig, flow.resp):
            if half.pending or half.fin > half.delivered:  # else _flush has nothing to do
                self._flush(half, flow.last_packet, flow.last_time)
        self._forget(flow)
        if flow.sink is not None:
            self._finished.append(flow)

    def _evict(self, number: int) -> None:
        live = self.live
        while self.open > self.limits.max_open_flows:
            key = next(iter(live))
            half = live[key]
            flow = half.flow
            if flow.last_packet > flow.mark:  # seen since its last chance: move it back
                flow.mark = number
                for k in (flow.key, reverse_key(flow.key)):
                    h = live.pop(k, None)
                    if h is not None:
                        live[k] = h
                continue
            self.evicted += 1
            flow.note(
                "tcp.flow_evicted",
                f"more than {self.limits.max_open_flows} flows open: this one, the least "
                "recently seen, was closed early; its later packets are not analyzed",
                flow.last_packet,
                half.from_orig,
            )
            self._finish(flow)

    # -- reassembly -------------------------------------------------------------------------

    def _segment(
        self, half: Half, number: int, time: float, seq: int, payload: bytes, missing: int
    ) -> None:
        """Everything but the in-order case: held, trimmed, dropped, or a snapped segment."""
        flow = half.flow
        if half.nxt == -1:
            half.nxt = seq  # first data of a direction seen with no SYN
        rel = (seq - half.nxt) & MASK32
        if rel >= HALF32:
            rel -= 1 << 32  # before the next expected byte
        start = half.delivered + rel
        end = start + len(payload)
        if end + missing <= half.delivered:
            return  # a retransmission of bytes already delivered
        if start < half.delivered:
            payload = payload[half.delivered - start :] if end > half.delivered else b""
            start = half.delivered
        self._hold(half, start, payload, number, time)
        self._drain(half, number, time)
        if missing and half.delivered == start + len(payload):
            # Cut by the capture's snapshot length: the rest of the segment is a hole.
            # (Out of order, the hole is marked when the bytes after it are given up.)
            self._give_up(half, start + len(payload) + missing, number, time)
            self._drain(half, number, time)
        if half.held > self.limits.max_buffered_bytes_per_flow:
            flow.note(
                "tcp.buffer_limit",
                f"over {self.limits.max_buffered_bytes_per_flow} bytes held behind a hole: "
                "the hole is given up as missing",
                number,
                half.from_orig,
            )
            assert half.pending is not None
            self._give_up(half, min(half.pending), number, time)
            self._drain(half, number, time)

    def _hold(self, half: Half, start: int, payload: bytes, number: int, time: float) -> None:
        """Add a segment to the held ones; earlier copies win where they overlap."""
        if not payload:
            return
        pending = half.pending
        if pending is None:
            half.pending = {start: (payload, number, time)}
            half.held += len(payload)
            return
        pieces = [(start, payload)]
        for off, (data, _p, _t) in pending.items():
            oend = off + len(data)
            kept = []
            for s, d in pieces:
                e = s + len(d)
                if e <= off or s >= oend:
                    kept.append((s, d))
                    continue
                lo, hi = max(s, off), min(e, oend)
                if d[lo - s : hi - s] != data[lo - off : hi - off]:
                    half.flow.note(
                        "tcp.overlap_conflict",
                        f"{hi - lo} bytes at stream offset {lo} were sent twice with different "
                        "contents: the first copy is used",
                        number,
                        half.from_orig,
                    )
                if s < off:
                    kept.append((s, d[: off - s]))
                if e > oend:
                    kept.append((oend, d[oend - s :]))
            pieces = kept
            if not pieces:
                return
        for s, d in pieces:
            pending[s] = (d, number, time)
            half.held += len(d)

    def _drain(self, half: Half, number: int, time: float) -> None:
        """Deliver held segments that now continue the stream."""
        pending = half.pending
        flow = half.flow
        while pending:
            entry = pending.pop(half.delivered, None)
            if entry is None:
                # A held segment may start before the next byte if a gap was given up over it.
                for off in [o for o in pending if o < half.delivered]:
                    data, p, t = pending.pop(off)
                    half.held -= len(data)
                    cut = half.delivered - off
                    if cut < len(data):
                        pending[half.delivered] = (data[cut:], p, t)
                        half.held += len(data) - cut
                if half.delivered not in pending:
                    break
                continue
            data, p, t = entry
            half.held -= len(data)
            half.delivered += len(data)
            half.nxt = (half.nxt + len(data)) & MASK32
            if flow.dropped:
                continue
            sink = flow.sink if flow.sink is not None else self._sink(flow)
            sink.data(half.from_orig, data, p, t)
            if not sink.interested and (flow.finished or self._drop(flow)):
                half.pending = None
                half.held = 0
                return
        if not pending:
            half.pending = None
            half.held = 0

    def _give_up(self, half: Half, upto: int, number: int, time: float) -> None:
        """Declare the bytes from the next expected one up to ``upto`` missing."""
        length = upto - half.delivered
        if length <= 0:
            return
        flow = half.flow
        half.delivered = upto
        half.nxt = (half.nxt + length) & MASK32
        if flow.dropped:
            return
        sink = flow.sink if flow.sink is not None else self._sink(flow)
        sink.gap(half.from_orig, length, number, time)

    def _flush(self, half: Half, number: int, time: float) -> None:
        """At the end of a flow: held bytes are delivered after their holes are marked."""
        while half.pending:
            self._give_up(half, min(half.pending), number, time)
            self._drain(half, number, time)
        if half.fin > half.delivered and half.flow.sink is not None:
            self._give_up(half, half.fin, number, time)

    def _fin_rst(
        self, half: Half, number: int, time: float, seq: int, flags: int, length: int
    ) -> None:
        flow = half.flow
        if flow.finished:
            return
        if flags & RST:
            if flow.end is None:
                flow.end, flow.end_time = "rst", time
            self._finish(flow)
            return
        if half.fin == -1:
            if half.nxt == -1:
                half.nxt = seq
            rel = (seq - half.nxt) & MASK32
            if rel >= HALF32:
                rel -= 1 << 32
            half.fin = half.delivered + rel + length
        if flow.end is None:
            flow.end, flow.end_time = "fin", time
        other = flow.resp if half.from_orig else flow.orig
        if (
            other.fin != -1
            and half.pending is None
            and other.pending is None
            and half.delivered >= half.fin
            and other.delivered >= other.fin
        ):
            self._finish(flow)
