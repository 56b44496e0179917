"""HTTP/1.1 heads: the upgrade request and response, and enough framing to skip bodies.

Sans-I/O: every function takes the bytes seen so far and returns a record, ``None`` when
more bytes are needed, or ``NotHttp`` when the bytes are not an HTTP/1.x head. Nothing here
looks at port numbers: a head is recognised by its start line.

Heads are decoded as ISO-8859-1 (every byte maps to one character, so nothing is lost and
nothing raises). Field names and values are kept as sent: order, case, duplicates.
Tolerated, with an anomaly: bare LF line ends, obs-fold continuation lines (joined to the
previous value with one space), lines that are not ``name: value`` (skipped). A head
larger than ``limits.max_header_bytes`` is not parsed (``limit.header_bytes``); fields past
``limits.max_header_count`` are dropped (``limit.header_count``).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import TypeVar

from analyzer.limits import Limits
from analyzer.transport import anomalies as A
from analyzer.vocabulary import WEBSOCKET_GUID, Header, Headers

Problem = tuple[str, str]  # (anomaly code, detail)

# RFC 9110 9: methods are tokens; these are the ones worth recognising cheaply. An unknown
# token method followed by a target and "HTTP/1.x" is still accepted by parse_request_head.
_METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The start of a clean field line: a token and its colon (the colon ends the match).
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:")
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) +(\S+) +(HTTP/\d\.\d) *")
_STATUS_LINE = re.compile(r"(HTTP/\d\.\d) +(\d{3})(?: (.*))?")

# Clean field lines seen before, as (Header, lower-case name, value): the lines of the upgrade
# heads repeat from connection to connection of a capture (Upgrade, Connection, Host,
# User-Agent, Sec-WebSocket-Version, the 101's Sec-WebSocket-Extensions...), and a hit
# replaces the name check, the partition, the strip and the Header. Header is frozen, so
# sharing one between heads changes nothing. Bounded: lines up to _CACHED_LINE characters,
# at most _CACHE_SIZE of them (then the cache starts over), so well under a megabyte.
_CACHE_SIZE = 1024
_V = TypeVar("_V")
_CACHED_LINE = 200
_line_cache: dict[str, tuple[Header, str, str]] = {}  # line -> (Header, lower name, value)
# Start lines seen before: "HTTP/1.1 101 Switching Protocols", "GET /chat HTTP/1.1"...
_request_lines: dict[str, tuple[str, str, str]] = {}
_status_lines: dict[str, tuple[str, int, str]] = {}


def _remember(cache: dict[str, _V], line: str, value: _V) -> None:
    """Keep ``value`` for ``line`` within the bounds above."""
    if len(line) <= _CACHED_LINE:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[line] = value


# Field values by lower-case name, in the order sent (what Headers.get_all gives).
FieldIndex = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str  # "HTTP/1.1"
    headers: Headers
    size: int  # bytes of the head, blank line included
    problems: tuple[Problem, ...] = ()
    # ``headers`` by lower-case name (``field_index``): the lookups below read it.
    index: FieldIndex = field(kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    version: str
    status: int
    reason: str
    headers: Headers
    size: int
    problems: tuple[Problem, ...] = ()
    index: FieldIndex = field(kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NotHttp:
    """The bytes are not an HTTP/1.x head (or one we will not parse: too large)."""

    why: str
    problem: Problem | None = None


def looks_like_request(prefix: bytes) -> bool | None:
    """Whether ``prefix`` starts like a request line; None while too short to tell."""
    if prefix.startswith(_METHODS):
        return True
    for m in _METHODS:
        if m.startswith(prefix):
            return None
    return False


def looks_like_response(prefix: bytes) -> bool | None:
    """Whether ``prefix`` starts like a status line ("HTTP/1."); None while too short."""
    if len(prefix) >= 7:
        return prefix.startswith(b"HTTP/1.")
    return None if b"HTTP/1."[: len(prefix)] == prefix else False


def find_end(data: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending a head, or -1."""
    # The first match of \r?\n\r?\n ends with the first "\n\n" or "\n\r\n", whichever
    # ends first; two bytes.find are ten times faster than that regular expression.
    a = data.find(b"\n\n", start)
    b = data.find(b"\n\r\n", start)
    if a < 0:
        return b + 3 if b >= 0 else -1
    return a + 2 if b < 0 or a + 2 <= b + 3 else b + 3


