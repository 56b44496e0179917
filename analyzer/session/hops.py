"""Hops: one WebSocket session seen at several points of the network, linked into a chain.

Theory of operation
-------------------
A proxy between a browser and a server makes two TCP connections of one WebSocket
session: browser -> proxy (a *leg*) and proxy -> server (the next leg). Captures taken at
different places (a browser HAR, a pcap on the server) or one capture on the proxy host
hold those legs as separate ``Connection``s. ``link_sessions`` finds which connections
are legs of one session and orders them client-most first, so that a reader can see what
each hop changed: a header the proxy dropped, a close code it rewrote.

Linking, strongest evidence first:

1. ``Sec-WebSocket-Key``. Proxies that pass the upgrade through (nginx, Node http-proxy,
   HAProxy) forward the key unchanged, and clients draw a fresh random key per connection,
   so two connections with the same key are one session, provided their times agree
   within ``max_clock_offset`` and their message sequences do not contradict each other.
   Keys known to be reused by tools (the RFC 6455 example key) are not trusted.
2. Otherwise (a proxy that terminates the WebSocket and opens its own: a new key), the
   same method and request-target on a different server endpoint, the proxy's address
   as the new leg's client, data messages of the same sizes in the same order (at least
   one), and causality: everything the client sends reaches the server-side leg later,
   everything the server sends reaches the client-side leg later, each within ``window``
   seconds. Only the server-most leg of a linked group can gain a server-side partner
   this way, and only the client-most a client-side one. Across captures the clocks must
   agree within ``window``, unless key-linked legs in the same two captures measured
   their offset.

The same leg recorded twice (a browser HAR and a pcap of the browser's side, or a pcap
of both legs passed with a pcap of one) is one leg with ``also_seen`` observations, not
a hop: same endpoints where known, otherwise the same request headers.

Ordering the legs of one session, first rule that decides:

- endpoints: the proxy listens on the client-side leg's server address and connects from
  its own address, the server-side leg's client address (decides when addresses differ);
- time nesting, immune to clock offsets: what the client sends reaches the server-side
  leg *later*, what the server sends reaches the client-side leg *later*. For legs X and Y
  with time differences ``d = t_Y - t_X``, X is client-side when the median ``d`` of
  client-to-server events exceeds that of server-to-client events;
- the number of X-Forwarded-For / Forwarded / Via entries (each proxy adds one);
- the upgrade request's time.

The clock offset of each leg (seconds to add to its capture's times to read them on the
first leg's clock) is the midpoint of those two medians, estimated from matched messages
and closes; 0 for legs in the first leg's capture.

Header diffs are per hop and per direction, names compared case-insensitively, raw values
kept (redaction is the renderer's job). ``removed`` means present where the message
entered the proxy and absent where it left: for a request, present on the client-side leg
and absent on the server-side leg; for a response, the other way round.

``HopChain.view()`` is the mapping rules see as ``session`` (names documented there).
"""

from __future__ import annotations

import bisect
import ipaddress
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from analyzer.session.model import Capture, Close, Connection, Headers, Request, Response

# Downstream leg's upgrade request after the upstream one, same clock: a proxy forwards an
# upgrade in well under a second; two seconds leaves room for a slow upstream DNS/connect.
DEFAULT_WINDOW = 2.0
# Clocks of capture machines that are NTP-synchronised differ by milliseconds; unsynchronised
# laptops and containers by seconds to minutes. Ten minutes tolerated, no more: captures of
# one incident are taken together.
DEFAULT_MAX_CLOCK_OFFSET = 600.0
# A clock offset larger than this is worth telling the reader (chain notes).
NOTABLE_OFFSET = 1.0
# Timestamps of one capture are taken by one clock, but a proxy's two sockets can be
# stamped out of order by a millisecond under load.
CLOCK_JITTER = 0.002
# Once a partner is found at delay d, candidates later than 2d + NEAR are not looked at.
NEAR = 0.010
# Events that travel from the client towards the server.
UPSTREAM_EVENTS = frozenset({"request", "client", "close-client"})
# RFC 6455 section 1.3's example key: copied into test tools and hand-written clients.
UNTRUSTED_KEYS = frozenset({"dGhlIHNhbXBsZSBub25jZQ=="})
# More connections than this sharing one key are not one session's legs (a chain of 15
# proxies is already absurd): the client uses a fixed key, which proves nothing.
MAX_LEGS = 16
# Headers a proxy adds to say it forwarded the request (RFC 7239, de facto X-Forwarded-*).
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "via")
# Headers whose values are case-insensitive tokens (RFC 9110 7.6.1, 7.8).
TOKEN_HEADERS = frozenset({"connection", "upgrade"})
# Statuses that by definition come from a gateway or proxy (RFC 9110 15.6.3, 15.6.5).
GATEWAY_STATUSES = frozenset({502, 504})


