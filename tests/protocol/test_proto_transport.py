"""The transport layer's events, and the FlowParser glue over a transport with several
connections per TCP flow (the shape HTTP/2 extended CONNECT will have)."""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.limits import Limits
from analyzer.protocol.evidence import FrameEvidence
from analyzer.protocol.flow import FlowParser
from analyzer.protocol.frames import serialize
from analyzer.session.build_pcap import connection_id
from analyzer.transport import anomalies as A
from analyzer.transport.base import (
    NO_EVENTS,
    Attempt,
    ChannelBytes,
    ChannelGap,
    Event,
    WebSocketStart,
)
from analyzer.transport.detect import Detector
from analyzer.transport.http1 import Http1

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
REQ = (
    f"GET /chat HTTP/1.1\r\nHost: h:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
RESP = (
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
).encode()
MASK = b"\x01\x02\x03\x04"


def _detector() -> Detector:
    limits = Limits()
    return Detector("t.pcap", 5, limits, frames=FrameEvidence(limits.max_frame_bytes))


def test_http1_upgrade_emits_a_start_then_the_held_bytes() -> None:
    t = _detector()
    early = serialize(1, b"early", mask=MASK)
    assert not t.data(True, REQ + early, 1, 1.0)
    first = serialize(1, b"hi")
    events = list(t.data(False, RESP + first, 2, 2.0))
    start = events[0]
    assert isinstance(start, WebSocketStart)
    assert start.client_is_orig and start.whole_flow and start.handshake_seen
    assert start.url == "ws://h:80/chat" and start.http_version == "1.1"
    assert start.extensions == ("permessage-deflate",)
    assert start.offsets == (len(REQ), len(RESP))
    assert start.request is not None and start.request.target == "/chat"
    assert start.response is not None and start.response.status == 101
    assert start.start == 1.0
    assert [a.code for a in start.anomalies] == [A.HANDSHAKE_EARLY_CLIENT_DATA]
    # The client's early frame first (sent before the 101 reached it), then the server's.
    assert events[1:] == [
        ChannelBytes(0, True, early, 1, 1.0),
        ChannelBytes(0, False, first, 2, 2.0),
    ]
    # Afterwards the flow is the connection's: bytes and gaps pass through.
    assert list(t.data(True, b"x", 3, 3.0)) == [ChannelBytes(0, True, b"x", 3, 3.0)]
    assert list(t.gap(False, 7, 4, 4.0)) == [ChannelGap(0, False, 7, 4, 4.0)]
    assert t.attempts() == ()


def test_http1_rejected_and_unanswered_upgrades_are_attempts() -> None:
    t = Http1("t.pcap", 5, Limits(), client=0)
    t.data(True, REQ, 1, 1.0)
    (unanswered,) = t.attempts()
    assert unanswered.response is None
    assert [a.code for a in unanswered.anomalies] == [A.HANDSHAKE_NO_RESPONSE]
    assert not t.data(False, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 2, 2.0)
    (rejected,) = t.attempts()
    assert isinstance(rejected, Attempt) and rejected.response is not None
    assert rejected.response.status == 403 and rejected.anomalies == ()
    assert rejected.start == 1.0 and t.interested


def test_mid_session_flow_starts_with_its_held_bytes_in_arrival_order() -> None:
    t = _detector()
    c1, s1 = serialize(1, b"ping?", mask=MASK), serialize(1, b"pong")
    assert not t.data(True, c1, 1, 1.0)
    events = list(t.data(False, s1, 2, 2.0))
    start = events[0]
    assert isinstance(start, WebSocketStart)
    assert not start.handshake_seen and start.request is None and start.client_is_orig
    assert start.start == 1.0 and start.offsets == (0, 0)
    assert events[1:] == [ChannelBytes(0, True, c1, 1, 1.0), ChannelBytes(0, False, s1, 2, 2.0)]


def test_not_websocket_stops_the_transport() -> None:
    t = _detector()
    t.data(True, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1, 1.0)
    assert not t.interested and not t.decide() and t.attempts() == ()


class _TwoChannels:
    """A toy multiplexing transport: two connections on one TCP flow, each with its own
    channel; the flow's bytes are "<channel byte><frame>" records."""

    def __init__(self) -> None:
        self.interested = True
        self.started = False

    def _start(self, channel: int) -> WebSocketStart:
        return WebSocketStart(
            channel=channel,
            client_is_orig=True,
            request=None,
            response=None,
            url=f"ws://h/{channel}",
            http_version="2",
            handshake_seen=True,
            start=float(channel),
            extensions=(),
            offsets=(0, 0),
            whole_flow=False,
            anomalies=(),
        )

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> Sequence[Event]:
        events: list[Event] = []
        if not self.started:
            self.started = True
            events += [self._start(1), self._start(3)]
        events.append(ChannelBytes(chunk[0], from_orig, chunk[1:], packet, time))
        return events

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> Sequence[Event]:
        return NO_EVENTS

    def decide(self) -> Sequence[Event]:
        return NO_EVENTS

    def attempts(self) -> tuple[Attempt, ...]:
        return ()


def test_flow_parser_keeps_several_connections_per_flow_apart() -> None:
    p = FlowParser("t.pcap", 9, Limits(), transport=_TwoChannels())
    p.data(True, bytes([1]) + serialize(1, b"one", mask=MASK), 1, 1.0)
    p.data(True, bytes([3]) + serialize(1, b"three", mask=MASK), 2, 2.0)
    p.data(False, bytes([3]) + serialize(1, b"three back"), 3, 3.0)
    first, second = p.results()
    assert first.url == "ws://h/1" and [m.preview for m in first.messages] == [b"one"]
    assert second.url == "ws://h/3"
    assert [m.preview for m in second.messages] == [b"three", b"three back"]
    assert p.result() == first and p.interested


def test_connection_ids_keep_the_first_and_number_the_rest() -> None:
    assert connection_id("cap", 4, 1) == "cap#4"
    assert connection_id("cap", 4, 2) == "cap#4.2"
