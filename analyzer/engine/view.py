"""The CEL view of the session model: what rule conditions and messages can read.

Theory of operation
-------------------
Rules never see Python objects. A connection is turned into plain values (dicts, lists,
strings, numbers, booleans, None) under stable names, the JSON contract's names
(``id, url, client, server, request, response, origin, messages, close, close_known,
end, anomalies, frames``) plus derived facts a rule would otherwise compute badly
(``origin_host``, ``via_proxy``, ``first_client_message_time``...). ``VIEW_SCHEMA``
describes every field; the loader checks each field a rule names against it, so a typo is
an error when the rule loads, with its file, line and column.

Unknown is ``null``, never ``false`` or ``0``: a HAR from Chrome records no close frames,
so ``connection.close`` is ``null`` and ``connection.close_known`` is ``false``;
``connection.frames`` is ``null`` where the source records no frames. Rules test
``connection.close != null`` (or ``has()``) before reading inside.

Heavy fields
------------
``messages`` and ``frames`` grow with the connection (100 000 messages is allowed). The
CEL runtime converts a variable's whole value on first use, so these two are only put in
the view for rules that name them (the loader knows which from the parsed condition);
every other rule pays for the small part of the view alone. ``HEAVY_FIELDS`` lists them.

Light fields are computed lazily too: ``LazyConnectionView`` (what the engine gives rules)
computes a group of related fields the first time one of them is read, and gives exactly
``connection_view``'s values when read whole. The built-in pack's conditions read about
twenty of the sixty fields; messages of the rules that fire read a few more.

The mapping is documented field by field in ``FIELD_DOCS`` and in docs/rules.md; names
are never renamed once released, only added.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from analyzer.session.model import WEBSOCKET_GUID, Capture, Connection, Headers

# -- the schema of the view -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A leaf or container in the view: ``kind`` is a CEL type name."""

    kind: str  # "string" | "int" | "double" | "bool" | "list" | "map" | "struct" | "dyn"
    nullable: bool = False
    item: Field | None = None  # element of a list, value of a map
    fields: Mapping[str, Field] | None = None  # members of a struct
    doc: str = ""

    def describe(self) -> str:
        if self.kind == "list" and self.item is not None:
            text = f"list of {self.item.describe()}"
        elif self.kind == "map" and self.item is not None:
            text = f"map of string to {self.item.describe()}"
        elif self.kind == "struct":
            text = "map"
        else:
            text = self.kind
        return text + (" or null" if self.nullable else "")


def _s(doc: str = "", nullable: bool = True) -> Field:
    return Field("string", nullable, doc=doc)


def _i(doc: str = "", nullable: bool = True) -> Field:
    return Field("int", nullable, doc=doc)


def _d(doc: str = "", nullable: bool = True) -> Field:
    return Field("double", nullable, doc=doc)


def _b(doc: str = "", nullable: bool = True) -> Field:
    return Field("bool", nullable, doc=doc)


def _list(item: Field, doc: str = "", nullable: bool = False) -> Field:
    return Field("list", nullable, item=item, doc=doc)


def _map(item: Field, doc: str = "", nullable: bool = False) -> Field:
    return Field("map", nullable, item=item, doc=doc)


def _struct(fields: Mapping[str, Field], doc: str = "", nullable: bool = False) -> Field:
    return Field("struct", nullable, fields=fields, doc=doc)


def _nullable(f: Field) -> Field:
    return replace(f, nullable=True)


HEADER = _struct({"name": _s("as sent, original case", False), "value": _s("", False)})
PER_SIDE_INT = _struct({"client": _i("", False), "server": _i("", False)})

