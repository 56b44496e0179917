"""Everything above TCP for one TCP flow: HTTP/1.1 upgrade, then RFC 6455 frames.

Theory of operation
-------------------
The capture path (``analyzer.session.build_pcap``) feeds a ``FlowParser`` the in-order
bytes of each direction (``data``) and the holes it could not fill (``gap``); ``orig`` is
the side that sent the SYN (or was seen first). The parser decides what the flow is from
the first bytes, never from port numbers, and keeps ``interested`` True only while the
flow may still be (or is) WebSocket, so the caller can drop everything else early.

Modes, as a table (first bytes of either direction -> mode):

===============================  ===========  ==========================================
first bytes                      mode         then
===============================  ===========  ==========================================
``GET /...`` (a request line)    HTTP         follow requests/responses (bodies skipped
                                              by length or chunks) to a 101 answering
                                              ``Upgrade: websocket``; then WS
``HTTP/1.x 101`` (no request)    HTTP         WS, with ``handshake.response_without_
                                              request``
bytes that parse as frames       HEURISTIC    WS when the evidence below is reached
anything else (TLS, SSH, ...)    STOPPED      ``interested`` False
===============================  ===========  ==========================================

HTTP mode stops (``interested`` False) when a response ends the connection (``Connection:
close``, a body that runs to the end, HTTP/1.0 without keep-alive), when the bytes stop
being HTTP/1.x, after a 101 to another protocol, after ``MAX_PLAIN_EXCHANGES`` exchanges
with no WebSocket upgrade, or after a plain response whose body is chunked or longer than
``MAX_PLAIN_BODY`` (a download: the caller should not reassemble it for nothing). A
rejected upgrade (400, 401, 403, 426, ...) fills ``response`` and following goes on: a
client may retry on the same connection. Bytes the
client sends after its upgrade request are held until the answer: frames if it is a 101,
the next request otherwise. Bytes after the 101 head, in the same segment or not, are the
server's first frames.

The no-handshake heuristic (HEURISTIC mode, ``handshake_seen`` False) accepts a flow when,
from the first byte of each direction that has data, the bytes parse as consecutive
frames that pass every check below, and either both directions have a complete frame
(one side masked, the other not) or one direction alone has ``HEURISTIC_MIN_FRAMES``
complete frames. The masked side is the client. False-positive guards:

- known opcodes only; RSV bits zero except RSV1 on text/binary/continuation frames;
- control frames with FIN set and at most 125 bytes; a close body empty or with an
  allowed code and a UTF-8 reason; minimal length encodings, 64-bit top bit clear;
- every frame of a direction masked alike; payload no larger than ``max_frame_bytes``;
- an uncompressed single-frame text message must be UTF-8;
- no empty non-final continuation frame (a run of zero bytes would parse as those);
- the evidence must come within ``HEURISTIC_MAX_BYTES`` of each direction; a gap before a
  decision stops the flow.

A capture that starts in the middle of a frame cannot be recognised (the first bytes are
payload); one that starts on a frame boundary usually is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.deflate import (
    DEFLATE_FRAME_NAMES,
    PERMESSAGE,
    DeflateParams,
    negotiate_tokens,
)
from analyzer.protocol.frames import KNOWN_OPCODES, FrameReader, RawFrame, parse_header, unmask
from analyzer.protocol.messages import SideState, WebSocketStream, close_code_problem
from analyzer.transport.http11 import (
    BodyFraming,
    ChunkedSkipper,
    FieldIndex,
    NotHttp,
    Problem,
    RequestHead,
    ResponseHead,
    check_accept,
    field_index,
    field_tokens,
    is_websocket_upgrade,
    keeps_alive,
    looks_like_request,
    looks_like_response,
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
    ws_url,
)
from analyzer.vocabulary import (
    Anomaly,
    CloseSeen,
    Frame,
    Headers,
    Location,
    Message,
    Request,
    Response,
    Side,
)

# Plain HTTP exchanges followed on one keep-alive connection while waiting for an upgrade.
# Browsers open a fresh connection for WebSocket; a reverse proxy reusing an upstream
# keep-alive connection is the case this serves, and it upgrades early.
MAX_PLAIN_EXCHANGES: Final = 8
# A plain (non-upgrade) response body longer than this, or chunked, ends the following.
MAX_PLAIN_BODY: Final = 64 * 1024
# Bytes of each direction the heuristic may look at before deciding.
HEURISTIC_MAX_BYTES: Final = 64 * 1024
# Complete frames one direction alone must show for the heuristic to accept the flow.
HEURISTIC_MIN_FRAMES: Final = 3

_UNDECIDED, _HTTP, _HEURISTIC, _WS, _STOPPED = range(5)


@dataclass(frozen=True, slots=True)
class FlowResult:
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


class _Buf:
    """Bytes of one direction held before the flow's nature is known, with their packets."""

    __slots__ = ("data", "pieces", "base")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pieces: list[tuple[bytes, int, float]] = []
        self.base = 0  # stream offset of data[0]

    def add(self, chunk: bytes, packet: int, time: float) -> None:
        self.data += chunk
        self.pieces.append((chunk, packet, time))

    def consume(self, n: int) -> None:
        if n <= 0:
            return
        del self.data[:n]
        self.base += n
        pieces = self.pieces
        while n and pieces:
            chunk, packet, time = pieces[0]
            if len(chunk) <= n:
                n -= len(chunk)
                pieces.pop(0)
            else:
                pieces[0] = (chunk[n:], packet, time)
                n = 0

    def packet_at(self, pos: int) -> tuple[int, float]:
        for chunk, packet, time in self.pieces:
            if pos < len(chunk):
                return packet, time
            pos -= len(chunk)
        return (self.pieces[-1][1], self.pieces[-1][2]) if self.pieces else (0, 0.0)

    def clear(self) -> None:
        self.base += len(self.data)
        self.data = bytearray()
        self.pieces = []


