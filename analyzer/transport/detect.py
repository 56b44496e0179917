"""What a TCP flow is, from its first bytes; and WebSocket sessions already under way.

Theory of operation
-------------------
``Detector`` is the transport the capture path gives every cleartext TCP flow. It decides
from the first bytes of either direction, never from port numbers:

===============================  ===========  ==========================================
first bytes                      mode         then
===============================  ===========  ==========================================
``GET /...`` (a request line)    HTTP         ``Http1`` follows the flow (client: the
                                              side that sent the request)
``HTTP/1.x 101`` (no request)    HTTP         ``Http1`` (client: the other side)
bytes that parse as frames       MID_SESSION  a start when the evidence below is reached
anything else (TLS, SSH, ...)    STOPPED      ``interested`` False
===============================  ===========  ==========================================

Until it is decided, the bytes are held, in the order they came (both directions), and
replayed to what follows them: to ``Http1``, or to the connection as ``ChannelBytes``.

The no-handshake heuristic (a capture that starts mid-session: ``handshake_seen`` False)
accepts a flow when, from the first byte of each direction that has data, the bytes parse
as consecutive frames that pass every check of the ``FrameEvidence`` it is given (the
RFC 6455 part lives in ``analyzer.protocol.evidence``: known opcodes, RSV bits, control
frame rules, close codes, masking alike, UTF-8 of single-frame text...), and either both
directions have a complete frame (one side masked, the other not) or one direction alone
has ``HEURISTIC_MIN_FRAMES`` complete frames. The masked side is the client. The evidence
must come within ``HEURISTIC_MAX_BYTES`` of each direction; a gap before a decision
decides on what was seen (the weaker bar of two complete frames), and so does ``decide``
(the end of the capture).

A capture that starts in the middle of a frame cannot be recognised (the first bytes are
payload); one that starts on a frame boundary usually is.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Final

from analyzer.limits import Limits
from analyzer.transport.base import (
    FLOW_CHANNEL,
    NO_EVENTS,
    Attempt,
    ChannelBytes,
    ChannelGap,
    Event,
    FrameEvidence,
    FrameScan,
    WebSocketStart,
)
from analyzer.transport.held import HeldBytes
from analyzer.transport.http1 import Http1
from analyzer.transport.http11 import looks_like_request, looks_like_response

# Bytes of each direction the heuristic may look at before deciding.
HEURISTIC_MAX_BYTES: Final = 64 * 1024
# Complete frames one direction alone must show for the heuristic to accept the flow.
HEURISTIC_MIN_FRAMES: Final = 3


class _Mode(Enum):
    UNDECIDED = "undecided"
    HTTP = "http"  # Http1 follows the flow
    MID_SESSION = "mid-session"  # frames, waiting for enough evidence
    STARTED = "started"  # the heuristic accepted the flow: it is one connection's
    STOPPED = "stopped"


class Detector:
    """The transport of one TCP flow whose nature is not known yet (module docstring)."""

    def __init__(
        self,
        capture: str,
        stream: int,
        limits: Limits,
        *,
        frames: FrameEvidence,
        scheme: str = "ws",
    ) -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.scheme = scheme
        self.frames = frames
        self.interested = True
        self._mode = _Mode.UNDECIDED
        self._bufs = (HeldBytes(), HeldBytes())  # orig, resp
        self._order: list[tuple[int, bytes, int, float]] = []  # held pieces, as they came
        self._http: Http1 | None = None

    # -- the Transport interface -------------------------------------------------------

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> Sequence[Event]:
        mode = self._mode
        if self._http is not None:
            events = self._http.data(from_orig, chunk, packet, time)
            self.interested = self._http.interested
            return events
        if mode is _Mode.STARTED:
            return (ChannelBytes(FLOW_CHANNEL, from_orig, chunk, packet, time),)
        if mode is _Mode.STOPPED or not chunk:
            return NO_EVENTS
        d = 0 if from_orig else 1
        if mode is _Mode.UNDECIDED:
            if not self._order:
                # The flow's first bytes (nothing is held yet): a request or a status line
                # starts HTTP mode with this chunk, as _classify and _enter_http would.
                prefix = chunk[:16]
                if looks_like_request(prefix):
                    return self._enter_http(d, (d, chunk, packet, time))
                if looks_like_response(prefix):
                    return self._enter_http(1 - d, (d, chunk, packet, time))
            self._hold(d, chunk, packet, time)
            return self._classify(d)
        self._hold(d, chunk, packet, time)
        return self._heuristic(final=False)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> Sequence[Event]:
        if length <= 0:
            return NO_EVENTS
        if self._http is not None:
            events = self._http.gap(from_orig, length, packet, time)
            self.interested = self._http.interested
            return events
        mode = self._mode
        gap = ChannelGap(FLOW_CHANNEL, from_orig, length, packet, time)
        if mode is _Mode.STARTED:
            return (gap,)
        if mode is _Mode.STOPPED:
            return NO_EVENTS
        if mode is _Mode.MID_SESSION:
            # Decide on the evidence so far; frames already seen are not lost to the gap.
            events = self._heuristic(final=True)
            return [*events, gap] if self._mode is _Mode.STARTED else events
        buf = self._bufs[0 if from_orig else 1]
        if not buf.data:
            buf.base += length  # nothing seen yet: the capture started mid-flow
            return NO_EVENTS
        self._stop()
        return NO_EVENTS

    def decide(self) -> Sequence[Event]:
        if self._http is not None:
            return self._http.decide()
        if self._mode is _Mode.MID_SESSION:
            return self._heuristic(final=True)
        return NO_EVENTS

    def attempts(self) -> tuple[Attempt, ...]:
        return self._http.attempts() if self._http is not None else ()

    # -- deciding what the flow is -----------------------------------------------------

    def _hold(self, d: int, chunk: bytes, packet: int, time: float) -> None:
        self._bufs[d].add(chunk, packet, time)
        self._order.append((d, chunk, packet, time))

    def _stop(self) -> None:
        self._mode = _Mode.STOPPED
        self.interested = False
        self._bufs = (HeldBytes(), HeldBytes())
        self._order = []

    def _classify(self, d: int) -> Sequence[Event]:
        data = bytes(self._bufs[d].data[:16])
        req = looks_like_request(data)
        if req:
            return self._enter_http(d)
        resp = looks_like_response(data)
        if resp:
            return self._enter_http(1 - d)
        if req is None or resp is None:
            return NO_EVENTS  # too short to tell
        if self.frames.plausible_start(data):
            self._mode = _Mode.MID_SESSION
            return self._heuristic(final=False)
        self._stop()
        return NO_EVENTS

    def _enter_http(
        self, client: int, first: tuple[int, bytes, int, float] | None = None
    ) -> Sequence[Event]:
        """Hand the flow to ``Http1``, replaying what was held (or ``first``, the flow's
        first chunk, when nothing was)."""
        self._mode = _Mode.HTTP
        bases = (self._bufs[0].base, self._bufs[1].base)
        http = self._http = Http1(
            self.capture, self.stream, self.limits, client=client, scheme=self.scheme, bases=bases
        )
        order = self._order if first is None else [first]
        self._bufs = (HeldBytes(), HeldBytes())
        self._order = []
        events: list[Event] = []
        for d, chunk, packet, time in order:
            events += http.data(d == 0, chunk, packet, time)
        self.interested = http.interested
        return events

    # -- the no-handshake heuristic ----------------------------------------------------

    def _heuristic(self, final: bool) -> Sequence[Event]:
        verdicts: list[FrameScan | None] = []
        for d in (0, 1):
            data = self._bufs[d].data
            if not data:
                verdicts.append(None)
                continue
            v = self.frames.scan(bytes(data))
            if v is None or (v.frames == 0 and len(data) > HEURISTIC_MAX_BYTES):
                self._stop()
                return NO_EVENTS
            verdicts.append(v)
        a, b = verdicts
        client: int | None = None
        if a and b and a.frames and b.frames:
            if a.masked == b.masked:
                self._stop()
                return NO_EVENTS
            client = 0 if a.masked else 1
        else:
            d = 0 if (a.frames if a else 0) >= (b.frames if b else 0) else 1
            one = verdicts[d]
            need = 2 if final else HEURISTIC_MIN_FRAMES
            if one and one.frames >= need:
                client = d if one.masked else 1 - d
            elif final or any(len(self._bufs[i].data) > HEURISTIC_MAX_BYTES for i in (0, 1)):
                self._stop()
                return NO_EVENTS
        if client is None:
            return NO_EVENTS
        order = self._order
        start = WebSocketStart(
            channel=FLOW_CHANNEL,
            client_is_orig=client == 0,
            request=None,
            response=None,
            url=None,
            http_version=None,
            handshake_seen=False,
            start=order[0][3],
            extensions=(),
            offsets=(self._bufs[0].base, self._bufs[1].base),
            whole_flow=True,
            anomalies=(),
        )
        self._mode = _Mode.STARTED
        self._bufs = (HeldBytes(), HeldBytes())
        self._order = []
        return [start, *(ChannelBytes(FLOW_CHANNEL, d == 0, c, p, t) for d, c, p, t in order)]