@dataclass(frozen=True, slots=True)
class Leg:
    """One TCP connection of the session, between two adjacent points of the network."""

    connection: Connection
    client: str | None  # "ip:port" of the side that sent the upgrade, when known
    server: str | None  # "ip:port" (or URL authority for a HAR) it was sent to
    clock_offset: float = 0.0  # add to this leg's times to read them on the chain's clock
    also_seen: tuple[Connection, ...] = ()  # the same leg in other captures

    @property
    def capture(self) -> str:
        return self.connection.capture

    @property
    def close(self) -> Close | None:
        return self.connection.close

    @property
    def start(self) -> float | None:
        """The upgrade request's time on the chain's clock."""
        start = self.connection.start
        return None if start is None else start + self.clock_offset

    def describe(self) -> str:
        """``between 127.0.0.1:51234 and 127.0.0.1:3000``; a HAR's client is the browser."""
        client = self.client or ("the browser" if _from_har(self.connection) else "a client")
        return f"between {client} and {self.server or 'an unknown server'}"


@dataclass(frozen=True, slots=True)
class HeaderChange:
    """One header name a hop removed, added or changed; values in order, raw."""

    name: str  # lower case
    before: tuple[str, ...]  # values where the message entered the proxy (): absent
    after: tuple[str, ...]  # values where it left the proxy


@dataclass(frozen=True, slots=True)
class HeaderDiff:
    removed: tuple[HeaderChange, ...] = ()
    added: tuple[HeaderChange, ...] = ()
    changed: tuple[HeaderChange, ...] = ()

    def names(self, kind: str) -> tuple[str, ...]:
        changes: tuple[HeaderChange, ...] = getattr(self, kind)
        return tuple(c.name for c in changes)

    @classmethod
    def between(cls, before: Headers | None, after: Headers | None) -> HeaderDiff:
        """The diff from ``before`` to ``after``; nothing when either side is unknown."""
        if before is None or after is None:
            return cls()
        b, a = _by_name(before), _by_name(after)
        removed = tuple(HeaderChange(n, v, ()) for n, v in b.items() if n not in a)
        added = tuple(HeaderChange(n, (), v) for n, v in a.items() if n not in b)
        changed = tuple(
            HeaderChange(n, v, a[n]) for n, v in b.items() if n in a and not _same(n, v, a[n])
        )
        return cls(removed, added, changed)


@dataclass(frozen=True, slots=True)
class Hop:
    """A proxy: what arrived on ``client_side`` and what it sent on ``server_side``."""

    index: int  # 0 for the hop nearest the client
    client_side: Leg
    server_side: Leg
    request: HeaderDiff  # upgrade request: client_side's -> server_side's
    response: HeaderDiff  # upgrade response: server_side's -> client_side's
    matched_on: str  # "key" or "request+timing"

    @property
    def proxy(self) -> str | None:
        """Where the proxy listened: the client-side leg's server address."""
        return self.client_side.server

    def describe(self) -> str:
        """``the proxy at 127.0.0.1:3000``."""
        return f"the proxy at {self.proxy}" if self.proxy else "an unidentified proxy"

    @property
    def close_changed(self) -> bool | None:
        """The close (or its absence) differs between the legs; None when either cannot show
        closes or neither leg closed."""
        up, down = self.client_side.connection, self.server_side.connection
        if not (up.close_known and down.close_known):
            return None
        if up.close is None and down.close is None:
            return None
        # A leg whose capture stopped while it was open may simply not have seen the close.
        for conn in (up, down):
            if conn.close is None and conn.end in ("capture-ended", "unknown"):
                return None
        if up.close is None or down.close is None:
            return True
        return (up.close.code, up.close.side) != (down.close.code, down.close.side)


