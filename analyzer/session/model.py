"""The session model: what every input (HAR or packet capture) is turned into.

Theory of operation
-------------------
A ``Capture`` holds ``Connection``s. A connection is one WebSocket (or attempted
WebSocket) session as seen at one point of the network: its upgrade ``Request`` and
``Response`` (headers kept in order, original case, duplicates included), the data
``Message``s each side sent, the ``Frame``s where the source records them, the first
``Close`` and how the connection ended (``end``).

What a source cannot observe is ``None`` ("unknown"), never ``False`` or ``0``: a Chrome
HAR records no close frames, so ``close`` is ``None`` *and* ``close_known`` is ``False``.
Which facts a source can show is listed in ``can_show`` (see ``Fact``); rules declare the
facts they ``require`` and are reported as "cannot be evaluated" when one is missing.

Every record knows where it came from (``Location``): a packet number as Wireshark counts
them, the TCP stream, direction and byte offset; or a HAR entry index and message index.

The records a connection is made of (``Location``, ``Anomaly``, ``Headers``, ``Request``,
``Response``, ``Frame``, ``Message``, ...) are the shared vocabulary of every layer and are
defined in ``analyzer.vocabulary``; they are re-exported here.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Literal

from analyzer.vocabulary import (
    WEBSOCKET_GUID,
    Anomaly,
    CloseCode,
    CloseSeen,
    Fact,
    Frame,
    Header,
    Headers,
    Location,
    Message,
    Opcode,
    Request,
    Response,
    Side,
    TlsInfo,
)

__all__ = [
    "WEBSOCKET_GUID",
    "Anomaly",
    "Capture",
    "CaptureFormat",
    "Close",
    "CloseCode",
    "CloseSeen",
    "Connection",
    "EndKind",
    "Fact",
    "Frame",
    "Header",
    "Headers",
    "Location",
    "Message",
    "Opcode",
    "Request",
    "Response",
    "Side",
    "TlsInfo",
]

CaptureFormat = Literal["har", "pcap", "pcapng"]
EndKind = Literal["close-handshake", "close-unanswered", "fin", "rst", "capture-ended", "unknown"]


@dataclass(frozen=True, slots=True)
class Close:
    """The first close frame of a connection (or the close a HAR exporter recorded)."""

    side: Side
    code: int | None  # None: the close frame had an empty body (RFC 6455: 1005 to the app)
    reason: str | None
    time: float | None
    echoed: bool | None  # the other side sent its own close afterwards; None: cannot tell
    client_messages_before: int  # data messages the client sent before this close
    server_messages_before: int
    since_last_message: float | None  # seconds since the previous data message, either side
    location: Location | None = None
    frame_index: int | None = None
    echo_code: int | None = None  # the code of the answering close, when echoed
    echo_location: Location | None = None
    # False when the source records a close but not who sent it (HTTP Toolkit's HAR
    # ``_webSocketClose``): ``side`` is then a placeholder, not an observation.
    side_known: bool = True


def _token_name(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Connection:
    """One WebSocket connection (or attempt) as seen at one point of the network."""

    id: str  # stable within a capture: "<capture-stem>#<n>"
    capture: str  # the capture's path as given
    url: str | None
    client: str | None  # "ip:port", IPv6 as "[::1]:8080"; None when not known (HAR)
    server: str | None
    start: float | None  # Unix seconds of the upgrade request (or first packet seen)
    end_time: float | None
    request: Request | None
    response: Response | None
    messages: tuple[Message, ...]
    frames: tuple[Frame, ...] | None  # None: this source does not record frames
    close: Close | None
    close_known: bool  # False when the source cannot record close frames
    end: EndKind
    can_show: frozenset[str]
    anomalies: tuple[Anomaly, ...] = ()
    location: Location | None = None
    http_version: str | None = None  # "1.1" or "2" (RFC 8441), None when unknown
    handshake_seen: bool = True  # False: frames recognised with no upgrade in the capture
    tls: TlsInfo | None = None
    stream: int | None = None  # TCP stream index for packet captures
    message_count: dict[str, int] | None = None  # per side, including any past the limit
    extra: dict[str, object] = field(default_factory=dict)

    # Derived facts: computed from the handshake, never stored twice.

    @property
    def origin(self) -> str | None:
        return self.request.headers.get("Origin") if self.request else None

    @property
    def host(self) -> str | None:
        if self.request is None:
            return None
        return self.request.headers.get("Host") or self.request.headers.get(":authority")

    @property
    def user_agent(self) -> str | None:
        return self.request.headers.get("User-Agent") if self.request else None

    @property
    def key(self) -> str | None:
        return self.request.headers.get("Sec-WebSocket-Key") if self.request else None

    @property
    def accept(self) -> str | None:
        return self.response.headers.get("Sec-WebSocket-Accept") if self.response else None

    @property
    def expected_accept(self) -> str | None:
        """RFC 6455 4.2.2: base64(SHA-1(key + GUID)), when the key is known."""
        if self.key is None:
            return None
        digest = hashlib.sha1((self.key.strip() + WEBSOCKET_GUID).encode()).digest()
        return base64.b64encode(digest).decode()

    @property
    def accept_ok(self) -> bool | None:
        """Whether Sec-WebSocket-Accept matches the key; None when either is unknown."""
        if self.accept is None or self.expected_accept is None:
            return None
        return self.accept.strip() == self.expected_accept

    @property
    def subprotocols_offered(self) -> tuple[str, ...]:
        return self.request.headers.tokens("Sec-WebSocket-Protocol") if self.request else ()

    @property
    def subprotocol_selected(self) -> str | None:
        if self.response is None:
            return None
        value = self.response.headers.get("Sec-WebSocket-Protocol")
        return value.strip() if value is not None else None

    @property
    def extensions_offered(self) -> tuple[str, ...]:
        if self.request is None:
            return ()
        return self.request.headers.tokens("Sec-WebSocket-Extensions")

    @property
    def extensions_negotiated(self) -> tuple[str, ...]:
        if self.response is None:
            return ()
        return self.response.headers.tokens("Sec-WebSocket-Extensions")

    @property
    def extension_names(self) -> tuple[str, ...]:
        """Names of the negotiated extensions, lower case: ("permessage-deflate",)."""
        return tuple(_token_name(e) for e in self.extensions_negotiated)

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    def messages_from(self, side: Side) -> int:
        if self.message_count is not None:
            return self.message_count.get(side, 0)
        return sum(1 for m in self.messages if m.side == side)


@dataclass(frozen=True, slots=True)
class Capture:
    path: str
    format: CaptureFormat
    creator: str | None  # "Chrome", "mitmproxy", "tcpdump"... as the file says
    creator_version: str | None
    can_show: frozenset[str]
    connections: tuple[Connection, ...]
    anomalies: tuple[Anomaly, ...] = ()  # capture-level: malformed HAR entries, bad blocks
    packets: int | None = None  # packet count for packet captures
    secrets_embedded: bool = False  # a pcapng Decryption Secrets Block is present
    notes: tuple[str, ...] = ()  # what this capture cannot show, and why
