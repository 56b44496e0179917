"""What a transport is: the interface ``analyzer.protocol.flow.FlowParser`` drives, and the
records a transport emits.

Theory of operation
-------------------
A transport reads one TCP flow's reassembled bytes (``data``, ``gap``; ``from_orig`` names
the direction) and says where WebSocket connections start in them. It emits events, in
order:

- ``WebSocketStart``: a connection starts on a *channel* (0 for the flow itself; for
  HTTP/2, RFC 8441, the stream id of the extended CONNECT). It carries what the transport
  saw of the opening (request and response heads, where the WebSocket bytes begin, when).
- ``ChannelBytes`` / ``ChannelGap``: bytes of a channel, or a hole in them, in the order
  they are to be parsed. Bytes held while the transport was deciding (the client's early
  frames, the server's frames in the 101's segment, a mid-session flow's first segments)
  come first, right after their start.

A start with ``whole_flow`` set (HTTP/1.1's 101, a mid-session flow) means every later byte
of the TCP flow is that channel's: the caller feeds them to the connection directly and
calls the transport no more. Otherwise (HTTP/2) the transport goes on demultiplexing and
may start several connections on one flow.

``attempts`` lists the opening handshakes that started no connection (an upgrade refused
with 403, one never answered): they are connections to report too, without frames. What
only the end of the capture shows is computed afresh at each call, never stored.

Transports know nothing of RFC 6455 frames: a transport that must recognise frames (the
mid-session heuristic) is given a ``FrameEvidence`` by the layer above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from analyzer.vocabulary import Anomaly, Request, Response

# The channel of a connection that is the whole TCP flow (HTTP/1.1, mid-session).
FLOW_CHANNEL = 0


@dataclass(frozen=True, slots=True)
class WebSocketStart:
    """A WebSocket connection starts on ``channel``; its bytes follow as ChannelBytes."""

    channel: int
    client_is_orig: bool
    request: Request | None  # None: the upgrade request was not seen
    response: Response | None  # None: no handshake seen (mid-session)
    url: str | None  # "ws://host[:port]/target" from Host + request-target
    http_version: str | None  # "1.1"
    handshake_seen: bool  # False: recognised from its frames, no opening handshake seen
    start: float | None  # time of the upgrade request (or of the first bytes)
    extensions: tuple[str, ...]  # Sec-WebSocket-Extensions items of the response, as sent
    offsets: tuple[int, int]  # stream offset of the first WebSocket byte: (orig, resp)
    whole_flow: bool  # every later byte of the TCP flow belongs to this channel
    anomalies: tuple[Anomaly, ...]  # what the transport noted up to the start


@dataclass(frozen=True, slots=True)
class Attempt:
    """An opening handshake that started no connection: answered with something other than
    a 101 (``response`` set), or not answered in the capture (``response`` None)."""

    client_is_orig: bool
    request: Request
    response: Response | None
    url: str | None
    http_version: str | None
    start: float
    anomalies: tuple[Anomaly, ...]


class ChannelBytes(NamedTuple):
    """In-order bytes of one direction of a started channel."""

    channel: int
    from_orig: bool
    data: bytes
    packet: int
    time: float


class ChannelGap(NamedTuple):
    """``length`` bytes of one direction of a started channel are missing."""

    channel: int
    from_orig: bool
    length: int
    packet: int
    time: float


Event = WebSocketStart | ChannelBytes | ChannelGap
NO_EVENTS: tuple[Event, ...] = ()


class Transport(Protocol):
    """How WebSocket connections start inside one TCP flow (see the module's docstring)."""

    # False once no connection can start (or go on) in this flow: the caller may stop
    # feeding it. A plain attribute: it is read after every segment.
    interested: bool

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> Sequence[Event]:
        """In-order contiguous bytes of one direction."""
        ...

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> Sequence[Event]:
        """``length`` bytes of that direction are missing from the capture."""
        ...

    def decide(self) -> Sequence[Event]:
        """Decide on what was seen so far (the capture may end here)."""
        ...

    def attempts(self) -> tuple[Attempt, ...]:
        """The opening handshakes so far that started no connection."""
        ...


class FrameScan(NamedTuple):
    """What a run of bytes looks like as RFC 6455 frames from its first byte."""

    frames: int  # complete frames
    masked: bool | None  # whether they are masked (None: no frame header yet)
    exact: bool  # the bytes end exactly at the end of a frame


class FrameEvidence(Protocol):
    """RFC 6455 checks a transport may ask for, supplied by ``analyzer.protocol``."""

    def plausible_start(self, data: bytes) -> bool:
        """Whether the first byte of ``data`` (not empty) could start a frame."""
        ...

    def scan(self, data: bytes) -> FrameScan | None:
        """``data`` as plausible frames from its first byte; None when something does not fit."""
        ...