@dataclass(frozen=True, slots=True)
class HopChain:
    """One WebSocket session seen at several points: legs ordered client-most first."""

    id: str  # "session-1", numbered in order of the first leg's start
    legs: tuple[Leg, ...]
    hops: tuple[Hop, ...]
    # One leg whose upgrade a gateway answered itself (502/504): no downstream leg exists.
    gateway_answered: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def connections(self) -> tuple[str, ...]:
        return tuple(leg.connection.id for leg in self.legs)

    def view(self) -> dict[str, Any]:
        """The mapping rules see as ``session``. Every name below is stable; unknown is
        ``None`` (CEL ``null``), never ``false`` or ``0``.

        - ``id``, ``leg_count``, ``hop_count``, ``gateway_answered`` (a single leg whose
          upgrade a gateway refused itself: 502/504), ``notes`` (list of strings),
          ``captures`` (paths of the captures the legs come from, in leg order);
        - ``legs``: client-most first, each ``{index, capture, connection_id, client,
          server, label ("between A and B"), url, method, target, status,
          upgrade_requested (the request asks for a WebSocket upgrade), request_headers,
          response_headers (lower-case name -> list of raw values; {} when unknown),
          close_known, close (null or {from, code, reason}), close_text ("server closed
          1008 (origin not allowed)", "no close frame, TCP FIN"), end, client_messages,
          server_messages, start (chain clock), clock_offset, also_seen (captures that
          recorded the same leg)}``;
        - ``hops``: ``{index, proxy (where it listened: the client-side leg's server),
          label ("the proxy at 127.0.0.1:3000"), matched_on ("key" or
          "request+timing"), client_side, server_side (leg maps as above),
          request_removed, request_added, request_changed, response_removed,
          response_added, response_changed (lists of lower-case header names; removed =
          present where the message entered the proxy, absent where it left),
          close_changed (bool, null when either leg cannot show closes or neither closed)}``.
        """
        legs = [_leg_view(i, leg) for i, leg in enumerate(self.legs)]
        hops = []
        for hop in self.hops:
            hops.append(
                {
                    "index": hop.index,
                    "proxy": hop.proxy,
                    "label": hop.describe(),
                    "matched_on": hop.matched_on,
                    "client_side": legs[hop.index],
                    "server_side": legs[hop.index + 1],
                    "request_removed": list(hop.request.names("removed")),
                    "request_added": list(hop.request.names("added")),
                    "request_changed": list(hop.request.names("changed")),
                    "response_removed": list(hop.response.names("removed")),
                    "response_added": list(hop.response.names("added")),
                    "response_changed": list(hop.response.names("changed")),
                    "close_changed": hop.close_changed,
                }
            )
        return {
            "id": self.id,
            "leg_count": len(self.legs),
            "hop_count": len(self.hops),
            "gateway_answered": self.gateway_answered,
            "notes": list(self.notes),
            "captures": list(dict.fromkeys(leg.capture for leg in self.legs)),
            "legs": legs,
            "hops": hops,
        }

    def to_json(self) -> dict[str, Any]:
        """For reports: the view plus each hop's header diffs with their raw values
        (``{name, before, after}``: lists of values; [] when absent). Redacting
        Authorization, Cookie and the like is the renderer's job."""
        out = self.view()
        for hop, hop_out in zip(self.hops, out["hops"], strict=True):
            for part, diff in (("request", hop.request), ("response", hop.response)):
                hop_out[f"{part}_diff"] = {
                    kind: [
                        {"name": c.name, "before": list(c.before), "after": list(c.after)}
                        for c in getattr(diff, kind)
                    ]
                    for kind in ("removed", "added", "changed")
                }
        for leg, leg_out in zip(self.legs, out["legs"], strict=True):
            leg_out["request_location"] = _loc(leg.connection.request)
            leg_out["close_location"] = (
                leg.close.location.to_json() if leg.close and leg.close.location else None
            )
        return out