REQUEST = _struct(
    {
        "method": _s("GET (CONNECT for WebSocket over HTTP/2)", False),
        "target": _s("request-target as sent: /chat?x=1", False),
        "version": _s("HTTP/1.1, HTTP/2"),
        "headers": _list(HEADER, "in the order sent, original case, duplicates kept"),
        "headers_by_name": _map(_list(_s("", False)), "lower-cased name -> every value, in order"),
    },
    "the upgrade request; null when the capture does not show it",
    nullable=True,
)
RESPONSE = _struct(
    {
        "status": _i("101 for an accepted upgrade (200 over HTTP/2)", False),
        "reason": _s("reason phrase as sent"),
        "version": _s("HTTP/1.1, HTTP/2"),
        "headers": _list(HEADER, "in the order sent, original case, duplicates kept"),
        "headers_by_name": _map(_list(_s("", False)), "lower-cased name -> every value, in order"),
    },
    "the server's answer to the upgrade; null when the capture does not show it",
    nullable=True,
)
CLOSE = _struct(
    {
        "from": _s("client or server", False),
        "side_known": _b("false when the source does not say who closed (HTTP Toolkit)", False),
        "code": _i("status code; null when the close frame had no body"),
        "reason": _s("reason text; null when none"),
        "time": _d("Unix seconds"),
        "echoed": _b("the other side answered with its own close; null: cannot tell"),
        "echo_code": _i("the answering close's code"),
        "client_messages_before": _i("data messages the client sent before this close", False),
        "server_messages_before": _i("data messages the server sent before this close", False),
        "since_last_message": _d("seconds since the last data message before the close"),
    },
    "the first close frame; null when none was seen or the source cannot record closes",
    nullable=True,
)
MESSAGE = _struct(
    {
        "index": _i("", False),
        "from": _s("client or server", False),
        "time": _d("Unix seconds", False),
        "opcode": _i("1 text, 2 binary", False),
        "size": _i("application payload bytes, after inflating", False),
        "compressed": _b("permessage-deflate; null when unknown"),
        "frames": _i("frames that carried it; null when unknown"),
    }
)
FRAME = _struct(
    {
        "index": _i("", False),
        "from": _s("client or server", False),
        "time": _d("Unix seconds", False),
        "fin": _b("", False),
        "rsv": _i("RSV bits as 0..7 (RSV1 = 4)", False),
        "opcode": _i("", False),
        "masked": _b("", False),
        "length": _i("payload length on the wire", False),
        "close_code": _i(),
        "close_reason": _s(),
    }
)
ANOMALY = _struct({"code": _s("stable dotted code", False), "detail": _s("", False)})
CAPTURE = _struct(
    {
        "path": _s("", False),
        "format": _s("har, pcap or pcapng", False),
        "creator": _s("Chrome, mitmproxy, tcpdump... as the file says"),
        "creator_version": _s(),
        "can_show": _list(_s("", False), "Fact values this capture can show"),
        "packets": _i("packet count (packet captures)"),
        "anomalies": _list(ANOMALY, "capture-level anomalies"),
        "connection_count": _i("", False),
    },
    "the capture the connection came from",
)