def field_index(headers: Headers | tuple[Header, ...]) -> FieldIndex:
    """Field values by lower-case name, each list in the order sent."""
    index: FieldIndex = {}
    for h in headers:
        lname = h.name.lower()
        values = index.get(lname)
        if values is None:
            index[lname] = [h.value]
        else:
            values.append(h.value)
    return index


def _fields(
    data: bytes | bytearray, limits: Limits
) -> tuple[str, tuple[Header, ...], FieldIndex, int, list[Problem]] | NotHttp | None:
    """The head at the start of ``data``: (start line, fields, their index, size,
    problems), None while incomplete, NotHttp when too large."""
    # The common case: every line ends with CRLF and every field line is "token:value".
    # The head then ends at the first CRLF CRLF (what find_end finds when no LF stands
    # alone before it), its lines are one split apart, and there is no CR or LF alone when
    # there are as many CR and as many LF as CRLF (the split's count). Anything else goes
    # line by line.
    e = data.find(b"\r\n\r\n")
    if 0 <= e and e + 4 <= limits.max_header_bytes:
        raw = data[: e + 4].decode("latin-1")
        lines = raw[:-4].split("\r\n")
        crlf = len(lines) + 1
        if (
            raw.count("\n") == crlf
            and raw.count("\r") == crlf
            and len(lines) <= limits.max_header_count + 1
        ):
            clean = _clean_fields(lines)
            if clean is not None:
                return lines[0], clean[0], clean[1], e + 4, []
    end = find_end(data)
    if end < 0:
        if len(data) > limits.max_header_bytes:
            return NotHttp(
                "head too large",
                (
                    A.LIMIT_HEADER_BYTES,
                    f"expected a head of at most {limits.max_header_bytes} bytes; found no "
                    f"end of head in the first {len(data)}",
                ),
            )
        return None
    if end > limits.max_header_bytes:
        return NotHttp(
            "head too large",
            (
                A.LIMIT_HEADER_BYTES,
                f"expected a head of at most {limits.max_header_bytes} bytes; found {end}",
            ),
        )
    raw = data[:end].decode("latin-1")
    line, pairs, end, problems = _split_lines(raw, end, limits)
    headers = tuple([Header(n, v) for n, v in pairs])
    return line, headers, field_index(headers), end, problems


def _clean_fields(lines: list[str]) -> tuple[tuple[Header, ...], FieldIndex] | None:
    """The fields of ``lines[1:]`` (no CR or LF in any), or None when one is not
    "token:value"."""
    cache = _line_cache
    headers: list[Header] = []
    index: FieldIndex = {}
    first = True
    for line in lines:
        if first:  # the start line
            first = False
            continue
        hit = cache.get(line)
        if hit is None:
            m = _FIELD_NAME.match(line)
            if m is None:
                return None
            colon = m.end()
            name = line[: colon - 1]
            value = line[colon:].strip(" \t")
            hit = (Header(name, value), name.lower(), value)
            _remember(cache, line, hit)
        h, lname, value = hit
        headers.append(h)
        values = index.get(lname)
        if values is None:
            index[lname] = [value]
        else:
            values.append(value)
    return tuple(headers), index


def _split(
    data: bytes | bytearray, limits: Limits
) -> tuple[str, list[tuple[str, str]], int, list[Problem]] | NotHttp | None:
    """``_fields`` as (start line, [(name, value)], size, problems)."""
    f = _fields(data, limits)
    if f is None or isinstance(f, NotHttp):
        return f
    return f[0], [(h.name, h.value) for h in f[1]], f[3], f[4]