def is_websocket_attempt(headers: Headers) -> bool:
    """A request that tries to open a WebSocket: ``Upgrade: websocket``, or (the upgrade
    headers lost on the way, as a proxy without ``proxy_set_header Upgrade`` sends it) a
    ``Sec-WebSocket-Key`` or ``Sec-WebSocket-Version`` header, which only a WebSocket
    handshake carries (RFC 6455 4.1, 11.3.1, 11.3.5). Either way the exchange is kept as a
    connection (a failed attempt when the answer is not 101)."""
    return _is_attempt(field_index(headers))


def _is_attempt(index: FieldIndex) -> bool:
    """``is_websocket_attempt`` on a head's ``index``."""
    return (
        is_websocket_upgrade(index)
        or "sec-websocket-key" in index
        or "sec-websocket-version" in index
    )


class _Pending:
    """A request waiting for its response."""

    __slots__ = ("head", "packet", "offset", "time", "upgrade")

    def __init__(self, head: RequestHead, packet: int, offset: int, time: float) -> None:
        self.head = head
        self.packet = packet
        self.offset = offset
        self.time = time
        self.upgrade = _is_attempt(head.index)


class FlowParser:
    """Everything above TCP for one TCP flow: HTTP/1.1 upgrade, then RFC 6455 frames,
    messages, permessage-deflate. Parsers observe; trouble becomes Anomaly records."""

    def __init__(self, capture: str, stream: int, limits: Limits, *, scheme: str = "ws") -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.scheme = scheme  # "wss" when the bytes were decrypted from TLS
        self._mode = _UNDECIDED
        # False once the flow is known not to be WebSocket: the caller stops feeding it.
        # A plain attribute, not a property: the TCP loop reads it after every segment.
        self.interested = True
        self._bufs = (_Buf(), _Buf())  # orig, resp
        self._order: list[tuple[int, bytes, int, float]] = []  # heuristic replay order
        self._client: int | None = None  # 0: orig is the client, 1: resp is
        self._anomalies: list[Anomaly] = []
        self._start: float | None = None
        self._last_time: float | None = None
        # HTTP
        self._pending: list[_Pending] = []
        self._req_skip: int | ChunkedSkipper = 0
        self._resp_skip: int | ChunkedSkipper = 0
        self._awaiting_upgrade = False
        self._plain = 0
        self._upgrade: _Pending | None = None
        self._response: ResponseHead | None = None
        self._response_loc: Location | None = None
        self._handshake_seen = False
        # WS
        self._ws: WebSocketStream | None = None
        self._readers: tuple[FrameReader, FrameReader] | None = None
        self._sides: tuple[Side, Side] = ("client", "server")
        self._feed0: Callable[[bytes, int, float], list[RawFrame]]
        self._feed1: Callable[[bytes, int, float], list[RawFrame]]
        self._frame0: Callable[[SideState, RawFrame], None]
        self._side0: SideState
        self._side1: SideState

    # -- the interface -----------------------------------------------------------------

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        """In-order contiguous bytes of one direction."""
        self._last_time = time
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # memoryview/bytearray: the parsers slice and decode bytes
        if self._mode == _WS:
            if from_orig:
                raws = self._feed0(chunk, packet, time)
                if raws:
                    frame, side = self._frame0, self._side0
                    for rf in raws:
                        frame(side, rf)
            else:
                raws = self._feed1(chunk, packet, time)
                if raws:
                    frame, side = self._frame0, self._side1
                    for rf in raws:
                        frame(side, rf)
            return
        if self._mode == _STOPPED or not chunk:
            return
        d = 0 if from_orig else 1
        if self._mode == _UNDECIDED:
            if not self._order:
                # The flow's first bytes (nothing is held yet): a request or a status line
                # starts HTTP mode with this chunk, as _classify and _enter_http would.
                prefix = chunk[:16]
                if looks_like_request(prefix):
                    self._client = d
                    self._mode = _HTTP
                    self._http(d, chunk, packet, time)
                    return
                if looks_like_response(prefix):
                    self._client = 1 - d
                    self._mode = _HTTP
                    self._http(d, chunk, packet, time)
                    return
            self._bufs[d].add(chunk, packet, time)
            self._order.append((d, chunk, packet, time))
            self._classify(d)
        elif self._mode == _HTTP:
            self._http(d, chunk, packet, time)
        else:
            self._bufs[d].add(chunk, packet, time)
            self._order.append((d, chunk, packet, time))
            self._heuristic(final=False)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        """``length`` bytes of that direction are missing from the capture."""
        if length <= 0:
            return
        d = 0 if from_orig else 1
        mode = self._mode
        if mode == _WS:
            assert self._readers is not None and self._ws is not None
            reader = self._readers[d]
            offset = reader.offset
            status, raws = reader.gap(length, packet, time)
            if raws:
                self._ws.on_frames(self._sides[d], raws)
            self._ws.on_gap(self._sides[d], offset, length, packet, status)
            return
        if mode == _STOPPED:
            return
        if mode == _HEURISTIC:
            # Decide on the evidence so far; frames already seen are not lost to the gap.
            self._heuristic(final=True)
            if self._mode == _WS:
                self.gap(from_orig, length, packet, time)
            return
        buf = self._bufs[d]
        if mode == _UNDECIDED and not buf.data:
            buf.base += length  # nothing seen yet: the capture started mid-flow
            return
        if mode == _HTTP and not buf.data:
            skip = self._req_skip if d == self._client else self._resp_skip
            if isinstance(skip, int) and length <= skip:
                # Inside a body we were skipping anyway.
                if d == self._client:
                    self._req_skip = skip - length
                else:
                    self._resp_skip = skip - length
                buf.base += length
                return
        if self._upgrade is not None or self._response is not None:
            side: Side = "client" if d == self._client else "server"
            self._add(
                A.STREAM_GAP,
                f"{length} bytes missing at offset {buf.base + len(buf.data)} of the {side}'s "
                "stream during the HTTP exchange; the flow was not followed further",
                side,
                packet,
                buf.base + len(buf.data),
            )
        self._stop()

    def result(self) -> FlowResult | None:
        """None if the flow never was WebSocket. May be called at any time, more than once;
        what only the end of the capture shows (a frame or message cut short, an upgrade
        with no answer) is computed afresh each time, never stored. A flow still waiting
        for the heuristic's evidence is decided here on what was seen (the weaker bar of
        two complete frames)."""
        if self._mode == _HEURISTIC:
            self._heuristic(final=True)
        upgrade = self._upgrade
        response = self._response
        ws = self._ws
        if ws is None and upgrade is None and response is None:
            return None
        final: list[Anomaly] = []
        if ws is not None:
            assert self._readers is not None
            cut = [
                (self._sides[d], rf)
                for d in (0, 1)
                if (rf := self._readers[d].unfinished()) is not None
            ]
            final = ws.final_anomalies(cut)
        if upgrade is not None and response is None:
            final.append(
                Anomaly(
                    A.HANDSHAKE_NO_RESPONSE,
                    f"expected a response to the upgrade request {upgrade.head.target!r}; "
                    "found none in the capture",
                    Location(self.capture, upgrade.packet, self.stream, "client", upgrade.offset),
                )
            )
        client_is_orig = self._client != 1
        request: Request | None = None
        version: str | None = None
        if upgrade is not None:
            h = upgrade.head
            request = Request(
                h.method,
                h.target,
                h.headers,
                h.version,
                Location(self.capture, upgrade.packet, self.stream, "client", upgrade.offset),
            )
            version = h.version.removeprefix("HTTP/")
        resp: Response | None = None
        if response is not None:
            resp = Response(
                response.status,
                response.headers,
                response.reason,
                response.version,
                self._response_loc,
            )
            version = version or response.version.removeprefix("HTTP/")
        anomalies = list(self._anomalies)
        if ws is not None:
            anomalies += ws.anomalies
        anomalies += final
        start = self._start
        if start is None and ws is not None and ws.frames:
            start = ws.frames[0].time
        return FlowResult(
            client_is_orig=client_is_orig,
            request=request,
            response=resp,
            url=ws_url(upgrade.head if upgrade else None, self.scheme),
            http_version=version,
            handshake_seen=self._handshake_seen or upgrade is not None or response is not None,
            start=start,
            frames=tuple(ws.frames) if ws else (),
            messages=tuple(ws.messages) if ws else (),
            closes=tuple(ws.closes) if ws else (),
            anomalies=tuple(anomalies),
            message_count=dict(ws.message_count) if ws else {"client": 0, "server": 0},
            last_time=self._last_time,
        )

    # -- helpers -----------------------------------------------------------------------

    def _add(
        self, code: str, detail: str, side: Side | None, packet: int | None, offset: int | None
    ) -> None:
        self._anomalies.append(
            Anomaly(code, detail, Location(self.capture, packet, self.stream, side, offset))
        )

    def _problems(
        self, problems: tuple[Problem, ...], side: Side, packet: int, offset: int
    ) -> None:
        for code, detail in problems:
            self._add(code, detail, side, packet, offset)

    def _stop(self) -> None:
        self._mode = _STOPPED
        self.interested = False
        self._bufs = (_Buf(), _Buf())
        self._order = []

    # -- deciding what the flow is -----------------------------------------------------

    def _classify(self, d: int) -> None:
        data = bytes(self._bufs[d].data[:16])
        req = looks_like_request(data)
        if req:
            self._client = d
            self._enter_http()
            return
        resp = looks_like_response(data)
        if resp:
            self._client = 1 - d
            self._enter_http()
            return
        if req is None or resp is None:
            return  # too short to tell
        if _frame_start_plausible(data):
            self._mode = _HEURISTIC
            self._heuristic(final=False)
            return
        self._stop()

    def _enter_http(self) -> None:
        self._mode = _HTTP
        order = self._order
        self._order = []
        bufs = self._bufs
        self._bufs = (_Buf(), _Buf())
        self._bufs[0].base = bufs[0].base
        self._bufs[1].base = bufs[1].base
        for d, chunk, packet, time in order:
            if self._mode != _HTTP:
                # The upgrade completed (or the flow stopped) during the replay.
                self.data(d == 0, chunk, packet, time)
            else:
                self._http(d, chunk, packet, time)

    # -- HTTP --------------------------------------------------------------------------

    def _http(self, d: int, chunk: bytes, packet: int, time: float) -> None:
        if d == self._client:
            self._http_client(chunk, packet, time)
        else:
            self._http_server(chunk, packet, time)

    def _skip(self, d: int, chunk: bytes) -> bytes | None:
        """Skip body bytes; the rest of ``chunk`` after the body, or None (all body, or
        the body framing is broken and the flow stopped)."""
        client = d == self._client
        skip = self._req_skip if client else self._resp_skip
        buf = self._bufs[d]
        if isinstance(skip, int):
            if skip >= len(chunk):
                skip -= len(chunk)
                buf.base += len(chunk)
                chunk = b""
            else:
                buf.base += skip
                chunk = chunk[skip:]
                skip = 0
        else:
            used = skip.feed(chunk)
            if used is None:
                buf.base += len(chunk)
                return None
            if used < 0:
                self._stop()
                return None
            buf.base += used
            chunk = chunk[used:]
            skip = 0
        if client:
            self._req_skip = skip
        else:
            self._resp_skip = skip
        return chunk if chunk else None

    def _skip_buffered(self, d: int) -> None:
        """Skip the body that starts at the front of the buffered bytes of ``d``."""
        buf = self._bufs[d]
        pieces = buf.pieces
        buf.data = bytearray()
        buf.pieces = []
        for chunk, packet, time in pieces:
            if self._mode != _HTTP:
                return
            rest = (
                self._skip(d, chunk)
                if (self._req_skip if d == self._client else self._resp_skip)
                else chunk
            )
            if rest is not None:
                buf.add(rest, packet, time)

    def _begin_body(self, d: int, framing: BodyFraming) -> bool:
        """Start skipping a body; False when it runs to the end of the connection."""
        if framing.kind == "close":
            return False
        skip: int | ChunkedSkipper = (
            ChunkedSkipper() if framing.kind == "chunked" else framing.length
        )
        if d == self._client:
            self._req_skip = skip
        else:
            self._resp_skip = skip
        return True

    def _http_client(self, chunk: bytes, packet: int, time: float) -> None:
        d = self._client
        assert d is not None
        buf = self._bufs[d]
        if not buf.data and (self._req_skip or isinstance(self._req_skip, ChunkedSkipper)):
            rest = self._skip(d, chunk)
            if rest is None:
                return
            chunk = rest
        buf.add(chunk, packet, time)
        if self._awaiting_upgrade:
            if len(buf.data) > self.limits.max_buffered_bytes_per_flow:
                self._stop()  # the server never answers: stop holding the client's bytes
            return
        self._parse_requests()

    def _parse_requests(self) -> None:
        d = self._client
        assert d is not None
        buf = self._bufs[d]
        while buf.data and self._mode == _HTTP and not self._awaiting_upgrade:
            if self._req_skip:
                self._skip_buffered(d)
                continue
            head = parse_request_head(buf.data, self.limits)
            if head is None:
                if len(buf.data) > self.limits.max_header_bytes:
                    self._stop()
                return
            if isinstance(head, NotHttp) or not head.version.startswith("HTTP/1."):
                self._not_http(d, head)
                return
            packet, time = buf.packet_at(0)
            pending = _Pending(head, packet, buf.base, time)
            if head.problems:
                self._problems(head.problems, "client", packet, buf.base)
            self._pending.append(pending)
            buf.consume(head.size)
            if not self._begin_body(d, request_body(head)):
                self._stop()
                return
            if self._req_skip and buf.data:
                self._skip_buffered(d)
                if self._mode != _HTTP:
                    return
            if pending.upgrade:
                self._upgrade = pending
                self._response = None
                self._response_loc = None
                self._start = time
                self._awaiting_upgrade = True
                if buf.data:
                    # RFC 6455 4.1: "Once the client's opening handshake has been sent, the
                    # client MUST wait for a response from the server before sending any
                    # further data."
                    p, _ = buf.packet_at(0)
                    self._add(
                        A.HANDSHAKE_EARLY_CLIENT_DATA,
                        f"expected the client to wait for the 101; found {len(buf.data)} "
                        "bytes sent after the upgrade request before the response",
                        "client",
                        p,
                        buf.base,
                    )
            else:
                self._plain += 1
                if self._plain > MAX_PLAIN_EXCHANGES:
                    self._stop()
                    return

    def _not_http(self, d: int, head: NotHttp | RequestHead | ResponseHead) -> None:
        if isinstance(head, NotHttp) and head.problem is not None:
            if self._upgrade is not None or self._response is not None:
                buf = self._bufs[d]
                packet, _ = buf.packet_at(0)
                side: Side = "client" if d == self._client else "server"
                self._add(head.problem[0], head.problem[1], side, packet, buf.base)
        self._stop()

    def _http_server(self, chunk: bytes, packet: int, time: float) -> None:
        d = 1 - (self._client or 0)
        buf = self._bufs[d]
        if not buf.data and (self._resp_skip or isinstance(self._resp_skip, ChunkedSkipper)):
            rest = self._skip(d, chunk)
            if rest is None:
                return
            chunk = rest
        buf.add(chunk, packet, time)
        while buf.data and self._mode == _HTTP:
            if self._resp_skip:
                self._skip_buffered(d)
                continue
            head = parse_response_head(buf.data, self.limits)
            if head is None:
                if len(buf.data) > self.limits.max_header_bytes:
                    self._stop()
                return
            if isinstance(head, NotHttp):
                self._not_http(d, head)
                return
            hpacket, htime = buf.packet_at(0)
            offset = buf.base
            buf.consume(head.size)
            if not self._on_response(head, hpacket, offset, htime):
                return

    def _on_response(self, head: ResponseHead, packet: int, offset: int, time: float) -> bool:
        """One response head; False when the flow left HTTP mode."""
        loc = Location(self.capture, packet, self.stream, "server", offset)
        if 100 <= head.status < 200 and head.status != 101:
            return True  # informational: the request still waits for its final answer
        pending = self._pending.pop(0) if self._pending else None
        if pending is None:
            if head.status == 101 and is_websocket_upgrade(head.index):
                self._problems(head.problems, "server", packet, offset)
                self._add(
                    A.HANDSHAKE_RESPONSE_WITHOUT_REQUEST,
                    "expected the upgrade request before the 101; found the 101 alone (the "
                    "capture started after the request, or lost it)",
                    "server",
                    packet,
                    offset,
                )
                self._response = head
                self._response_loc = loc
                self._start = time
                self._enter_ws(handshake_seen=True)
                return False
            self._stop()
            return False
        if pending.upgrade:
            if head.problems:
                self._problems(head.problems, "server", packet, offset)
            self._response = head
            self._response_loc = loc
            self._awaiting_upgrade = False
            if head.status == 101:
                problem = check_accept(pending.head.index, head.index)
                if problem is not None:
                    self._add(problem[0], problem[1], "server", packet, offset)
                self._enter_ws(handshake_seen=True)
                return False
        elif head.status == 101:
            self._stop()  # switched to another protocol (h2c, ...)
            return False
        d = 1 - (self._client or 0)
        if not keeps_alive(head.version, head.index) or not keeps_alive(
            pending.head.version, pending.head.index
        ):
            self._stop()
            return False
        framing = response_body(head, pending.head.method)
        if not pending.upgrade and (framing.kind == "chunked" or framing.length > MAX_PLAIN_BODY):
            # A download on a keep-alive connection: an upgrade after it is improbable, and
            # following it would keep the caller reassembling every byte of the flow.
            self._stop()
            return False
        if not self._begin_body(d, framing):
            self._stop()
            return False
        if pending.upgrade and self._bufs[self._client or 0].data:
            self._parse_requests()  # the client's held bytes are its next request
        return self._mode == _HTTP

    # -- WebSocket ---------------------------------------------------------------------

    def _enter_ws(self, handshake_seen: bool) -> None:
        deflate = None
        other = False
        if self._response is not None:
            deflate, problems, other = _extensions(
                field_tokens(self._response.index, "sec-websocket-extensions")
            )
            for p in problems:
                self._add(A.BAD_PARAMETERS, p, "server", None, None)
        self._handshake_seen = handshake_seen
        self._ws = WebSocketStream(
            self.capture,
            self.stream,
            self.limits,
            deflate=deflate,
            other_extension=other,
            handshake_seen=handshake_seen,
        )
        client = self._client if self._client is not None else 0
        self._client = client
        self._sides = ("client", "server") if client == 0 else ("server", "client")
        bufs = self._bufs
        mfb = self.limits.max_frame_bytes
        self._readers = (FrameReader(mfb, bufs[0].base), FrameReader(mfb, bufs[1].base))
        # Bound methods and side states for the hot path of data().
        self._feed0 = self._readers[0].feed
        self._feed1 = self._readers[1].feed
        self._frame0 = self._ws.frame
        self._side0 = self._ws.side(self._sides[0])
        self._side1 = self._ws.side(self._sides[1])
        self._mode = _WS
        # Held bytes: the client's early frames were sent before the 101 reached it, so
        # they go first; then what followed the 101 head. (Often there are none.)
        if bufs[0].pieces or bufs[1].pieces:
            for d in (client, 1 - client):
                pieces = bufs[d].pieces
                for chunk, packet, time in pieces:
                    self.data(d == 0, chunk, packet, time)
            self._bufs = (_Buf(), _Buf())  # nothing reads them in WebSocket mode
        if self._order:
            self._order = []

    # -- the no-handshake heuristic ----------------------------------------------------

    def _heuristic(self, final: bool) -> None:
        verdicts: list[tuple[int, bool | None] | None] = []
        for d in (0, 1):
            data = self._bufs[d].data
            if not data:
                verdicts.append(None)
                continue
            v = _scan(bytes(data), self.limits.max_frame_bytes)
            if v is None:
                self._stop()
                return
            count, masked, _exact = v
            if count == 0 and len(data) > HEURISTIC_MAX_BYTES:
                self._stop()
                return
            verdicts.append((count, masked))
        a, b = verdicts
        client: int | None = None
        if a and b and a[0] and b[0]:
            if a[1] == b[1]:
                self._stop()
                return
            client = 0 if a[1] else 1
        else:
            d = 0 if (a[0] if a else 0) >= (b[0] if b else 0) else 1
            one = verdicts[d]
            need = 2 if final else HEURISTIC_MIN_FRAMES
            if one and one[0] >= need:
                client = d if one[1] else 1 - d
            elif final or any(len(self._bufs[i].data) > HEURISTIC_MAX_BYTES for i in (0, 1)):
                self._stop()
                return
        if client is None:
            return
        order = self._order
        self._order = []
        self._client = client
        bases = (self._bufs[0].base, self._bufs[1].base)
        self._bufs = (_Buf(), _Buf())
        self._bufs[0].base, self._bufs[1].base = bases
        self._enter_ws(handshake_seen=False)
        first_time = order[0][3] if order else None
        for d, chunk, packet, time in order:
            self.data(d == 0, chunk, packet, time)
        self._start = first_time


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