CONNECTION_FIELDS: dict[str, Field] = {
    "id": _s("stable within a capture: <capture-stem>#<n>", False),
    "capture": _s("the capture's path", False),
    "url": _s("ws://host[:port]/target"),
    "scheme": _s("ws or wss, from the URL"),
    "client": _s("ip:port ([::1]:8080 for IPv6)"),
    "server": _s("ip:port"),
    "start": _d("Unix seconds of the upgrade request"),
    "end_time": _d("Unix seconds of the last thing seen"),
    "duration": _d("end_time - start"),
    "http_version": _s("1.1 or 2"),
    "handshake_seen": _b("false: frames recognised with no upgrade in the capture", False),
    "request": REQUEST,
    "response": RESPONSE,
    "request_seen": _b("the capture shows the upgrade request (request != null)", False),
    "response_seen": _b("the capture shows the answer to it (response != null)", False),
    "status": _i("response.status, or null"),
    "upgraded": _b("the server accepted the upgrade (101, or 200 over HTTP/2); null: unknown"),
    "origin": _s("the Origin header; null when absent (or no request)"),
    "origin_host": _s("host[:port] of Origin, lower case; null when absent or 'null'"),
    "origin_is_null": _b("Origin is the literal 'null' (sandboxed or file: pages)"),
    "host": _s("the Host header (or :authority), lower case"),
    "host_name": _s("host without port, lower case"),
    "origin_matches_host": _b(
        "Origin's host[:port] equals Host (default ports ignored); null when either is absent"
    ),
    "origin_same_site": _b(
        "Origin and Host are the same site: same registrable domain (www.example.com and "
        "ws.example.com are), ports ignored; approximated without the public suffix list; "
        "null when either is absent"
    ),
    "user_agent": _s("User-Agent; null when absent"),
    "is_browser_ua": _b("User-Agent looks like a browser's (Mozilla/5.0 ...); null: no request"),
    "via_proxy": _b(
        "the request carries Via, Forwarded, X-Forwarded-* or X-Real-IP; null: no request"
    ),
    "proxy_headers": _list(_s("", False), "which of those headers are present (lower case)"),
    "key": _s("Sec-WebSocket-Key"),
    "accept": _s("Sec-WebSocket-Accept"),
    "expected_accept": _s("base64(SHA-1(key + GUID)) when the key is known"),
    "accept_ok": _b("accept matches the key; null when either is unknown"),
    "subprotocols_offered": _list(_s("", False), "Sec-WebSocket-Protocol of the request"),
    "subprotocol_selected": _s("Sec-WebSocket-Protocol of the response"),
    "extensions_offered": _list(_s("", False), "Sec-WebSocket-Extensions of the request"),
    "extensions_negotiated": _list(_s("", False), "Sec-WebSocket-Extensions of the response"),
    "extension_names": _list(_s("", False), "negotiated extension names, lower case"),
    "query_keys": _list(_s("", False), "query-string parameter names of the URL, lower case"),
    "messages": _list(MESSAGE, "data messages, both sides, in order (heavy: see docs)"),
    "message_count": PER_SIDE_INT,
    "messages_known": _b("the source records data messages", False),
    "first_client_message_time": _d("Unix seconds"),
    "first_server_message_time": _d("Unix seconds"),
    "last_message_time": _d("Unix seconds of the last data message, either side"),
    "close": CLOSE,
    "close_known": _b("false when the source cannot record close frames", False),
    "messages_before_close": _nullable(PER_SIDE_INT),
    "close_after_first_client_message": _d(
        "seconds from the client's first data message to the first close"
    ),
    "idle_before_end": _d(
        "seconds of silence (no data message, no ping) before the close or the end"
    ),
    "end": _s("close-handshake, close-unanswered, fin, rst, capture-ended or unknown", False),
    "pings": _nullable(PER_SIDE_INT),
    "pongs": _nullable(PER_SIDE_INT),
    "frames": _list(
        FRAME, "every frame (heavy: see docs); null: source records no frames", nullable=True
    ),
    "frames_known": _b("the source records frames", False),
    "anomalies": _list(ANOMALY, "odd traffic seen by the parsers"),
    "anomaly_codes": _list(_s("", False), "distinct anomaly codes, in first-seen order"),
    "can_show": _list(_s("", False), "Fact values the source can show for this connection"),
    "tls": _struct(
        {
            "version": _s(),
            "sni": _s(),
            "alpn": _list(_s("", False)),
            "alpn_selected": _s(),
            "decrypted": _b("", False),
        },
        nullable=True,
    ),
}


HEAVY_FIELDS = ("messages", "frames")

# -- building the view ----------------------------------------------------------------------

# Request headers that show the request went through an HTTP intermediary.
PROXY_HEADERS = (
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
)
_BROWSER_MARKERS = ("chrome/", "firefox/", "safari/", "edg/", "gecko/", "opr/", "chromium/")
_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


