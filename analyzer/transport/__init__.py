"""How a WebSocket connection starts inside a TCP flow's byte stream.

Sans-I/O, between ``analyzer.streams`` (reassembled bytes) and ``analyzer.protocol``
(RFC 6455 frames): bytes in, records out (``analyzer.vocabulary``), nothing of the session
model. A transport implements ``base.Transport`` and emits ``WebSocketStart``,
``ChannelBytes`` and ``ChannelGap`` (``base``'s docstring says how).

- ``detect``: what a flow is from its first bytes; sessions already under way (no
  handshake in the capture), recognised with RFC 6455 evidence the protocol layer supplies;
- ``http1``: HTTP/1.1 exchanges up to the 101 (RFC 6455 4), rejected upgrades kept;
- ``http11``: HTTP/1.1 heads (RFC 9112) and the handshake's header checks;
- ``anomalies``: the codes this layer records.

HTTP/2 extended CONNECT (RFC 8441: several connections per TCP flow, one per stream) is
to be another transport beside ``http1``, its starts without ``whole_flow``.
"""

from __future__ import annotations

from analyzer.transport.base import (
    Attempt,
    ChannelBytes,
    ChannelGap,
    Event,
    FrameEvidence,
    FrameScan,
    Transport,
    WebSocketStart,
)
from analyzer.transport.detect import Detector
from analyzer.transport.http1 import Http1

__all__ = [
    "Attempt",
    "ChannelBytes",
    "ChannelGap",
    "Detector",
    "Event",
    "FrameEvidence",
    "FrameScan",
    "Http1",
    "Transport",
    "WebSocketStart",
]