def _frame_start_plausible(data: bytes) -> bool:
    """The first byte could start a frame a WebSocket endpoint sends."""
    b0 = data[0]
    rsv = (b0 >> 4) & 7
    opcode = b0 & 0x0F
    if opcode not in KNOWN_OPCODES or rsv not in (0, 4) or b0 == 0:
        return False
    if opcode >= 8 and (rsv or not b0 & 0x80):
        return False
    return True


def _scan(data: bytes, max_frame_bytes: int) -> tuple[int, bool | None, bool] | None:
    """(complete frames, masked, ends exactly at the end of data) when ``data`` from its
    first byte parses as plausible frames; None as soon as something does not fit."""
    pos = 0
    count = 0
    masked: bool | None = None
    n = len(data)
    while pos < n:
        if not _frame_start_plausible(data[pos : pos + 1]):
            return None
        h = parse_header(data, pos)
        if h is None:
            break
        if h.flags or h.length > max_frame_bytes:
            return None
        if masked is None:
            masked = h.masked
        elif masked != h.masked:
            return None
        if h.opcode >= 8 and h.length > 125:
            return None
        if h.opcode == 0 and not h.fin and h.length == 0:
            return None
        end = pos + h.size + h.length
        if end > n:
            break
        if h.opcode in (1, 8) and (h.opcode == 8 or (h.fin and not h.rsv)):
            payload = data[pos + h.size : end]
            if h.mask is not None:
                payload = unmask(payload, h.mask)
            if h.opcode == 8:
                if len(payload) == 1:
                    return None
                if payload:
                    if close_code_problem((payload[0] << 8) | payload[1]) is not None:
                        return None
                    payload = payload[2:]
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                return None
        count += 1
        pos = end
    return count, masked, pos == n


__all__ = ["FlowParser", "FlowResult", "Headers"]