def _first(by_name: dict[str, list[str]], name: str) -> str | None:
    values = by_name.get(name)
    return values[0] if values else None


def _tokens(by_name: dict[str, list[str]], name: str) -> list[str]:
    """Comma-separated list values of every ``name`` field (as ``Headers.tokens``)."""
    out: list[str] = []
    for value in by_name.get(name, ()):
        out.extend(t.strip() for t in value.split(",") if t.strip())
    return out


def _ordered(headers: Headers) -> list[dict[str, str]]:
    return [{"name": h.name, "value": h.value} for h in headers.items]


def _by_name(headers: Headers) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for h in headers.items:
        by_name.setdefault(h.name.lower(), []).append(h.value)
    return by_name


def _strip_default_port(hostport: str, scheme: str | None) -> str:
    host, sep, port = hostport.rpartition(":")
    if sep and "]" not in port and port == _DEFAULT_PORTS.get(scheme or "", ""):
        return host
    return hostport


@lru_cache(maxsize=4096)
def _host_name(hostport: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:80`` -> ``[::1]``."""
    if hostport.startswith("["):
        return hostport.split("]", 1)[0] + "]"
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


# Second-level labels under which country-code registries sell names (example.co.uk).
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"})


@lru_cache(maxsize=4096)
def site_of(host: str) -> str:
    """The registrable domain of ``host``, approximately: ``demo.example.com`` ->
    ``example.com``, ``a.b.example.co.uk`` -> ``example.co.uk``; an IP address or a
    single label is its own site. No public suffix list: hosting suffixes such as
    github.io count as one site."""
    host = host.lower().rstrip(".")
    if host.startswith("[") or host.replace(".", "").isdigit() or "." not in host:
        return host
    labels = host.split(".")
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


@lru_cache(maxsize=4096)
def origin_host(origin: str | None) -> str | None:
    """``https://App.example:443`` -> ``app.example``; None for absent, 'null' or opaque."""
    if origin is None:
        return None
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return _strip_default_port(parts.netloc.lower(), parts.scheme.lower())


@lru_cache(maxsize=4096)
def is_browser_user_agent(ua: str | None) -> bool:
    """Browsers (and headless ones) send ``Mozilla/5.0 (...) <Engine>/<version>``."""
    if ua is None:
        return False
    low = ua.lower()
    return low.startswith("mozilla/5.0") and any(m in low for m in _BROWSER_MARKERS)


def _per_side_counts(items: Any, opcode: int) -> dict[str, int]:
    out = {"client": 0, "server": 0}
    for f in items:
        if f.opcode == opcode:
            out[f.side] += 1
    return out


# Connections of one capture share URLs, origins, user agents and facts: the parsing of
# each distinct value is done once (these caches hold strings, never connections).
@lru_cache(maxsize=4096)
def _query_keys(query: str) -> tuple[str, ...]:
    return tuple(k.lower() for k, _ in parse_qsl(query, keep_blank_values=True))


@lru_cache(maxsize=4096)
def _url_parts(url: str) -> tuple[str | None, tuple[str, ...]]:
    """(scheme, query keys) of a URL."""
    parts = urlsplit(url)
    return parts.scheme.lower() or None, _query_keys(parts.query)


@lru_cache(maxsize=256)
def _facts(can_show: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(str(f) for f in can_show))


@lru_cache(maxsize=4096)
def _expected_accept(key: str) -> str:
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


class _Source:
    """What several view fields are computed from, each part computed once on demand."""

    __slots__ = ("c", "done", "_req_names", "_resp_names", "_url", "_messages")

    def __init__(self, c: Connection) -> None:
        self.c = c
        self.done: set[Callable[[_Source], dict[str, Any]]] = set()  # groups computed
        self._req_names: dict[str, list[str]] | None = None
        self._resp_names: dict[str, list[str]] | None = None
        self._url: tuple[str | None, list[str]] | None = None
        self._messages: tuple[float | None, float | None, float | None] | None = None

    def request_names(self) -> dict[str, list[str]]:
        """The request's header values by lower-case name ({} without a request)."""
        if self._req_names is None:
            req = self.c.request
            self._req_names = _by_name(req.headers) if req is not None else {}
        return self._req_names

    def response_names(self) -> dict[str, list[str]]:
        if self._resp_names is None:
            resp = self.c.response
            self._resp_names = _by_name(resp.headers) if resp is not None else {}
        return self._resp_names

    def request(self) -> dict[str, Any] | None:
        req = self.c.request
        if req is None:
            return None
        return {
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": _ordered(req.headers),
            "headers_by_name": self.request_names(),
        }

    def response(self) -> dict[str, Any] | None:
        resp = self.c.response
        if resp is None:
            return None
        return {
            "status": resp.status,
            "reason": resp.reason,
            "version": resp.version,
            "headers": _ordered(resp.headers),
            "headers_by_name": self.response_names(),
        }

    def url(self) -> tuple[str | None, list[str]]:
        """(scheme, query_keys)."""
        if self._url is None:
            c, req = self.c, self.c.request
            scheme: str | None = None
            query_keys: list[str] = []
            if c.url:
                scheme, keys = _url_parts(c.url)
                query_keys = list(keys)
            elif req is not None and "?" in req.target:
                query_keys = list(_query_keys(req.target.split("?", 1)[1]))
            self._url = (scheme, query_keys)
        return self._url

    def message_times(self) -> tuple[float | None, float | None, float | None]:
        """(first client, first server, last) data message times."""
        if self._messages is None:
            messages = self.c.messages
            first_client = next((m.time for m in messages if m.side == "client"), None)
            first_server = next((m.time for m in messages if m.side == "server"), None)
            last_message = messages[-1].time if messages else None
            self._messages = (first_client, first_server, last_message)
        return self._messages


def _f_basics(s: _Source) -> dict[str, Any]:
    c = s.c
    duration = None
    if c.start is not None and c.end_time is not None:
        duration = c.end_time - c.start
    return {
        "id": c.id,
        "capture": c.capture,
        "url": c.url,
        "client": c.client,
        "server": c.server,
        "start": c.start,
        "end_time": c.end_time,
        "duration": duration,
        "http_version": c.http_version,
        "handshake_seen": c.handshake_seen,
        "end": c.end,
        "close_known": c.close_known,
        "messages_known": "messages" in c.can_show,
        "frames_known": c.frames is not None,
        "can_show": list(_facts(c.can_show)),
    }


def _f_url(s: _Source) -> dict[str, Any]:
    scheme, query_keys = s.url()
    return {"scheme": scheme, "query_keys": query_keys}


def _f_request(s: _Source) -> dict[str, Any]:
    return {"request": s.request()}


def _f_response(s: _Source) -> dict[str, Any]:
    return {"response": s.response()}


def _f_status(s: _Source) -> dict[str, Any]:
    resp = s.c.response
    status = resp.status if resp is not None else None
    upgraded: bool | None = None
    if status is not None:
        upgraded = status == 101 or (status == 200 and s.c.http_version == "2")
    return {
        "request_seen": s.c.request is not None,
        "response_seen": resp is not None,
        "status": status,
        "upgraded": upgraded,
    }


def _f_origin(s: _Source) -> dict[str, Any]:
    req = s.c.request
    req_by_name = s.request_names()
    scheme, _ = s.url()
    origin = req_by_name.get("origin", [None])[0] if req is not None else None
    o_host = origin_host(origin)
    host_values = req_by_name.get("host") or req_by_name.get(":authority")
    host = host_values[0].strip().lower() if host_values else None
    host_name: str | None = None
    matches: bool | None = None
    same_site: bool | None = None
    if host is not None:
        host_name = _host_name(host)
        if o_host is not None:
            matches = (
                _strip_default_port(host, scheme) == o_host
                or _strip_default_port(host, "wss" if scheme == "ws" else "ws") == o_host
            )
            same_site = site_of(_host_name(o_host)) == site_of(host_name)
    return {
        "origin": origin,
        "origin_host": o_host,
        "origin_is_null": None if origin is None else origin.strip() == "null",
        "host": host,
        "host_name": host_name,
        "origin_matches_host": matches,
        "origin_same_site": same_site,
    }


def _f_agent(s: _Source) -> dict[str, Any]:
    req = s.c.request
    req_by_name = s.request_names()
    ua_values = req_by_name.get("user-agent")
    user_agent = ua_values[0] if ua_values else None
    proxy = [h for h in PROXY_HEADERS if h in req_by_name]
    return {
        "user_agent": user_agent,
        "is_browser_ua": None if req is None else is_browser_user_agent(user_agent),
        "via_proxy": None if req is None else bool(proxy),
        "proxy_headers": proxy,
    }


def _f_accept(s: _Source) -> dict[str, Any]:
    key = _first(s.request_names(), "sec-websocket-key")
    accept = _first(s.response_names(), "sec-websocket-accept")
    expected = None if key is None else _expected_accept(key)
    return {
        "key": key,
        "accept": accept,
        "expected_accept": expected,
        "accept_ok": None if accept is None or expected is None else accept.strip() == expected,
    }


def _f_subprotocols(s: _Source) -> dict[str, Any]:
    selected = _first(s.response_names(), "sec-websocket-protocol")
    return {
        "subprotocols_offered": _tokens(s.request_names(), "sec-websocket-protocol"),
        "subprotocol_selected": None if selected is None else selected.strip(),
    }


def _f_extensions(s: _Source) -> dict[str, Any]:
    negotiated = _tokens(s.response_names(), "sec-websocket-extensions")
    return {
        "extensions_offered": _tokens(s.request_names(), "sec-websocket-extensions"),
        "extensions_negotiated": negotiated,
        "extension_names": [e.split(";", 1)[0].strip().lower() for e in negotiated],
    }


def _f_messages(s: _Source) -> dict[str, Any]:
    c = s.c
    first_client, first_server, last_message = s.message_times()
    return {
        "message_count": {
            "client": c.messages_from("client"),
            "server": c.messages_from("server"),
        },
        "first_client_message_time": first_client,
        "first_server_message_time": first_server,
        "last_message_time": last_message,
    }


def _f_close(s: _Source) -> dict[str, Any]:
    close: dict[str, Any] | None = None
    before: dict[str, int] | None = None
    after_first: float | None = None
    cl = s.c.close
    if cl is not None:
        first_client, _, _ = s.message_times()
        close = {
            "from": cl.side,
            "side_known": getattr(cl, "side_known", True),
            "code": cl.code,
            "reason": cl.reason,
            "time": cl.time,
            "echoed": cl.echoed,
            "echo_code": cl.echo_code,
            "client_messages_before": cl.client_messages_before,
            "server_messages_before": cl.server_messages_before,
            "since_last_message": cl.since_last_message,
        }
        before = {"client": cl.client_messages_before, "server": cl.server_messages_before}
        if cl.time is not None and first_client is not None and first_client <= cl.time:
            after_first = cl.time - first_client
    return {
        "close": close,
        "messages_before_close": before,
        "close_after_first_client_message": after_first,
    }


def _f_frames(s: _Source) -> dict[str, Any]:
    c = s.c
    _, _, last_message = s.message_times()
    cl = c.close
    frames = c.frames
    pings = pongs = None
    last_activity = last_message
    if frames is not None:
        pings = _per_side_counts(frames, 0x9)
        pongs = _per_side_counts(frames, 0xA)
        for f in reversed(frames):
            if f.opcode != 0x8:
                last_activity = f.time
                break
    if last_activity is None:
        last_activity = c.start
    stop = cl.time if cl is not None and cl.time is not None else c.end_time
    idle: float | None = None
    if stop is not None and last_activity is not None and c.end not in ("unknown",):
        idle = max(0.0, stop - last_activity)
    return {"idle_before_end": idle, "pings": pings, "pongs": pongs}


def _f_anomalies(s: _Source) -> dict[str, Any]:
    return {"anomalies": [{"code": a.code, "detail": a.detail} for a in s.c.anomalies]}


def _f_anomaly_codes(s: _Source) -> dict[str, Any]:
    return {"anomaly_codes": list(dict.fromkeys(a.code for a in s.c.anomalies))}


def _f_tls(s: _Source) -> dict[str, Any]:
    t = s.c.tls
    if t is None:
        return {"tls": None}
    return {
        "tls": {
            "version": t.version,
            "sni": t.sni,
            "alpn": list(t.alpn),
            "alpn_selected": t.alpn_selected,
            "decrypted": t.decrypted,
        }
    }


# Each group of fields and the function computing them together.
_GROUPS: tuple[tuple[Callable[[_Source], dict[str, Any]], tuple[str, ...]], ...] = (
    (
        _f_basics,
        (
            "id",
            "capture",
            "url",
            "client",
            "server",
            "start",
            "end_time",
            "duration",
            "http_version",
            "handshake_seen",
            "end",
            "close_known",
            "messages_known",
            "frames_known",
            "can_show",
        ),
    ),
    (_f_url, ("scheme", "query_keys")),
    (_f_request, ("request",)),
    (_f_response, ("response",)),
    (_f_status, ("request_seen", "response_seen", "status", "upgraded")),
    (
        _f_origin,
        (
            "origin",
            "origin_host",
            "origin_is_null",
            "host",
            "host_name",
            "origin_matches_host",
            "origin_same_site",
        ),
    ),
    (_f_agent, ("user_agent", "is_browser_ua", "via_proxy", "proxy_headers")),
    (_f_accept, ("key", "accept", "expected_accept", "accept_ok")),
    (_f_subprotocols, ("subprotocols_offered", "subprotocol_selected")),
    (_f_extensions, ("extensions_offered", "extensions_negotiated", "extension_names")),
    (
        _f_messages,
        (
            "message_count",
            "first_client_message_time",
            "first_server_message_time",
            "last_message_time",
        ),
    ),
    (_f_close, ("close", "messages_before_close", "close_after_first_client_message")),
    (_f_frames, ("idle_before_end", "pings", "pongs")),
    (_f_anomalies, ("anomalies",)),
    (_f_anomaly_codes, ("anomaly_codes",)),
    (_f_tls, ("tls",)),
)
_GROUP_OF: dict[str, Callable[[_Source], dict[str, Any]]] = {
    name: group for group, names in _GROUPS for name in names
}

# frozenset of field names -> the groups computing them
_NEEDED: dict[frozenset[str], tuple[Callable[[_Source], dict[str, Any]], ...]] = {}

# The light view's fields, in the order ``connection_view`` gives them.
LIGHT_FIELDS: tuple[str, ...] = tuple(f for f in CONNECTION_FIELDS if f not in HEAVY_FIELDS)


def connection_view(c: Connection, capture: Capture | None = None) -> dict[str, Any]:
    """The light view of ``c``: every field of ``CONNECTION_FIELDS`` but ``HEAVY_FIELDS``.

    ``capture`` (the capture ``c`` came from) is accepted so that callers need not change
    when a field comes to depend on the source; none does yet (rules read the capture
    through their ``capture`` variable).
    """
    source = _Source(c)
    values: dict[str, Any] = {}
    for group, _ in _GROUPS:
        values.update(group(source))
    return {name: values[name] for name in LIGHT_FIELDS}


def free_fields(read: frozenset[str], wanted: frozenset[str]) -> frozenset[str]:
    """The fields of ``wanted`` that cost next to nothing once ``read`` are computed:
    plain values (string, number, bool, null) of the field groups ``read`` needs. An
    activation holding them as well serves the messages of most rules that fire."""
    groups = {_GROUP_OF[n] for n in read if n in _GROUP_OF}
    return frozenset(
        n
        for n in wanted
        if n in _GROUP_OF
        and _GROUP_OF[n] in groups
        and CONNECTION_FIELDS[n].kind in ("string", "int", "double", "bool")
    )


class LazyConnectionView(Mapping[str, Any]):
    """``connection_view(c)`` computed field group by field group, when first read.

    The rules of the built-in pack read a dozen of the view's sixty fields for their
    conditions; building the whole view for every connection cost about as much as
    evaluating the pack. Reading every key gives exactly ``connection_view(c)``, in the
    same order (tests/engine/test_engine_fast_path.py checks it on every test capture).
    """

    __slots__ = ("_source", "_values")

    def __init__(self, c: Connection, capture: Capture | None = None) -> None:
        self._source = _Source(c)
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        values = self._values
        if name not in values:
            group = _GROUP_OF.get(name)
            if group is None:
                raise KeyError(name)
            self._source.done.add(group)
            values.update(group(self._source))
        return values[name]

    def __contains__(self, name: object) -> bool:
        return name in _GROUP_OF

    def header_names(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The request's and the response's header values by lower-case name."""
        return self._source.request_names(), self._source.response_names()

    def select(self, names: frozenset[str]) -> dict[str, Any]:
        """``{name: self[name] for name in names if name in self}``, each group computed
        once (the groups a set of names needs are worked out once per set)."""
        groups = _NEEDED.get(names)
        if groups is None:
            groups = tuple(dict.fromkeys(_GROUP_OF[n] for n in names if n in _GROUP_OF))
            if len(_NEEDED) > 1024:
                _NEEDED.clear()
            _NEEDED[names] = groups
        values = self._values
        source = self._source
        for group in groups:
            if group not in source.done:
                source.done.add(group)
                values.update(group(source))
        return {n: values[n] for n in names if n in values}

    def __iter__(self) -> Iterator[str]:
        return iter(LIGHT_FIELDS)

    def __len__(self) -> int:
        return len(LIGHT_FIELDS)


def heavy_field(c: Connection, name: str) -> Any:
    """The value of one of ``HEAVY_FIELDS`` for ``c``."""
    if name == "messages":
        return [
            {
                "index": m.index,
                "from": m.side,
                "time": m.time,
                "opcode": m.opcode,
                "size": m.size,
                "compressed": m.compressed,
                "frames": m.frames,
            }
            for m in c.messages
        ]
    if name == "frames":
        if c.frames is None:
            return None
        return [
            {
                "index": f.index,
                "from": f.side,
                "time": f.time,
                "fin": f.fin,
                "rsv": f.rsv,
                "opcode": f.opcode,
                "masked": f.masked,
                "length": f.length,
                "close_code": f.close_code,
                "close_reason": f.close_reason,
            }
            for f in c.frames
        ]
    raise KeyError(name)


def capture_view(cap: Capture) -> dict[str, Any]:
    return {
        "path": cap.path,
        "format": cap.format,
        "creator": cap.creator,
        "creator_version": cap.creator_version,
        "can_show": sorted(str(f) for f in cap.can_show),
        "packets": cap.packets,
        "anomalies": [{"code": a.code, "detail": a.detail} for a in cap.anomalies],
        "connection_count": len(cap.connections),
    }


CONNECTION = _struct(CONNECTION_FIELDS, "one WebSocket connection (or attempt)")

# The variables a rule of each scope can read (see analyzer.engine.scopes).
VIEW_SCHEMA: dict[str, Field] = {"connection": CONNECTION, "capture": CAPTURE}
CAPTURE_SCOPE_SCHEMA = _struct(
    {
        **(CAPTURE.fields or {}),
        "connections": _list(CONNECTION, "every connection of the capture (light view)"),
    }
)
