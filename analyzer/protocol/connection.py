"""One WebSocket connection, RFC 6455 side: the bytes of its two directions in, records out.

A transport (``analyzer.transport``) says where a connection starts (``WebSocketStart``);
``WebSocketConnection`` is given that start and then the connection's bytes, per direction
(``data``, ``gap``). A ``FrameReader`` per direction (``analyzer.protocol.frames``) cuts
them into frames, which one ``WebSocketStream`` (``analyzer.protocol.messages``) turns into
Frame, Message and CloseSeen records and anomalies; the extensions the 101 negotiated
(RFC 7692 permessage-deflate, x-webkit-deflate-frame) say how payloads inflate.
``result`` gives the ``FlowResult`` the session builder turns into a model Connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.deflate import (
    DEFLATE_FRAME_NAMES,
    PERMESSAGE,
    DeflateParams,
    negotiate_tokens,
)
from analyzer.protocol.frames import FrameReader, RawFrame
from analyzer.protocol.messages import SideState, WebSocketStream
from analyzer.transport.base import Attempt, WebSocketStart
from analyzer.vocabulary import (
    Anomaly,
    CloseSeen,
    Frame,
    Location,
    Message,
    Request,
    Response,
    Side,
)


@dataclass(frozen=True, slots=True)
class FlowResult:
    """One WebSocket connection (or attempt) of a TCP flow, as records."""

    client_is_orig: bool
    request: Request | None
    response: Response | None
    url: str | None  # "ws://host[:port]/target" from Host + request-target
    http_version: str | None  # "1.1"
    handshake_seen: bool  # False: frames recognised by heuristic, no upgrade seen
    start: float | None  # time of the upgrade request (or first frame)
    frames: tuple[Frame, ...]
    messages: tuple[Message, ...]
    closes: tuple[CloseSeen, ...]  # every close frame, in order
    anomalies: tuple[Anomaly, ...]
    message_count: dict[str, int]  # per side, including messages past the record limit
    last_time: float | None


def attempt_result(attempt: Attempt, last_time: float | None) -> FlowResult:
    """An opening handshake that started no connection, as a result without frames."""
    return FlowResult(
        client_is_orig=attempt.client_is_orig,
        request=attempt.request,
        response=attempt.response,
        url=attempt.url,
        http_version=attempt.http_version,
        handshake_seen=True,
        start=attempt.start,
        frames=(),
        messages=(),
        closes=(),
        anomalies=attempt.anomalies,
        message_count={"client": 0, "server": 0},
        last_time=last_time,
    )


class WebSocketConnection:
    """The frames and messages of one WebSocket connection (see the module's docstring).

    ``data`` is the per-segment hot path of a capture: it goes straight to the direction's
    reader and the stream's ``frame``, bound once here.
    """

    def __init__(self, capture: str, stream: int, limits: Limits, start: WebSocketStart) -> None:
        self.start = start
        deflate, problems, other = _extensions(start.extensions)
        where = Location(capture, None, stream, "server", None)
        self._anomalies = [Anomaly(A.BAD_PARAMETERS, p, where) for p in problems]
        self._ws = WebSocketStream(
            capture,
            stream,
            limits,
            deflate=deflate,
            other_extension=other,
            handshake_seen=start.handshake_seen,
        )
        sides: tuple[Side, Side] = (
            ("client", "server") if start.client_is_orig else ("server", "client")
        )
        self._sides = sides  # orig, resp
        mfb = limits.max_frame_bytes
        self._readers = (FrameReader(mfb, start.offsets[0]), FrameReader(mfb, start.offsets[1]))
        # Bound methods and side states for the hot path of data().
        self._feed0: Callable[[bytes, int, float], list[RawFrame]] = self._readers[0].feed
        self._feed1: Callable[[bytes, int, float], list[RawFrame]] = self._readers[1].feed
        self._frame: Callable[[SideState, RawFrame], None] = self._ws.frame
        self._side0 = self._ws.side(sides[0])
        self._side1 = self._ws.side(sides[1])

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        """In-order contiguous bytes of one direction of the connection."""
        if from_orig:
            raws = self._feed0(chunk, packet, time)
            if raws:
                frame, side = self._frame, self._side0
                for rf in raws:
                    frame(side, rf)
        else:
            raws = self._feed1(chunk, packet, time)
            if raws:
                frame, side = self._frame, self._side1
                for rf in raws:
                    frame(side, rf)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        """``length`` bytes of that direction are missing from the capture."""
        d = 0 if from_orig else 1
        reader = self._readers[d]
        side = self._sides[d]
        offset = reader.offset
        status, raws = reader.gap(length, packet, time)
        if raws:
            self._ws.on_frames(side, raws)
        self._ws.on_gap(side, offset, length, packet, status)

    def result(self, last_time: float | None) -> FlowResult:
        """The connection so far. What only the end of the capture shows (a frame or
        message cut short) is computed afresh at each call, never stored."""
        ws = self._ws
        cut = [
            (self._sides[d], rf)
            for d in (0, 1)
            if (rf := self._readers[d].unfinished()) is not None
        ]
        final = ws.final_anomalies(cut)
        s = self.start
        start = s.start
        if start is None and ws.frames:
            start = ws.frames[0].time
        return FlowResult(
            client_is_orig=s.client_is_orig,
            request=s.request,
            response=s.response,
            url=s.url,
            http_version=s.http_version,
            handshake_seen=s.handshake_seen,
            start=start,
            frames=tuple(ws.frames),
            messages=tuple(ws.messages),
            closes=tuple(ws.closes),
            anomalies=(*s.anomalies, *self._anomalies, *ws.anomalies, *final),
            message_count=dict(ws.message_count),
            last_time=last_time,
        )


# What a 101's Sec-WebSocket-Extensions list means, by its items: the deflate parameters,
# their problems, and whether another extension was negotiated. A capture's responses
# nearly all say the same; the cache starts over when it holds _EXTENSIONS_CACHED lists.
_EXTENSIONS_CACHED = 256
_extensions_seen: dict[tuple[str, ...], tuple[DeflateParams | None, tuple[str, ...], bool]] = {}


def _extensions(items: tuple[str, ...]) -> tuple[DeflateParams | None, tuple[str, ...], bool]:
    known = _extensions_seen.get(items)
    if known is None:
        deflate, problems = negotiate_tokens(items)
        names = {e.split(";", 1)[0].strip().lower() for e in items}
        other = bool(names - {PERMESSAGE, *DEFLATE_FRAME_NAMES})
        known = (deflate, tuple(problems), other)
        if sum(map(len, items)) <= 512:  # bounded memory: long lists are not kept
            if len(_extensions_seen) >= _EXTENSIONS_CACHED:
                _extensions_seen.clear()
            _extensions_seen[items] = known
    return known
