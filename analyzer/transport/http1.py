"""HTTP/1.1 on one TCP flow, followed up to the 101 that starts a WebSocket connection.

Theory of operation
-------------------
``Http1`` is the transport of a flow whose first bytes were a request line or a status
line (``analyzer.transport.detect`` decides that). It follows requests and responses,
skipping bodies by length or chunks, to a 101 answering ``Upgrade: websocket``; then it
emits one ``WebSocketStart`` with ``whole_flow`` set (RFC 6455 4.1: after the handshake the
connection carries frames only) and the bytes it held as ``ChannelBytes``. A 101 with no
request before it starts the connection too, with ``handshake.response_without_request``.

It stops (``interested`` False) when a response ends the connection (``Connection:
close``, a body that runs to the end, HTTP/1.0 without keep-alive), when the bytes stop
being HTTP/1.x, after a 101 to another protocol, after ``MAX_PLAIN_EXCHANGES`` exchanges
with no WebSocket upgrade, or after a plain response whose body is chunked or longer than
``MAX_PLAIN_BODY`` (a download: the caller should not reassemble it for nothing). A
rejected upgrade (400, 401, 403, 426, ...) is an ``Attempt`` and following goes on: a
client may retry on the same connection (the retry then replaces it; the anomalies of
both stay). Bytes the client sends after its upgrade request are held until the answer:
frames if it is a 101, the next request otherwise. Bytes after the 101 head, in the same
segment or not, are the server's first frames.

Anomalies: problems of every request head and of the upgrade responses; a gap during the
exchange of an upgrade (``stream.gap``, then the flow is not followed further); the
RFC 6455 checks of the handshake itself (``check_accept``, early client data).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Final

from analyzer.limits import Limits
from analyzer.transport import anomalies as A
from analyzer.transport.base import (
    FLOW_CHANNEL,
    NO_EVENTS,
    Attempt,
    ChannelBytes,
    ChannelGap,
    Event,
    WebSocketStart,
)
from analyzer.transport.held import HeldBytes
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
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
    ws_url,
)
from analyzer.vocabulary import Anomaly, Headers, Location, Request, Response, Side

# Plain HTTP exchanges followed on one keep-alive connection while waiting for an upgrade.
# Browsers open a fresh connection for WebSocket; a reverse proxy reusing an upstream
# keep-alive connection is the case this serves, and it upgrades early.
MAX_PLAIN_EXCHANGES: Final = 8
# A plain (non-upgrade) response body longer than this, or chunked, ends the following.
MAX_PLAIN_BODY: Final = 64 * 1024


class _State(Enum):
    FOLLOWING = "following"  # HTTP exchanges, waiting for an upgrade
    STARTED = "started"  # a 101 started the WebSocket connection: the flow is its
    STOPPED = "stopped"  # nothing more to follow


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


class Http1:
    """The HTTP/1.1 transport of one TCP flow (see the module's docstring).

    ``client`` is the direction of the client (0: the originator); ``bases`` the stream
    offsets where the bytes it is given begin, per direction.
    """

    def __init__(
        self,
        capture: str,
        stream: int,
        limits: Limits,
        *,
        client: int,
        scheme: str = "ws",
        bases: tuple[int, int] = (0, 0),
    ) -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.scheme = scheme
        self.interested = True
        self._state = _State.FOLLOWING
        self._client = client
        self._bufs = (HeldBytes(bases[0]), HeldBytes(bases[1]))  # orig, resp
        self._events: list[Event] = []
        self._anomalies: list[Anomaly] = []
        self._start: float | None = None
        self._pending: list[_Pending] = []
        self._req_skip: int | ChunkedSkipper = 0
        self._resp_skip: int | ChunkedSkipper = 0
        self._awaiting_upgrade = False
        self._plain = 0
        self._upgrade: _Pending | None = None
        self._response: ResponseHead | None = None
        self._response_loc: Location | None = None

    # -- the Transport interface -------------------------------------------------------

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> Sequence[Event]:
        state = self._state
        if state is _State.STARTED:
            return (ChannelBytes(FLOW_CHANNEL, from_orig, chunk, packet, time),)
        if state is _State.STOPPED or not chunk:
            return NO_EVENTS
        if (0 if from_orig else 1) == self._client:
            self._http_client(chunk, packet, time)
        else:
            self._http_server(chunk, packet, time)
        return self._take_events()

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> Sequence[Event]:
        if length <= 0:
            return NO_EVENTS
        if self._state is _State.STARTED:
            return (ChannelGap(FLOW_CHANNEL, from_orig, length, packet, time),)
        if self._state is _State.STOPPED:
            return NO_EVENTS
        d = 0 if from_orig else 1
        buf = self._bufs[d]
        if not buf.data:
            skip = self._req_skip if d == self._client else self._resp_skip
            if isinstance(skip, int) and length <= skip:
                # Inside a body we were skipping anyway.
                if d == self._client:
                    self._req_skip = skip - length
                else:
                    self._resp_skip = skip - length
                buf.base += length
                return NO_EVENTS
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
        return NO_EVENTS

    def decide(self) -> Sequence[Event]:
        return NO_EVENTS  # nothing waits for more evidence: a head is complete or not

    def attempts(self) -> tuple[Attempt, ...]:
        upgrade = self._upgrade
        if upgrade is None or self._state is _State.STARTED:
            return ()
        anomalies = tuple(self._anomalies)
        if self._response is None:
            anomalies += (
                Anomaly(
                    A.HANDSHAKE_NO_RESPONSE,
                    f"expected a response to the upgrade request {upgrade.head.target!r}; "
                    "found none in the capture",
                    self._location(upgrade.packet, "client", upgrade.offset),
                ),
            )
        return (
            Attempt(
                client_is_orig=self._client != 1,
                request=self._request(upgrade),
                response=self._response_record(),
                url=ws_url(upgrade.head, self.scheme),
                http_version=upgrade.head.version.removeprefix("HTTP/"),
                start=upgrade.time,
                anomalies=anomalies,
            ),
        )

    # -- records -----------------------------------------------------------------------

    def _location(self, packet: int | None, side: Side | None, offset: int | None) -> Location:
        return Location(self.capture, packet, self.stream, side, offset)

    def _request(self, pending: _Pending) -> Request:
        h = pending.head
        return Request(
            method=h.method,
            target=h.target,
            headers=h.headers,
            version=h.version,
            location=self._location(pending.packet, "client", pending.offset),
        )

    def _response_record(self) -> Response | None:
        head = self._response
        if head is None:
            return None
        return Response(
            status=head.status,
            headers=head.headers,
            reason=head.reason,
            version=head.version,
            location=self._response_loc,
        )

    def _begin_websocket(self, response: ResponseHead) -> None:
        """The 101 is in: the connection starts, with the bytes held so far (the client's
        early frames were sent before the 101 reached it, so they go first; then what
        followed the 101 head)."""
        upgrade = self._upgrade
        bufs = self._bufs
        version = upgrade.head.version if upgrade is not None else response.version
        self._events.append(
            WebSocketStart(
                channel=FLOW_CHANNEL,
                client_is_orig=self._client != 1,
                request=self._request(upgrade) if upgrade is not None else None,
                response=self._response_record(),
                url=ws_url(upgrade.head if upgrade is not None else None, self.scheme),
                http_version=version.removeprefix("HTTP/"),
                handshake_seen=True,
                start=self._start,
                extensions=field_tokens(response.index, "sec-websocket-extensions"),
                offsets=(bufs[0].base, bufs[1].base),
                whole_flow=True,
                anomalies=tuple(self._anomalies),
            )
        )
        self._state = _State.STARTED
        client = self._client
        for d in (client, 1 - client):
            for chunk, packet, time in bufs[d].take():
                self._events.append(ChannelBytes(FLOW_CHANNEL, d == 0, chunk, packet, time))

    def _take_events(self) -> Sequence[Event]:
        events = self._events
        if not events:
            return NO_EVENTS
        self._events = []
        return events

    # -- helpers -----------------------------------------------------------------------

    def _add(
        self, code: str, detail: str, side: Side | None, packet: int | None, offset: int | None
    ) -> None:
        self._anomalies.append(Anomaly(code, detail, self._location(packet, side, offset)))

    def _problems(
        self, problems: tuple[Problem, ...], side: Side, packet: int, offset: int
    ) -> None:
        for code, detail in problems:
            self._add(code, detail, side, packet, offset)

    def _stop(self) -> None:
        self._state = _State.STOPPED
        self.interested = False
        self._bufs = (HeldBytes(), HeldBytes())

    @property
    def _following(self) -> bool:
        return self._state is _State.FOLLOWING

    # -- bodies ------------------------------------------------------------------------

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
        for chunk, packet, time in buf.take():
            if not self._following:
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

    # -- the client's side: requests ---------------------------------------------------

    def _http_client(self, chunk: bytes, packet: int, time: float) -> None:
        d = self._client
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
        buf = self._bufs[d]
        while buf.data and self._following and not self._awaiting_upgrade:
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
                if not self._following:
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

    # -- the server's side: responses --------------------------------------------------

    def _http_server(self, chunk: bytes, packet: int, time: float) -> None:
        d = 1 - self._client
        buf = self._bufs[d]
        if not buf.data and (self._resp_skip or isinstance(self._resp_skip, ChunkedSkipper)):
            rest = self._skip(d, chunk)
            if rest is None:
                return
            chunk = rest
        buf.add(chunk, packet, time)
        while buf.data and self._following:
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
        """One response head; False when following HTTP ended (a start, or a stop)."""
        loc = self._location(packet, "server", offset)
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
                self._begin_websocket(head)
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
                self._begin_websocket(head)
                return False
        elif head.status == 101:
            self._stop()  # switched to another protocol (h2c, ...)
            return False
        d = 1 - self._client
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
        if pending.upgrade and self._bufs[self._client].data:
            self._parse_requests()  # the client's held bytes are its next request
        return self._following
