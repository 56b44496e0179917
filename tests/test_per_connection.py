"""The per-connection shortcuts equal the general code they stand in for.

The HTTP/1.1 upgrade phase runs once per connection; its common cases take shortcuts
(a cache of header lines seen before, a lower-case name index instead of scans of
``Headers``, a cache of what a Sec-WebSocket-Extensions list negotiates). Each property
below holds a shortcut equal to the general code on generated input, including the odd
input the shortcut hands back to the general code.
"""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.limits import Limits
from analyzer.protocol import connection
from analyzer.protocol import flow as flow_mod
from analyzer.protocol.deflate import DEFLATE_FRAME_NAMES, PERMESSAGE, negotiate
from analyzer.session.model import WEBSOCKET_GUID, Header, Headers
from analyzer.transport import http1, http11
from analyzer.transport.http11 import (
    BodyFraming,
    NotHttp,
    RequestHead,
    ResponseHead,
    _fields,
    _split_lines,
    check_accept,
    field_index,
    field_tokens,
    get_field,
    is_websocket_upgrade,
    keeps_alive,
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
)

# -- heads: the clean-line shortcut and its cache against the line-by-line split ---------

_NAMES = [
    "Host",
    "host",
    "Upgrade",
    "UPGRADE",
    "Connection",
    "Sec-WebSocket-Key",
    "sec-websocket-key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Accept",
    "Content-Length",
    "Transfer-Encoding",
    "X-Dup",
    "bad name",  # not a token: the general code reports it
    "",
]
_VALUES = st.text(alphabet=" \t,;=abcW:é\r\n1", max_size=12)
# A line: a field, a field with stray CR/LF inside, an obs-fold continuation, junk.
_LINE = st.one_of(
    st.tuples(st.sampled_from(_NAMES), st.sampled_from([":", ": ", ":\t", " :"]), _VALUES).map(
        "".join
    ),
    st.tuples(st.sampled_from([" ", "\t"]), _VALUES).map("".join),
    st.text(alphabet="ab: \r\n\t", max_size=8),
)
_START = st.sampled_from(
    [
        "GET /chat HTTP/1.1",
        "GET /a?b=1  HTTP/1.0 ",
        "HTTP/1.1 101 Switching Protocols",
        "HTTP/1.1 403",
        "HTTP/1.0 200 OK",
        "GET",
        "",
        "BREW /pot HTTP/1.1\r",
    ]
)
_ENDS = st.sampled_from(["\r\n", "\n", "\r\n", "\r\n"])


def _reference(data: bytes, limits: Limits) -> object:
    """What ``_fields`` must give, from the general line-by-line split alone."""
    end = http11.find_end(data)
    if end < 0 or end > limits.max_header_bytes:
        return type(_fields(data, limits))  # None / NotHttp: not the shortcut's business
    raw = data[:end].decode("latin-1")
    line, pairs, size, problems = _split_lines(raw, end, limits)
    headers = Headers.of(pairs)
    index = {
        h.name.lower(): list(headers.get_all(h.name)) for h in headers
    }  # Headers.get_all: the lookup the index stands in for
    return line, headers.items, index, size, problems


@settings(max_examples=500, deadline=None)
@given(
    _START,
    st.lists(st.tuples(_LINE, _ENDS), max_size=10),
    _ENDS,
    st.integers(min_value=0, max_value=12),
    st.binary(max_size=4),
)
def test_head_fields_equal_the_line_by_line_split(
    start: str,
    lines: list[tuple[str, str]],
    last: str,
    max_fields: int,
    rest: bytes,
) -> None:
    raw = start + "\r\n" + "".join(a + b for a, b in lines) + last
    data = raw.encode("latin-1") + rest
    limits = Limits(max_header_count=max_fields)
    want = _reference(data, limits)
    for _ in range(2):  # the second time, the lines come from the cache
        got = _fields(data, limits)
        if isinstance(want, type):
            assert isinstance(got, want)
        else:
            assert got == want
            # a bytearray (the flow's buffer) gives the same
            assert _fields(bytearray(data), limits) == want
    http11._line_cache.clear()
    assert _fields(data, limits) == (want if not isinstance(want, type) else got)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NAMES[:-2]), _VALUES), max_size=8), _START)
