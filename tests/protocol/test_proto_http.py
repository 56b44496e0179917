"""HTTP/1.1 heads and the flow's HTTP mode: keep-alive, rejections, oddities, limits."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import feed
from test_proto_anomalies import ACCEPT, KEY, M, request, response

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.flow import FlowParser
from analyzer.protocol.frames import serialize as ser
from analyzer.transport.http11 import (
    ChunkedSkipper,
    NotHttp,
    RequestHead,
    ResponseHead,
    _split,
    _split_lines,
    find_end,
    parse_request_head,
    parse_response_head,
    ws_url,
)

L = Limits()


def test_request_head_kept_as_sent() -> None:
    raw = (
        b"GET /a?b=1 HTTP/1.1\r\nhost: x.test\r\nX-Dup: 1\r\nUPGRADE: WebSocket\r\n"
        b"X-Dup: 2\r\nSec-WebSocket-Extensions: a,\r\n b\r\n\r\nrest"
    )
    assert parse_request_head(raw[:20], L) is None
    head = parse_request_head(raw, L)
    assert isinstance(head, RequestHead)
    assert head.size == len(raw) - 4
    assert [(h.name, h.value) for h in head.headers] == [
        ("host", "x.test"),
        ("X-Dup", "1"),
        ("UPGRADE", "WebSocket"),
        ("X-Dup", "2"),
        ("Sec-WebSocket-Extensions", "a, b"),
    ]
    assert [c for c, _ in head.problems] == [A.HTTP_OBS_FOLD]
    assert ws_url(head) == "ws://x.test/a?b=1"


def test_bare_lf_and_malformed_lines() -> None:
    head = parse_response_head(b"HTTP/1.1 403 Forbidden\nA: 1\nnot a header\nB:2\n\n", L)
    assert isinstance(head, ResponseHead)
    assert (head.status, head.reason) == (403, "Forbidden")
    assert [(h.name, h.value) for h in head.headers] == [("A", "1"), ("B", "2")]
    assert [c for c, _ in head.problems] == [A.HTTP_BARE_LF, A.HTTP_MALFORMED_HEADER]
    assert isinstance(parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n", L), NotHttp)


def test_header_limits() -> None:
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(10)) + b"\r\n"
    head = parse_request_head(many, Limits(max_header_count=4))
    assert isinstance(head, RequestHead) and len(head.headers) == 4
    assert [c for c, _ in head.problems] == [A.LIMIT_HEADER_COUNT]
    big = parse_request_head(b"GET / HTTP/1.1\r\nX: " + b"a" * 200, Limits(max_header_bytes=100))
    assert isinstance(big, NotHttp) and big.problem is not None
    assert big.problem[0] == A.LIMIT_HEADER_BYTES


def test_absolute_form_target() -> None:
    head = parse_request_head(b"GET https://h.test:8443/x HTTP/1.1\r\nHost: h\r\n\r\n", L)
    assert isinstance(head, RequestHead) and ws_url(head) == "wss://h.test:8443/x"


def test_chunked_skipper() -> None:
    body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    for step in (1, 3, len(body)):
        sk = ChunkedSkipper()
        used = None
        for i in range(0, len(body), step):
            used = sk.feed(body[i : i + step])
            if used is not None:
                assert body[i + used :] == b"NEXT"
                break
        assert used is not None
    assert ChunkedSkipper().feed(b"zz\r\n") == -1


def _flow(chunks: list[tuple[bool, bytes]]) -> FlowParser:
    p = FlowParser("t.pcap", 0, L)
    for i, (orig, data) in enumerate(chunks, 1):
        p.data(orig, data, i, float(i))
    return p


def test_keep_alive_requests_before_upgrade() -> None:
    get = b"GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n"
    post = request("Content-Length: 5\r\n") + b"ab"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
    chunked = b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    p = _flow(
        [
            (True, get),
            (False, ok[:30]),
            (False, ok[30:]),
            (True, post),
            (True, b"cde"),
            (False, chunked),
            (True, request()),
            (False, response() + ser(1, b"first")),
            (True, ser(1, b"hello", mask=M)),
        ]
    )
    assert p.interested
    r = p.result()
    assert r is not None and r.request is not None and r.request.target == "/ws"
    assert r.request.location is not None and r.request.location.packet == 7
    assert r.request.location.offset == len(get) + len(post) + 3
    assert r.request.headers.get("Content-Length") is None
    assert [m.preview for m in r.messages] == [b"first", b"hello"]
    assert r.frames[0].offset == len(ok) + len(chunked) + len(response())
    assert r.anomalies == ()


def test_rejection_then_retry_on_same_connection() -> None:
    deny = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope"
    p = _flow(
        [
            (True, request()),
            (False, deny),
            (True, request("Authorization: Bearer x\r\n")),
            (False, response()),
            (True, ser(2, b"\x01", mask=M)),
        ]
    )
    r = p.result()
    assert r is not None and r.response is not None and r.response.status == 101
    assert r.request is not None and r.request.headers.has("Authorization")
    assert r.message_count == {"client": 1, "server": 0}


def test_rejection_closes_the_flow() -> None:
    p = _flow(
        [(True, request()), (False, b"HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\n\r\n")]
    )
    assert not p.interested
    r = p.result()
    assert r is not None and r.response is not None and r.response.status == 426
    assert r.frames == () and r.handshake_seen


def test_client_data_before_response_and_101_in_same_segment() -> None:
    p = _flow(
        [
            (True, request() + ser(1, b"eager", mask=M)),
            (False, response() + ser(1, b"a") + ser(1, b"b")[:2]),
            (False, ser(1, b"b")[2:]),
        ]
    )
    r = p.result()
    assert r is not None
    assert [a.code for a in r.anomalies] == [A.HANDSHAKE_EARLY_CLIENT_DATA]
    assert [(m.side, m.preview, m.packet) for m in r.messages] == [
        ("client", b"eager", 1),
        ("server", b"a", 2),
        ("server", b"b", 2),
    ]
    assert r.frames[0].offset == len(request())
    assert r.frames[2].last_packet == 3 and r.frames[2].time == 3.0


def test_response_without_request_and_no_response() -> None:
    p = _flow([(False, response() + ser(1, b"s")), (True, ser(1, b"c", mask=M))])
    r = p.result()
    assert r is not None and r.request is None and r.response is not None
    assert [a.code for a in r.anomalies] == [A.HANDSHAKE_RESPONSE_WITHOUT_REQUEST]
    assert r.client_is_orig and [m.side for m in r.messages] == ["server", "client"]
    assert r.start == 1.0  # the 101's time: the request was not seen
    # The capture started with the server's packet: orig is the server.
    p = _flow([(True, response() + ser(1, b"s")), (False, ser(1, b"c", mask=M))])
    r = p.result()
    assert r is not None and not r.client_is_orig
    assert [(m.side, m.preview) for m in r.messages] == [("server", b"s"), ("client", b"c")]
    q = _flow([(True, request())])
    r = q.result()
    assert r is not None and [a.code for a in r.anomalies] == [A.HANDSHAKE_NO_RESPONSE]
    assert r.response is None


def test_not_websocket_flows_stop_early() -> None:
    tls = bytes.fromhex("16030100f5010000f10303") + b"\x00" * 40
    for chunks in (
        [(True, tls)],
        [(False, b"SSH-2.0-OpenSSH_9.2\r\n")],
        [
            (True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"),
        ],
        [
            (True, b"GET / HTTP/1.0\r\n\r\n"),
            (False, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        [
            (True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\n\r\nbody to the end"),
        ],
        [
            (True, b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
            (False, b"HTTP/1.1 101 OK\r\nUpgrade: h2c\r\n\r\n"),
        ],
        [(True, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")],
        [(True, b"\x00\x00\x00\x00\x00\x00\x00\x00")],
    ):
        p = _flow(chunks)  # type: ignore[arg-type]
        assert not p.interested, chunks
        assert p.result() is None


def test_downloads_stop_following() -> None:
    for resp in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ):
        p = _flow([(True, b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n"), (False, resp)])
        assert not p.interested and p.result() is None


def test_too_many_plain_exchanges() -> None:
    chunks: list[tuple[bool, bytes]] = []
    for _ in range(9):
        chunks += [
            (True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (False, b"HTTP/1.1 204 No\r\n\r\n"),
        ]
    p = _flow(chunks)
    assert not p.interested and p.result() is None


def test_oversized_response_head() -> None:
    p = FlowParser("t.pcap", 0, Limits(max_header_bytes=300))
    p.data(True, request(), 1, 1.0)
    p.data(False, b"HTTP/1.1 101 Switching\r\nX: " + b"a" * 400, 2, 2.0)
    assert not p.interested
    r = p.result()
    assert r is not None and A.LIMIT_HEADER_BYTES in [a.code for a in r.anomalies]


def test_bad_deflate_parameters() -> None:
    ext = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20; zz\r\n"
    r = feed([(True, request()), (False, response(ext))])
    assert [a.code for a in r.anomalies] == [A.BAD_PARAMETERS, A.BAD_PARAMETERS]


def test_gap_in_body_is_skipped_gap_in_head_stops() -> None:
    p = _flow(
        [
            (True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
        ]
    )
    p.gap(False, 50, 3, 3.0)
    assert p.interested
    p.data(False, b"x" * 47, 4, 4.0)
    p.data(True, request(), 5, 5.0)
    p.data(False, response(), 6, 6.0)
    r = p.result()
    assert r is not None and r.response is not None and r.response.status == 101
    q = _flow([(True, request()[:20])])
    q.gap(True, 10, 2, 2.0)
    assert not q.interested and q.result() is None


def test_accept_is_checked_against_key() -> None:
    assert KEY and ACCEPT
    r = feed([(True, request()), (False, response(accept="x"))])
    assert [a.code for a in r.anomalies] == [A.HANDSHAKE_WRONG_ACCEPT]


_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="\r\n", max_codepoint=255), max_size=40),
    st.lists(
        st.tuples(
            st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=12),
            st.text(
                alphabet=st.characters(blacklist_characters="\r\n", max_codepoint=255),
                max_size=30,
            ),
        ),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=14),
)
def test_the_one_pass_split_of_a_clean_head_equals_the_line_by_line_split(
    start: str, fields: list[tuple[str, str]], max_fields: int
) -> None:
    # _split takes a shortcut for heads with CRLF everywhere and "token:value" fields;
    # what it gives must be what the general line-by-line split gives.
    raw = start + "\r\n" + "".join(f"{n}:{v}\r\n" for n, v in fields) + "\r\n"
    limits = Limits(max_header_count=max_fields)
    data = raw.encode("latin-1")
    assert _split(data, limits) == _split_lines(raw, len(data), limits)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=16).map(lambda b: bytes(b"\r\na"[x % 3] for x in b)), st.integers(0, 3))
def test_find_end_is_the_end_of_the_first_blank_line(data: bytes, start: int) -> None:
    m = re.compile(rb"\r?\n\r?\n").search(data, start)
    assert find_end(data, start) == (m.end() if m else -1)