def _loc(record: Request | Response | None) -> dict[str, object] | None:
    return record.location.to_json() if record is not None and record.location else None


def _leg_view(index: int, leg: Leg) -> dict[str, Any]:
    conn = leg.connection
    req, resp, close = conn.request, conn.response, conn.close
    return {
        "index": index,
        "capture": conn.capture,
        "connection_id": conn.id,
        "client": leg.client,
        "server": leg.server,
        "label": leg.describe(),
        "url": conn.url,
        "method": req.method if req else None,
        "target": req.target if req else None,
        "status": conn.status,
        "upgrade_requested": _asks_upgrade(conn),
        "request_headers": {k: list(v) for k, v in _by_name(req.headers).items()} if req else {},
        "response_headers": (
            {k: list(v) for k, v in _by_name(resp.headers).items()} if resp else {}
        ),
        "close_known": conn.close_known,
        "close_text": _close_text(conn),
        "close": (
            None
            if close is None
            else {"from": close.side, "code": close.code, "reason": close.reason}
        ),
        "end": conn.end,
        "client_messages": conn.messages_from("client"),
        "server_messages": conn.messages_from("server"),
        "start": leg.start,
        "clock_offset": leg.clock_offset,
        "also_seen": [c.capture for c in leg.also_seen],
    }


def _close_text(conn: Connection) -> str:
    """``server closed 1008 (origin not allowed)``, ``no close frame, TCP FIN``..."""
    close = conn.close
    if close is None:
        if not conn.close_known:
            return "closes not recorded"
        return {
            "fin": "no close frame, TCP FIN",
            "rst": "no close frame, TCP RST",
            "capture-ended": "no close frame before the capture ended",
        }.get(conn.end, "no close frame")
    code = "without a code" if close.code is None else str(close.code)
    reason = f" ({close.reason})" if close.reason else ""
    return f"{close.side} closed {code}{reason}"


# Header helpers ------------------------------------------------------------------------


def _by_name(headers: Headers) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for h in headers:
        out.setdefault(h.name.lower(), []).append(h.value.strip())
    return {k: tuple(v) for k, v in out.items()}