def test_parse_heads_equal_the_general_parse(fields: list[tuple[str, str]], start: str) -> None:
    clean = [(n, v.replace("\r", "").replace("\n", "")) for n, v in fields]
    raw = start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in clean) + "\r\n"
    data = raw.encode("latin-1")
    limits = Limits()
    line, pairs, size, problems = _split_lines(raw, len(data), limits)
    headers = Headers.of(pairs)
    req = parse_request_head(data, limits)
    m = http11._REQUEST_LINE.fullmatch(line)
    if m is None:
        assert isinstance(req, NotHttp)
    else:
        assert req == RequestHead(m[1], m[2], m[3], headers, size, tuple(problems), index={})
    resp = parse_response_head(data, limits)
    m = http11._STATUS_LINE.fullmatch(line)
    if m is None:
        assert isinstance(resp, NotHttp)
    else:
        want = ResponseHead(m[1], int(m[2]), m[3] or "", headers, size, tuple(problems), index={})
        assert resp == want
        assert parse_response_head(data, limits) == want  # the start line from its cache


def test_long_lines_are_not_cached_and_the_cache_is_bounded() -> None:
    http11._line_cache.clear()
    long_value = "v" * (http11._CACHED_LINE + 1)
    for i in range(http11._CACHE_SIZE + 10):
        head = f"GET / HTTP/1.1\r\nX-N: {i}\r\nX-Long: {long_value}\r\n\r\n".encode()
        parsed = parse_request_head(head, Limits())
        assert isinstance(parsed, RequestHead)
        assert parsed.headers.get("x-n") == str(i)
        assert parsed.headers.get("X-LONG") == long_value
    assert len(http11._line_cache) <= http11._CACHE_SIZE
    assert not any(len(line) > http11._CACHED_LINE for line in http11._line_cache)


# -- lookups on the index against the Headers methods they replace ------------------------

_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Upgrade",
                "upgrade",
                "Connection",
                "CONNECTION",
                "Sec-WebSocket-Key",
                "Sec-WebSocket-Version",
                "Sec-WebSocket-Accept",
                "Content-Length",
                "content-length",
                "Transfer-Encoding",
                "Host",
                "X-Other",
            ]
        ),
        st.one_of(
            st.sampled_from(
                [
                    "websocket",
                    "WebSocket",
                    "h2c, websocket",
                    "close",
                    "keep-alive",
                    "Upgrade, close",
                    "chunked",
                    "gzip, chunked",
                    "chunked, gzip",
                    "12",
                    " 12 ",
                    "12, 12",
                    "12, 13",
                    "\u00b2",
                    "-1",
                    "",
                    " , ",
                    "13",
                    "x.test",
                ]
            ),
            _VALUES,
        ),
    ),
    max_size=8,
).map(lambda pairs: Headers.of(pairs))


def _old_upgrade(h: Headers) -> bool:
    return any(t.lower() == "websocket" for t in h.tokens("Upgrade"))


def _old_attempt(h: Headers) -> bool:
    return (
        _old_upgrade(h)
        or h.get("Sec-WebSocket-Key") is not None
        or h.get("Sec-WebSocket-Version") is not None
    )


def _old_keeps_alive(version: str, h: Headers) -> bool:
    tokens = {t.lower() for t in h.tokens("Connection")}
    if "close" in tokens:
        return False
    return version != "HTTP/1.0" or "keep-alive" in tokens