def _split_lines(
    raw: str, end: int, limits: Limits
) -> tuple[str, list[tuple[str, str]], int, list[Problem]]:
    """``_split`` of any head, line by line: bare LF, obs-fold, malformed fields, limits."""
    problems: list[Problem] = []
    crlf = raw.count("\r\n")
    if crlf == raw.count("\n"):
        lines = raw.split("\r\n")  # every line ends with CRLF: the common case
    else:
        lines = raw.split("\n")
        bare_lf = 0
        for i in range(len(lines)):
            if lines[i].endswith("\r"):
                lines[i] = lines[i][:-1]
            elif i < len(lines) - 1:
                bare_lf += 1
        problems.append((A.HTTP_BARE_LF, f"expected CRLF line ends; found {bare_lf} bare LF"))
    while lines and lines[-1] == "":
        lines.pop()
    start_line = lines[0] if lines else ""
    fields: list[tuple[str, str]] = []
    dropped = 0
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # RFC 9112 5.2: obs-fold; a recipient may replace it with SP.
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}".strip())
                problems.append((A.HTTP_OBS_FOLD, f"field {name!r} continued on a new line"))
            else:
                problems.append((A.HTTP_MALFORMED_HEADER, f"continuation line first: {line!r}"))
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            problems.append(
                (A.HTTP_MALFORMED_HEADER, f"expected 'name: value'; found {line[:80]!r}")
            )
            continue
        if len(fields) >= limits.max_header_count:
            dropped += 1
            continue
        fields.append((name, value.strip(" \t")))
    if dropped:
        problems.append(
            (
                A.LIMIT_HEADER_COUNT,
                f"expected at most {limits.max_header_count} fields; found "
                f"{limits.max_header_count + dropped}, the last {dropped} dropped",
            )
        )
    return start_line, fields, end, problems


def parse_request_head(data: bytes | bytearray, limits: Limits) -> RequestHead | NotHttp | None:
    """The request head at the start of ``data``."""
    f = _fields(data, limits)
    if f is None or isinstance(f, NotHttp):
        return f
    line, headers, index, size, problems = f
    parts = _request_lines.get(line)
    if parts is None:
        m = _REQUEST_LINE.fullmatch(line)
        if m is None:
            return NotHttp(f"not a request line: {line[:80]!r}")
        parts = (m[1], m[2], m[3])
        _remember(_request_lines, line, parts)
    method, target, version = parts
    return RequestHead(
        method, target, version, Headers(headers), size, tuple(problems), index=index
    )


def parse_response_head(data: bytes | bytearray, limits: Limits) -> ResponseHead | NotHttp | None:
    """The response head at the start of ``data``."""
    f = _fields(data, limits)
    if f is None or isinstance(f, NotHttp):
        return f
    line, headers, index, size, problems = f
    parts = _status_lines.get(line)
    if parts is None:
        m = _STATUS_LINE.fullmatch(line)
        if m is None:
            return NotHttp(f"not a status line: {line[:80]!r}")
        parts = (m[1], int(m[2]), m[3] or "")
        _remember(_status_lines, line, parts)
    version, status, reason = parts
    return ResponseHead(
        version, status, reason, Headers(headers), size, tuple(problems), index=index
    )


def get_field(index: FieldIndex, lname: str) -> str | None:
    """``Headers.get`` on an index: the first value of the lower-case name ``lname``."""
    values = index.get(lname)
    return values[0] if values else None


def field_tokens(index: FieldIndex, lname: str) -> tuple[str, ...]:
    """``Headers.tokens`` on an index (``lname`` in lower case)."""
    values = index.get(lname)
    if not values:
        return ()
    out: list[str] = []
    for value in values:
        for t in value.split(","):
            t = t.strip()
            if t:
                out.append(t)
    return tuple(out)


def _index(headers: Headers | FieldIndex) -> FieldIndex:
    return field_index(headers) if isinstance(headers, Headers) else headers


def is_websocket_upgrade(headers: Headers | FieldIndex) -> bool:
    """The head asks for (or agrees to) the WebSocket protocol: ``Upgrade: websocket``.

    RFC 6455 4.1: the request "MUST contain an |Upgrade| header field whose value MUST
    include the "websocket" keyword" (compared case-insensitively).
    """
    for t in field_tokens(_index(headers), "upgrade"):
        if t.lower() == "websocket":
            return True
    return False


def expected_accept(key: str) -> str:
    """RFC 6455 4.2.2: base64(SHA-1(key + GUID)), key with surrounding whitespace removed."""
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode("latin-1")).digest()
    return binascii.b2a_base64(digest, newline=False).decode()  # base64.b64encode's core


def check_accept(request: Headers | FieldIndex, response: Headers | FieldIndex) -> Problem | None:
    """``handshake.wrong_accept`` when the 101's Sec-WebSocket-Accept does not match.

    RFC 6455 4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or the
    |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
    concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the
    string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing
    whitespace, the client MUST _Fail the WebSocket Connection_."
    """
    key = get_field(_index(request), "sec-websocket-key")
    if key is None:
        return None
    want = expected_accept(key)
    found = get_field(_index(response), "sec-websocket-accept")
    if found is None:
        return (A.HANDSHAKE_WRONG_ACCEPT, f"expected Sec-WebSocket-Accept {want}; found none")
    if found.strip() != want:
        return (A.HANDSHAKE_WRONG_ACCEPT, f"expected Sec-WebSocket-Accept {want}; found {found}")
    return None