def _same(name: str, a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if name in TOKEN_HEADERS:
        return [x.lower() for x in a] == [y.lower() for y in b]
    return a == b


def _asks_upgrade(conn: Connection) -> bool:
    if conn.request is None:
        return False
    return any(t.lower() == "websocket" for t in conn.request.headers.tokens("Upgrade"))


def _from_har(conn: Connection) -> bool:
    if conn.location is not None and conn.location.entry is not None:
        return True
    return conn.frames is None and conn.stream is None


def _forward_depth(conn: Connection) -> int:
    """How many proxies the request says it went through."""
    if conn.request is None:
        return 0
    headers = conn.request.headers
    return max(len(headers.tokens(name)) for name in FORWARDING_HEADERS)


def _trusted_key(conn: Connection) -> str | None:
    key = conn.key
    if key is None:
        return None
    key = key.strip()
    return None if not key or key in UNTRUSTED_KEYS else key


# Endpoints --------------------------------------------------------------------------------


def _ip(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    if endpoint.startswith("["):
        return endpoint[1 : endpoint.find("]")]
    return endpoint.rsplit(":", 1)[0]


def _server_of(conn: Connection) -> str | None:
    if conn.server is not None:
        return conn.server
    if conn.url:  # a HAR: the URL's authority is where the browser sent it
        parts = urlsplit(conn.url)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            return f"{host}:{port}"
    return None


# Matching events --------------------------------------------------------------------------


def _events(conn: Connection) -> dict[tuple[str, int], tuple[float, int]]:
    """(direction, n) -> (time, size) for the upgrade request, data messages and close."""
    out: dict[tuple[str, int], tuple[float, int]] = {}
    if conn.start is not None and conn.request is not None:
        out[("request", 0)] = (conn.start, -1)
    counts = {"client": 0, "server": 0}
    for m in conn.messages:
        out[(m.side, counts[m.side])] = (m.time, m.size)
        counts[m.side] += 1
    if conn.close is not None and conn.close.time is not None:
        out[("close-" + conn.close.side, 0)] = (conn.close.time, -2)
    return out


@dataclass(frozen=True, slots=True)
class _Timing:
    offset: float  # t_Y - t_X of the same event, estimated
    client_first: bool | None  # X is the client-side leg of Y; None when undecided
    messages: int  # data messages matched
    residual: float  # largest disagreement of an event with the estimate
    contradicts: bool  # a matched message differs in size


def _timing(x: Connection, y: Connection) -> _Timing:
    ex, ey = _events(x), _events(y)
    up: list[float] = []  # client -> server events: later on the server side
    down: list[float] = []  # server -> client events: later on the client side
    matched, contradicts = 0, False
    for key, (tx, sx) in ex.items():
        if key not in ey:
            continue
        ty, sy = ey[key]
        if sx >= 0 and sx != sy:
            contradicts = True
            continue
        if sx >= 0:
            matched += 1
        if key[0] in UPSTREAM_EVENTS:
            up.append(ty - tx)
        else:
            down.append(ty - tx)
    if up and down:
        mu, md = statistics.median(up), statistics.median(down)
        offset = (mu + md) / 2
        client_first: bool | None = mu > md if mu != md else None
    elif up or down:
        offset = statistics.median(up or down)
        client_first = None
        # One direction only: clock skew and latency cannot be told apart. When one clock
        # explains every event (each reaches the far leg later, within the window), the
        # clocks are taken to agree: the median would put half the events before their cause.
        if up and min(up) >= -CLOCK_JITTER and max(up) <= DEFAULT_WINDOW:
            offset = 0.0
        if down and max(down) <= CLOCK_JITTER and min(down) >= -DEFAULT_WINDOW:
            offset = 0.0
    else:
        return _Timing(0.0, None, 0, float("inf"), contradicts)
    residual = max(abs(d - offset) for d in up + down)
    return _Timing(offset, client_first, matched, residual, contradicts)


# Linking ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    conn: Connection
    capture: int  # index of its capture in the input
    also: list[Connection] = field(default_factory=list)
    # Computed once: the timing match looks at each node many times.
    server: str | None = None
    server_ip: str | None = None
    client_ip: str | None = None
    _events: dict[tuple[str, int], tuple[float, int]] | None = None

    def __post_init__(self) -> None:
        self.server = _server_of(self.conn)
        self.server_ip = _ip(self.server)
        self.client_ip = _ip(self.conn.client)

    @property
    def events(self) -> dict[tuple[str, int], tuple[float, int]]:
        if self._events is None:
            self._events = _events(self.conn)
        return self._events


def _same_leg(a: _Node, b: _Node) -> bool:
    """The same TCP connection recorded twice (in two captures)."""
    ca, cb = a.conn, b.conn
    sa, sb = _server_of(ca), _server_of(cb)
    if ca.client and cb.client and sa and sb:
        return ca.client == cb.client and sa == sb
    same_server = _same_server(sa, sb)
    if same_server is not None:
        # A HAR names no client: the same server and the same forwarding depth is the
        # same leg (a proxy's two legs go to different servers).
        return same_server and _forward_depth(ca) == _forward_depth(cb)
    if ca.request is None or cb.request is None:
        return False
    return _header_set(ca.request.headers) == _header_set(cb.request.headers)


def _same_server(a: str | None, b: str | None) -> bool | None:
    """Equal endpoints; None when one is a host name (a HAR's URL) and cannot be compared."""
    if a is None or b is None:
        return None
    if a == b:
        return True
    if _is_ip(_ip(a)) and _is_ip(_ip(b)):
        return False
    return None


def _is_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def _header_set(headers: Headers) -> list[tuple[str, str]]:
    return sorted((h.name.lower(), h.value.strip()) for h in headers)


def _key_plausible(a: Connection, b: Connection, max_offset: float) -> bool:
    if a.start is None or b.start is None:
        return True
    if abs(a.start - b.start) > max_offset + DEFAULT_WINDOW:
        return False
    t = _timing(a, b)
    return not t.contradicts


def _request_plausible(xn: _Node, yn: _Node, offset: float, window: float) -> bool:
    """Could ``yn`` be the leg a proxy opened for ``xn``, lacking a shared key?

    ``offset`` is how much later ``yn``'s capture clock reads than ``xn``'s (0 for one
    capture). With it removed, every client-to-server event must reach ``yn`` after ``xn``,
    and every server-to-client event ``xn`` after ``yn``, each within ``window``: a proxy
    forwards, it does not foresee. Two runs of the same script, however alike, fail this.
    """
    x, y = xn.conn, yn.conn
    if x.request is None or y.request is None or x.start is None or y.start is None:
        return False
    if xn.server is None or yn.server is None or xn.server == yn.server:
        return False
    # The proxy connects from its own address: the client-side leg's server address.
    if offset == 0.0 and yn.client_ip is not None and yn.client_ip != xn.server_ip:
        return False
    if (x.request.method, x.request.target) != (y.request.method, y.request.target):
        return False
    ex, ey = xn.events, yn.events
    toward_server = toward_client = data = 0
    for key, (tx, sx) in ex.items():
        if key not in ey:
            continue
        ty, sy = ey[key]
        if sx >= 0 and sx != sy:
            return False  # the n-th message differs in size: not the same sequence
        late = (ty - offset - tx) if key[0] in UPSTREAM_EVENTS else (tx - ty + offset)
        if not -CLOCK_JITTER <= late <= window:
            return False
        if key[0] in UPSTREAM_EVENTS:
            toward_server += 1
        else:
            toward_client += 1
        data += sx >= 0
    return data > 0 and toward_server > 0 and toward_client > 0


def _precedes(a: _Node, b: _Node) -> bool:
    """``a`` is nearer the client than ``b`` (they are legs of one session)."""
    ca, cb = a.conn, b.conn
    sa, sb = _server_of(ca), _server_of(cb)
    # Endpoints, when the addresses tell: b's client is the host a's server is on.
    if ca.client and cb.client and sa and sb:
        a_to_b = _ip(sa) == _ip(cb.client)
        b_to_a = _ip(sb) == _ip(ca.client)
        if a_to_b != b_to_a:
            return a_to_b
    t = _timing(ca, cb)
    if t.client_first is not None:
        return t.client_first
    da, db = _forward_depth(ca), _forward_depth(cb)
    if da != db:
        return da < db
    if a.capture == b.capture and ca.start is not None and cb.start is not None:
        return ca.start < cb.start
    return ca.id < cb.id


def link_sessions(
    captures: Sequence[Capture],
    *,
    window: float = DEFAULT_WINDOW,
    max_clock_offset: float = DEFAULT_MAX_CLOCK_OFFSET,
) -> tuple[HopChain, ...]:
    """Chains of connections that are one WebSocket session seen at different hops.

    Connections with no upgrade request are not linked (nothing to match on). A chain has
    two legs or more, except a single leg whose upgrade a gateway refused itself (502/504),
    kept with ``gateway_answered`` so that rules can name the proxy.
    """
    nodes = [
        _Node(conn, ci)
        for ci, cap in enumerate(captures)
        for conn in cap.connections
        if conn.request is not None
    ]
    counts: dict[str, int] = {}
    for n in nodes:
        key = _trusted_key(n.conn)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    # A key this common is a fixed one, not a per-connection nonce: it proves nothing.
    reused = frozenset(k for k, c in counts.items() if c > MAX_LEGS)
    nodes = _merge_observations(nodes, max_clock_offset, reused)
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    matched_on: dict[frozenset[int], str] = {}
    by_key: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        key = _trusted_key(n.conn)
        if key is not None and key not in reused:
            by_key.setdefault(key, []).append(i)
    for members in by_key.values():
        for pos, i in enumerate(members):
            for j in members[pos + 1 :]:
                if _key_plausible(nodes[i].conn, nodes[j].conn, max_clock_offset):
                    parent[find(i)] = find(j)
                    matched_on[frozenset((i, j))] = "key"

    # Heuristic edges for proxies that start a new handshake (no shared key): only from
    # the server-most leg of a group to the client-most leg of another, one partner each.
    offsets = _capture_offsets(nodes, matched_on)
    ends: dict[int, tuple[int, int]] = {}
    for members in _groups(nodes, find).values():
        ordered = _order(members, nodes)
        ends[find(ordered[0])] = (ordered[0], ordered[-1])
    firsts = {first for first, _ in ends.values()}
    lasts = {last for _, last in ends.values()}
    # Candidates: same method and target, the server-side leg's request within ``window``
    # after the client-side one (clocks corrected where known): a sorted sweep, not n^2.
    by_target: dict[tuple[str, str, int], list[tuple[float, int]]] = {}
    for i in firsts:
        req, start = nodes[i].conn.request, nodes[i].conn.start
        if req is not None and start is not None:
            by_target.setdefault((req.method, req.target, nodes[i].capture), []).append((start, i))
    for entries in by_target.values():
        entries.sort()
    captures_of: dict[tuple[str, str], list[int]] = {}
    for method, target, cap in by_target:
        captures_of.setdefault((method, target), []).append(cap)
    candidates: list[tuple[float, int, int]] = []
    for i in lasts:
        x = nodes[i]
        if x.conn.request is None or x.conn.start is None:
            continue
        method, target = x.conn.request.method, x.conn.request.target
        for cap in captures_of.get((method, target), ()):
            offset = offsets.get((x.capture, cap))
            if offset is None:  # unrelated clocks: assume them synchronised
                offset = 0.0
            entries = by_target[(method, target, cap)]
            lo = x.conn.start + offset - CLOCK_JITTER
            k = bisect.bisect_left(entries, (lo, -1))
            stop = lo + window + CLOCK_JITTER
            while k < len(entries) and entries[k][0] <= stop:
                j = entries[k][1]
                k += 1
                if find(i) == find(j):
                    continue
                y = nodes[j]
                if _request_plausible(x, y, offset, window):
                    assert y.conn.start is not None
                    delay = abs(y.conn.start - offset - x.conn.start)
                    candidates.append((delay, i, j))
                    # Competitors for this partner start at most about as late again.
                    stop = min(stop, lo + 2 * delay + NEAR)
    has_down: set[int] = set()
    has_up: set[int] = set()
    for _, i, j in sorted(candidates):
        if i in has_down or j in has_up or find(i) == find(j):
            continue
        has_down.add(i)
        has_up.add(j)
        parent[find(i)] = find(j)
        matched_on[frozenset((i, j))] = "request+timing"

    chains: list[HopChain] = []
    for members in _groups(nodes, find).values():
        if len(members) == 1:
            node = nodes[members[0]]
            if node.conn.status in GATEWAY_STATUSES and _asks_upgrade(node.conn):
                chains.append(_build([node], {}, members, gateway=True))
            continue
        ordered = _order(members, nodes)
        chains.append(_build([nodes[i] for i in ordered], matched_on, ordered, gateway=False))
    chains.sort(key=lambda c: (c.legs[0].start is None, c.legs[0].start or 0.0, c.legs[0].capture))
    return tuple(
        HopChain(f"session-{n}", c.legs, c.hops, c.gateway_answered, c.notes)
        for n, c in enumerate(chains, 1)
    )


def _groups(nodes: list[_Node], find: Callable[[int], int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        groups.setdefault(find(i), []).append(i)
    return groups


def _capture_offsets(
    nodes: list[_Node], matched_on: dict[frozenset[int], str]
) -> dict[tuple[int, int], float]:
    """(capture a, capture b) -> how much later b's clock reads, from key-linked legs."""
    samples: dict[tuple[int, int], list[float]] = {}
    for pair in matched_on:
        i, j = sorted(pair)
        a, b = nodes[i], nodes[j]
        if a.capture == b.capture:
            continue
        t = _timing(a.conn, b.conn)
        if t.residual == float("inf"):
            continue
        samples.setdefault((a.capture, b.capture), []).append(t.offset)
        samples.setdefault((b.capture, a.capture), []).append(-t.offset)
    return {k: statistics.median(v) for k, v in samples.items()}


def _merge_observations(
    nodes: list[_Node], max_offset: float, reused: frozenset[str]
) -> list[_Node]:
    """Fold the same leg recorded in several captures into one node (first capture wins,
    except that a packet capture is preferred to a HAR: it shows more)."""
    out: list[_Node] = []
    by_key: dict[str, list[_Node]] = {}
    for n in nodes:
        key = _trusted_key(n.conn)
        if key in reused:
            key = None
        twin = None
        if key is not None:
            for m in by_key.get(key, ()):
                if (
                    m.capture != n.capture
                    and _same_leg(m, n)
                    and _key_plausible(m.conn, n.conn, max_offset)
                ):
                    twin = m
                    break
        if twin is None:
            out.append(n)
            if key is not None:
                by_key.setdefault(key, []).append(n)
            continue
        if _from_har(twin.conn) and not _from_har(n.conn):
            twin.also.append(twin.conn)
            twin.conn, twin.capture = n.conn, n.capture
            twin.__post_init__()
            twin._events = None
        else:
            twin.also.append(n.conn)
    return out


def _order(members: list[int], nodes: list[_Node]) -> list[int]:
    """Client-most first: by how many of the others each leg precedes."""
    score = {
        i: sum(1 for j in members if j != i and _precedes(nodes[i], nodes[j])) for i in members
    }
    return sorted(members, key=lambda i: -score[i])


def _build(
    ordered: list[_Node], matched_on: dict[frozenset[int], str], ids: list[int], *, gateway: bool
) -> HopChain:
    first = ordered[0]
    offsets: dict[int, float] = {first.capture: 0.0}
    notes: list[str] = []
    for prev, node in zip(ordered, ordered[1:], strict=False):
        if node.capture in offsets:
            continue
        t = _timing(prev.conn, node.conn)
        # node's clock reads t.offset later than prev's for the same instant (minus latency)
        offsets[node.capture] = offsets.get(prev.capture, 0.0) - t.offset
        if abs(t.offset) > NOTABLE_OFFSET:
            notes.append(
                f"clock of {node.conn.capture} differs from {prev.conn.capture} by "
                f"{t.offset:+.3f} s (estimated from matched messages)"
            )
    legs = tuple(
        Leg(
            connection=n.conn,
            client=n.conn.client,
            server=_server_of(n.conn),
            clock_offset=round(offsets.get(n.capture, 0.0), 6),
            also_seen=tuple(n.also),
        )
        for n in ordered
    )
    hops = []
    for k, (a, b) in enumerate(zip(legs, legs[1:], strict=False)):
        ra, rb = a.connection.request, b.connection.request
        sa, sb = a.connection.response, b.connection.response
        hops.append(
            Hop(
                index=k,
                client_side=a,
                server_side=b,
                request=HeaderDiff.between(ra.headers if ra else None, rb.headers if rb else None),
                response=HeaderDiff.between(sb.headers if sb else None, sa.headers if sa else None),
                matched_on=matched_on.get(
                    frozenset((ids[k], ids[k + 1])),
                    "key"
                    if _trusted_key(a.connection) == _trusted_key(b.connection) is not None
                    else "request+timing",
                ),
            )
        )
    return HopChain("", legs, tuple(hops), gateway, tuple(notes))


def chain_of(legs: Sequence[Connection], chain_id: str = "session-1") -> HopChain:
    """A chain of ``legs`` taken as given (client-most first, one clock): for rule
    examples and tests of what consumes chains. ``link_sessions`` finds chains in captures."""
    nodes = [_Node(conn, i) for i, conn in enumerate(legs)]
    for i, node in enumerate(nodes):  # legs of one capture share its clock
        node.capture = next(k for k, c in enumerate(legs) if c.capture == legs[i].capture)
    chain = _build(nodes, {}, list(range(len(nodes))), gateway=False)
    return HopChain(chain_id, chain.legs, chain.hops, False, chain.notes)


def chains_for(captures: Iterable[Capture]) -> tuple[HopChain, ...]:
    """``link_sessions`` over any iterable of captures (convenience for the engine)."""
    return link_sessions(tuple(captures))