@settings(max_examples=500, deadline=None)
@given(_HEADERS, _HEADERS, st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
def test_index_lookups_equal_the_headers_methods(h: Headers, other: Headers, version: str) -> None:
    index = field_index(h)
    assert set(index) == {x.name.lower() for x in h}
    for name in ["Upgrade", "Connection", "Content-Length", "Host", "Sec-WebSocket-Key", "Nope"]:
        assert get_field(index, name.lower()) == h.get(name)
        assert field_tokens(index, name.lower()) == h.tokens(name)
    assert is_websocket_upgrade(index) == is_websocket_upgrade(h) == _old_upgrade(h)
    assert http1._is_attempt(index) == http1.is_websocket_attempt(h) == _old_attempt(h)
    assert keeps_alive(version, index) == keeps_alive(version, h) == _old_keeps_alive(version, h)
    assert check_accept(index, field_index(other)) == check_accept(h, other)


def _with_accept(key: str) -> str:
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode("latin-1")).digest()
    return base64.b64encode(digest).decode()


def test_check_accept_on_an_index() -> None:
    key = " dGhlIHNhbXBsZSBub25jZQ== "
    req = Headers.of([("sec-websocket-key", key)])
    good = Headers.of([("Sec-WebSocket-Accept", _with_accept(key))])
    bad = Headers.of([("Sec-WebSocket-Accept", "x")])
    assert check_accept(field_index(req), field_index(good)) is None
    problem = check_accept(field_index(req), field_index(bad))
    assert problem is not None and problem == check_accept(req, bad)
    assert check_accept(field_index(req), {}) == check_accept(req, Headers())


# -- bodies: the framing of a head, as the general Headers-based rules give it -----------


def _old_content_length(h: Headers, default: BodyFraming) -> BodyFraming:
    values = h.tokens("Content-Length")
    if not values:
        return default
    if len(set(values)) != 1 or not (values[0].isascii() and values[0].isdigit()):
        return BodyFraming("close")
    return BodyFraming("length", int(values[0]))


def _old_request_body(h: Headers) -> BodyFraming:
    te = h.tokens("Transfer-Encoding")
    if te:
        return BodyFraming("chunked") if te[-1].lower() == "chunked" else BodyFraming("close")
    return _old_content_length(h, BodyFraming("none"))


def _old_response_body(status: int, h: Headers, method: str | None) -> BodyFraming:
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return BodyFraming("none")
    if method == "CONNECT" and 200 <= status < 300:
        return BodyFraming("close")
    te = h.tokens("Transfer-Encoding")
    if te:
        return BodyFraming("chunked") if te[-1].lower() == "chunked" else BodyFraming("close")
    return _old_content_length(h, BodyFraming("close"))


@settings(max_examples=500, deadline=None)
@given(
    _HEADERS,
    st.sampled_from([101, 200, 204, 304, 403, 100, 302]),
    st.sampled_from(["GET", "HEAD", "CONNECT", "POST", None]),
)
def test_body_framing_from_the_index(h: Headers, status: int, method: str | None) -> None:
    index = field_index(h)
    req = RequestHead("GET", "/", "HTTP/1.1", h, 0, index=index)
    assert request_body(req) == _old_request_body(h)
    resp = ResponseHead("HTTP/1.1", status, "", h, 0, index=index)
    assert response_body(resp, method) == _old_response_body(status, h, method)


# -- the negotiated extensions, cached by the list's items --------------------------------

_EXTENSION = st.one_of(
    st.sampled_from(
        [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=99",
            'permessage-deflate; server_max_window_bits="10"; foo',
            "x-webkit-deflate-frame; max_window_bits=x",
            "deflate-frame; no_context_takeover",
            "PerMessage-Deflate",
            "graphql-ws",
            "x-other; a=1",
        ]
    ),
    st.text(alphabet="abp-=;_ 1", max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_EXTENSION, max_size=3))
