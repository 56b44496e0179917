"""Everything above TCP for one TCP flow: a transport finds where WebSocket connections
start, and each connection's bytes go to its own ``WebSocketConnection``.

Theory of operation
-------------------
The capture path (``analyzer.session.build_pcap``) feeds a ``FlowParser`` the in-order
bytes of each direction (``data``) and the holes it could not fill (``gap``); ``orig`` is
the side that sent the SYN (or was seen first). ``interested`` stays True only while the
flow may still be (or is) WebSocket, so the caller can drop everything else early.

The parser is the glue between two layers:

- the flow's *transport* (``analyzer.transport``; by default a ``Detector``, which hands
  HTTP/1.1 to ``Http1`` and recognises sessions already under way) reads the bytes and
  emits ``WebSocketStart``, ``ChannelBytes`` and ``ChannelGap`` events;
- per start, a ``WebSocketConnection`` (``analyzer.protocol.connection``) parses that
  connection's frames and messages; channel events go to the connection of their channel.

A start with ``whole_flow`` set (every HTTP/1.1 or mid-session connection) makes its
connection the flow's *owner*: from then on ``data`` and ``gap`` go to it directly, with
no transport in between, so the per-segment cost in WebSocket mode is the frame readers'.
A transport that multiplexes (HTTP/2, RFC 8441) keeps reading the flow and may start
several connections on it.

``results`` lists the flow's connections in the order they started, then the opening
handshakes that started none (a rejected or unanswered upgrade): 0..n per flow.
``result`` is the first of them, or None.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.limits import Limits
from analyzer.protocol.connection import FlowResult, WebSocketConnection, attempt_result
from analyzer.protocol.evidence import FrameEvidence
from analyzer.transport.base import ChannelBytes, Event, Transport, WebSocketStart
from analyzer.transport.detect import Detector


class FlowParser:
    """Everything above TCP for one TCP flow (see the module's docstring): HTTP/1.1
    upgrade, then RFC 6455 frames, messages, permessage-deflate. Parsers observe; trouble
    becomes Anomaly records.

    ``transport`` replaces the default ``Detector`` (HTTP/1.1 or mid-session).
    """

    def __init__(
        self,
        capture: str,
        stream: int,
        limits: Limits,
        *,
        scheme: str = "ws",
        transport: Transport | None = None,
    ) -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.scheme = scheme  # "wss" when the bytes were decrypted from TLS
        if transport is None:
            transport = Detector(
                capture,
                stream,
                limits,
                frames=FrameEvidence(limits.max_frame_bytes),
                scheme=scheme,
            )
        self.transport = transport
        # False once the flow is known not to be WebSocket: the caller stops feeding it.
        # A plain attribute, not a property: the TCP loop reads it after every segment.
        self.interested = True
        self._connections: list[WebSocketConnection] = []  # in the order they started
        self._channels: dict[int, WebSocketConnection] = {}
        self._owner: WebSocketConnection | None = None  # the connection that is the flow
        self._last_time: float | None = None

    # -- the interface -----------------------------------------------------------------

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        """In-order contiguous bytes of one direction."""
        self._last_time = time
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # memoryview/bytearray: the parsers slice and decode bytes
        owner = self._owner
        if owner is not None:
            owner.data(from_orig, chunk, packet, time)
            return
        events = self.transport.data(from_orig, chunk, packet, time)
        if events:
            self._apply(events)
        self.interested = self.transport.interested

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        """``length`` bytes of that direction are missing from the capture."""
        if length <= 0:
            return
        owner = self._owner
        if owner is not None:
            owner.gap(from_orig, length, packet, time)
            return
        events = self.transport.gap(from_orig, length, packet, time)
        if events:
            self._apply(events)
        self.interested = self.transport.interested

    def results(self) -> tuple[FlowResult, ...]:
        """The flow's connections, then its opening handshakes that started none (module
        docstring). May be called at any time, more than once. A flow still waiting for
        the transport's evidence is decided here on what was seen."""
        if self._owner is None:
            events = self.transport.decide()
            if events:
                self._apply(events)
            self.interested = self.transport.interested
        last_time = self._last_time
        out = [c.result(last_time) for c in self._connections]
        out += [attempt_result(a, last_time) for a in self.transport.attempts()]
        return tuple(out)

    def result(self) -> FlowResult | None:
        """The first of ``results``; None if the flow never was WebSocket."""
        results = self.results()
        return results[0] if results else None

    # -- events ------------------------------------------------------------------------

    def _apply(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, ChannelBytes):
                # Held bytes replayed: the flow's last time is theirs, as if fed now.
                self._last_time = event.time
                conn = self._channels[event.channel]
                conn.data(event.from_orig, event.data, event.packet, event.time)
            elif isinstance(event, WebSocketStart):
                conn = WebSocketConnection(self.capture, self.stream, self.limits, event)
                self._connections.append(conn)
                self._channels[event.channel] = conn
                if event.whole_flow:
                    self._owner = conn
            else:
                self._channels[event.channel].gap(
                    event.from_orig, event.length, event.packet, event.time
                )


__all__ = ["FlowParser", "FlowResult"]