_ABSOLUTE = (("http://", "ws"), ("https://", "wss"), ("ws://", "ws"), ("wss://", "wss"))


def ws_url(request: RequestHead | None, scheme: str = "ws") -> str | None:
    """``ws://host[:port]/target`` from Host and the request-target (absolute-form kept)."""
    if request is None:
        return None
    target = request.target
    if not target.startswith("/"):  # absolute-form (or odd): the scheme comes from it
        lower = target.lower()
        for prefix, ws in _ABSOLUTE:
            if lower.startswith(prefix):
                return ws + "://" + target[len(prefix) :]
    host = get_field(request.index, "host")
    if host is None:
        return None
    if not target.startswith("/"):
        target = "/" + target
    return f"{scheme}://{host.strip()}{target}"


# -- bodies: just enough framing to follow a keep-alive connection to its upgrade --------


@dataclass(frozen=True, slots=True)
class BodyFraming:
    kind: str  # "none" | "length" | "chunked" | "close"
    length: int = 0


_NONE = BodyFraming("none")
_CHUNKED = BodyFraming("chunked")
_CLOSE = BodyFraming("close")


def request_body(head: RequestHead) -> BodyFraming:
    """RFC 9112 6.3: a request has a body only with Transfer-Encoding or Content-Length."""
    te = field_tokens(head.index, "transfer-encoding")
    if te:
        return _CHUNKED if te[-1].lower() == "chunked" else _CLOSE
    return _content_length(head.index, _NONE)


def response_body(head: ResponseHead, method: str | None) -> BodyFraming:
    """RFC 9112 6.3, in order: HEAD, 1xx, 204, 304 and 2xx to CONNECT have no body; then
    Transfer-Encoding, Content-Length, and otherwise the body runs to the connection's end."""
    s = head.status
    if method == "HEAD" or 100 <= s < 200 or s in (204, 304):
        return _NONE
    if method == "CONNECT" and 200 <= s < 300:
        return _CLOSE
    te = field_tokens(head.index, "transfer-encoding")
    if te:
        return _CHUNKED if te[-1].lower() == "chunked" else _CLOSE
    return _content_length(head.index, _CLOSE)


def _content_length(index: FieldIndex, default: BodyFraming) -> BodyFraming:
    values = field_tokens(index, "content-length")
    if not values:
        return default
    # isascii: str.isdigit also accepts digits int() refuses ("\u00b2", one byte in ISO-8859-1).
    if len(set(values)) != 1 or not (values[0].isascii() and values[0].isdigit()):
        return _CLOSE  # unusable framing: stop following the connection
    return BodyFraming("length", int(values[0]))


def keeps_alive(version: str, headers: Headers | FieldIndex) -> bool:
    """RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with keep-alive."""
    tokens = {t.lower() for t in field_tokens(_index(headers), "connection")}
    if "close" in tokens:
        return False
    return version != "HTTP/1.0" or "keep-alive" in tokens


class ChunkedSkipper:
    """Walks over a chunked body without keeping it. ``feed`` returns the number of bytes
    of ``data`` that belong to the body once it ends, or None while it goes on (or -1 when
    the chunk framing is broken)."""

    __slots__ = ("_left", "_line", "_state")

    def __init__(self) -> None:
        self._left = 0
        self._line = b""
        self._state = "size"  # size | data | data_crlf | trailer

    def feed(self, data: bytes) -> int | None:
        pos = 0
        n = len(data)
        while pos < n:
            if self._state == "data":
                take = min(self._left, n - pos)
                self._left -= take
                pos += take
                if self._left == 0:
                    self._state = "data_crlf"
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._line += data[pos:]
                if len(self._line) > 8192:
                    return -1
                return None
            line = (self._line + data[pos:nl]).rstrip(b"\r")
            self._line = b""
            pos = nl + 1
            if self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    return -1
                if size == 0:
                    self._state = "trailer"
                else:
                    self._left = size
                    self._state = "data"
            elif self._state == "data_crlf":
                if line:
                    return -1
                self._state = "size"
            elif not line:  # the blank line ending the trailer section
                return pos
        return None