def test_extensions_cache_equals_negotiate(items: list[str]) -> None:
    headers = Headers(tuple(Header("Sec-WebSocket-Extensions", e) for e in items))
    tokens = headers.tokens("Sec-WebSocket-Extensions")
    deflate, problems = negotiate(headers)
    names = {e.split(";", 1)[0].strip().lower() for e in tokens}
    other = bool(names - {PERMESSAGE, *DEFLATE_FRAME_NAMES})
    want = (deflate, tuple(problems), other)
    assert connection._extensions(tokens) == want
    assert connection._extensions(tokens) == want  # from the cache
    connection._extensions_seen.clear()
    assert connection._extensions(tokens) == want


def test_a_content_length_of_non_ascii_digits_is_unusable_framing_not_a_crash() -> None:
    # "\u00b2" (superscript two, one byte in ISO-8859-1) is a digit to str.isdigit but
    # not to int(): the framing is unusable, and the flow stops being followed.
    p = flow_mod.FlowParser("x.pcap", 0, Limits())
    p.data(True, b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\nzz", 1, 1.0)
    assert not p.interested and p.result() is None
    h = Headers.of([("Content-Length", "\u00b2")])
    req = RequestHead("POST", "/", "HTTP/1.1", h, 0, index=field_index(h))
    assert request_body(req) == BodyFraming("close")


# -- the flow's first bytes: the shortcut into HTTP mode against classify-and-replay -------

_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
_REQUESTS = [
    f"GET /ws HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    "GET /x HTTP/1.0\r\nHost: h\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Version: 13\r\n\r\n",
]
_RESPONSES = [
    f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {_with_accept(_KEY)}\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: wrong\r\n\r\n",
    "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
]
_FRAMES = [
    b"\x81\x05hello",
    b"\x82\x85\x11\x22\x33\x44abcde",
    b"\x88\x02\x03\xe8",
    b"\x89\x00",
    b"\x16\x03\x01\x00",
    b"",
]


def _feed(chunks: list[tuple[bool, bytes, int]], split_first: int) -> flow_mod.FlowResult | None:
    p = flow_mod.FlowParser("x.pcap", 3, Limits())
    for i, (from_orig, chunk, packet) in enumerate(chunks):
        if i == 0 and split_first:
            # The same bytes in two calls, same packet: the first too short to tell what
            # the flow is, so the bytes are held, classified and replayed.
            p.data(from_orig, chunk[:split_first], packet, packet / 10)
            p.data(from_orig, chunk[split_first:], packet, packet / 10)
        else:
            p.data(from_orig, chunk, packet, packet / 10)
    return p.result()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just(True), st.sampled_from(_REQUESTS).map(str.encode)),
            st.tuples(st.just(False), st.sampled_from(_RESPONSES).map(str.encode)),
            st.tuples(st.booleans(), st.sampled_from(_FRAMES)),
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
    st.integers(min_value=1, max_value=3),
)
def test_first_bytes_shortcut_equals_classify_and_replay(
    pieces: list[tuple[bool, bytes]], swap: bool, split: int
) -> None:
    # swap: the side that sent the first bytes is the responder (capture started late,
    # or the orig/resp roles are the other way round).
    chunks = [(orig != swap, data, n) for n, (orig, data) in enumerate(pieces, 1)]
    assert _feed(chunks, 0) == _feed(chunks, split)


def test_a_head_ended_by_a_bare_lf_blank_line_before_a_later_crlf_crlf() -> None:
    # The first blank line ends the head even when a CRLF CRLF comes later: the clean
    # shortcut (which looks for CRLF CRLF) must not take the later one.
    data = b"GET /a HTTP/1.1\r\nHost: h\n\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    for _ in range(2):
        head = parse_request_head(data, Limits())
        assert isinstance(head, RequestHead)
        assert head.target == "/a" and head.size == data.index(b"\n\n") + 2
        assert [c for c, _ in head.problems] == ["http.bare_lf"]
    assert _fields(data, Limits()) == _reference(data, Limits())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=255), max_size=30))
def test_expected_accept_is_base64_of_sha1_of_key_and_guid(key: str) -> None:
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode("latin-1")).digest()
    assert http11.expected_accept(key) == base64.b64encode(digest).decode()
