"""Every anomaly code of the protocol layer, from crafted bytes after a real handshake."""

from __future__ import annotations

import zlib

import pytest

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.flow import FlowParser, FlowResult
from analyzer.protocol.frames import serialize as ser

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3's worked example
M = b"\x11\x22\x33\x44"


def request(extra: str = "") -> bytes:
    return (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def response(extra: str = "", accept: str = ACCEPT) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def run(
    client: bytes = b"",
    server: bytes = b"",
    resp: bytes | None = None,
    limits: Limits | None = None,
) -> FlowResult:
    p = FlowParser("crafted.pcap", 7, limits or Limits())
    p.data(True, request(), 1, 1.0)
    p.data(False, response() if resp is None else resp, 2, 2.0)
    if client:
        p.data(True, client, 3, 3.0)
    if server:
        p.data(False, server, 4, 4.0)
    r = p.result()
    assert r is not None
    return r


def codes(r: FlowResult) -> list[str]:
    return [a.code for a in r.anomalies]


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


PMD = "Sec-WebSocket-Extensions: permessage-deflate\r\n"

CASES: list[tuple[str, dict[str, bytes], list[str]]] = [
    ("clean", {"client": ser(1, b"hi", mask=M), "server": ser(1, b"yo")}, []),
    ("unmasked client", {"client": ser(1, b"hi")}, [A.UNMASKED_CLIENT_FRAME]),
    ("masked server", {"server": ser(2, b"hi", mask=M)}, [A.MASKED_SERVER_FRAME]),
    ("rsv without ext", {"server": ser(1, b"hi", rsv=4)}, [A.RSV_WITHOUT_EXTENSION]),
    ("rsv2", {"server": ser(1, b"hi", rsv=2)}, [A.RSV_WITHOUT_EXTENSION]),
    ("reserved opcode", {"server": ser(3, b"??")}, [A.RESERVED_OPCODE]),
    ("reserved control opcode", {"server": ser(0xB, b"")}, [A.RESERVED_OPCODE]),
    ("control too long", {"server": ser(9, b"p" * 126)}, [A.CONTROL_TOO_LONG]),
    ("fragmented control", {"server": ser(9, b"p", fin=False)}, [A.FRAGMENTED_CONTROL]),
    ("continuation alone", {"server": ser(0, b"x")}, [A.CONTINUATION_WITHOUT_START]),
    (
        "data inside fragmented",
        {"server": ser(1, b"a", fin=False) + ser(2, b"b")},
        [A.DATA_INSIDE_FRAGMENTED],
    ),
    ("non-minimal 16", {"server": ser(2, b"abc", length_size=2)}, [A.NON_MINIMAL_LENGTH]),
    ("non-minimal 64", {"server": ser(2, b"a" * 300, length_size=8)}, [A.NON_MINIMAL_LENGTH]),
    (
        "64-bit top bit",
        {"server": b"\x82\x7f" + (1 << 63 | 3).to_bytes(8, "big") + b"abc"},
        [A.LENGTH_TOP_BIT, A.LIMIT_FRAME_BYTES, A.FRAME_INCOMPLETE],
    ),
    ("close one byte", {"server": ser(8, b"\x03")}, [A.CLOSE_ONE_BYTE]),
    ("close 999", {"server": ser(8, (999).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 1004", {"server": ser(8, (1004).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 1005", {"server": ser(8, (1005).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 1006", {"server": ser(8, (1006).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 1015", {"server": ser(8, (1015).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 2000", {"server": ser(8, (2000).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 5000", {"server": ser(8, (5000).to_bytes(2, "big"))}, [A.CLOSE_INVALID_CODE]),
    ("close 1014 ok", {"server": ser(8, (1014).to_bytes(2, "big"))}, []),
    ("close 4999 ok", {"server": ser(8, (4999).to_bytes(2, "big"))}, []),
    ("close bad utf8", {"server": ser(8, b"\x03\xe8\xff\xfe")}, [A.CLOSE_INVALID_UTF8]),
    ("text bad utf8", {"client": ser(1, b"caf\xc3", mask=M)}, [A.MESSAGE_INVALID_UTF8]),
    (
        "text bad utf8 fragmented",
        {"server": ser(1, b"ok \xe2\x82", fin=False) + ser(0, b"\xac ok") + ser(1, b"\xe2\x28")},
        [A.MESSAGE_INVALID_UTF8],
    ),
    (
        "utf8 split across fragments is fine",
        {"server": ser(1, b"ok \xe2\x82", fin=False) + ser(0, b"\xac ok")},
        [],
    ),
    ("data after close", {"server": ser(8, b"\x03\xe8") + ser(1, b"late")}, [A.DATA_AFTER_CLOSE]),
    ("ping after close is fine", {"server": ser(8, b"\x03\xe8") + ser(9, b"")}, []),
]


@pytest.mark.parametrize(("name", "frames", "expected"), CASES, ids=[c[0] for c in CASES])
def test_frame_anomalies(name: str, frames: dict[str, bytes], expected: list[str]) -> None:
    r = run(frames.get("client", b""), frames.get("server", b""))
    assert codes(r) == expected
    for a in r.anomalies:
        assert a.code in A.CATALOGUE
        assert a.location is not None and a.location.stream == 7
        assert a.location.packet in (3, 4) and a.location.direction in ("client", "server")


def test_close_codes_and_reasons_recorded() -> None:
    r = run(ser(8, b"\x03\xe8bye", mask=M), ser(8, b"\x03\xf0\xff"))
    assert [(c.side, c.code, c.reason) for c in r.closes] == [
        ("client", 1000, "bye"),
        ("server", 1008, "\ufffd"),
    ]
    assert r.frames[0].close_code == 1000 and r.frames[1].close_reason == "\ufffd"
    empty = run(server=ser(8, b""))
    assert (empty.closes[0].code, empty.closes[0].reason) == (None, None)


def test_wrong_accept_says_expected_and_found() -> None:
    r = run(resp=response(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    (a,) = r.anomalies
    assert a.code == A.HANDSHAKE_WRONG_ACCEPT
    assert ACCEPT in a.detail and "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" in a.detail
    r = run(resp=b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    assert codes(r) == [A.HANDSHAKE_WRONG_ACCEPT] and "found none" in r.anomalies[0].detail


def test_deflate_rsv1_rules() -> None:
    body = deflate(b"hello hello hello")
    ok = run(server=ser(1, body, rsv=4), resp=response(PMD))
    assert codes(ok) == [] and ok.messages[0].preview == b"hello hello hello"
    assert ok.messages[0].compressed is True and ok.messages[0].size == 17
    cont = run(server=ser(1, body, rsv=4, fin=False) + ser(0, b"", rsv=4), resp=response(PMD))
    assert codes(cont) == [A.RSV1_ON_CONTINUATION]
    ctrl = run(server=ser(9, b"", rsv=4), resp=response(PMD))
    assert codes(ctrl) == [A.RSV1_ON_CONTROL]
    rsv2 = run(server=ser(1, b"x", rsv=2), resp=response(PMD))
    assert codes(rsv2) == [A.RSV_WITHOUT_EXTENSION]
    other = run(server=ser(1, b"x", rsv=2), resp=response("Sec-WebSocket-Extensions: foo\r\n"))
    assert codes(other) == []


def test_inflate_failed_on_garbage() -> None:
    r = run(server=ser(2, b"\xff\xff\xff\xff", rsv=4), resp=response(PMD))
    assert codes(r) == [A.INFLATE_FAILED]
    (m,) = r.messages
    assert m.preview is None and m.size == 4 and m.compressed  # wire size, no garbage


def test_deflate_bomb_is_bounded() -> None:
    body = deflate(b"\0" * 1_000_000)
    r = run(
        server=ser(2, body, rsv=4), resp=response(PMD), limits=Limits(max_decompressed_bytes=1000)
    )
    assert codes(r) == [A.LIMIT_DECOMPRESSED_BYTES]
    assert r.messages[0].size == 1000 and r.messages[0].preview == b"\0" * 1000


def test_no_context_takeover_violation_is_reported() -> None:
    c = zlib.compressobj(wbits=-15)
    first = c.compress(b"abcdefgh" * 4) + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(b"abcdefgh" * 4) + c.flush(zlib.Z_SYNC_FLUSH)
    frames = ser(1, first[:-4], rsv=4) + ser(1, second[:-4], rsv=4)
    kept = run(server=frames, resp=response(PMD))
    assert codes(kept) == [] and [m.size for m in kept.messages] == [32, 32]
    ext = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
    r = run(server=frames, resp=response(ext))
    assert codes(r) == [A.INFLATE_FAILED]
    assert "server_no_context_takeover" in r.anomalies[0].detail


def test_frame_limit_and_frames_limit() -> None:
    r = run(server=ser(2, b"z" * 100) + ser(1, b"ok"), limits=Limits(max_frame_bytes=50))
    assert codes(r) == [A.LIMIT_FRAME_BYTES]
    assert [m.size for m in r.messages] == [100, 2] and r.messages[1].preview == b"ok"
    many = run(server=ser(9, b"") * 5, limits=Limits(max_messages_per_connection=3))
    assert codes(many) == [A.LIMIT_FRAMES] and len(many.frames) == 3


def test_anomaly_flood_is_capped() -> None:
    r = run(client=ser(1, b"x") * 150)
    assert codes(r).count(A.UNMASKED_CLIENT_FRAME) == 100
    assert codes(r).count(A.LIMIT_ANOMALIES) == 1
    assert r.message_count["client"] == 150


def test_incomplete_message_at_end() -> None:
    r = run(server=ser(1, b"half", fin=False))
    assert codes(r) == [A.MESSAGE_INCOMPLETE] and r.messages == ()


def test_catalogue_is_complete() -> None:
    names = [v for k, v in vars(A).items() if k.isupper() and isinstance(v, str)]
    assert sorted(names) == sorted(A.CATALOGUE)
    for code, text in A.CATALOGUE.items():
        assert "." in code and text.endswith(".") and "\n" not in text


def test_x_webkit_deflate_frame_per_frame_context() -> None:
    c = zlib.compressobj(wbits=-15)
    frames = b""
    texts = [b"per frame compression ", b"per frame compression again", b"!"]
    for i, t in enumerate(texts):
        data = (c.compress(t) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        # A fragmented message whose every frame is compressed on its own (RSV1 each).
        frames += ser(1 if i == 0 else 0, data, rsv=4, fin=i == len(texts) - 1)
    ext = "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
    r = run(server=frames, resp=response(ext))
    assert codes(r) == []
    (m,) = r.messages
    assert m.preview == b"".join(texts) and m.compressed and m.frames == 3
    ext = "Sec-WebSocket-Extensions: x-webkit-deflate-frame; no_context_takeover\r\n"
    r = run(server=frames, resp=response(ext))
    assert codes(r) == [A.INFLATE_FAILED]  # frames 2 and 3 refer to frame 1's window


def test_invalid_utf8_detail_points_into_the_message() -> None:
    r = run(server=ser(1, b"abcd", fin=False) + ser(0, b"ef\xff\xfe"))
    (a,) = r.anomalies
    assert a.code == A.MESSAGE_INVALID_UTF8
    assert "at byte 6 of the message: fffe" in a.detail
    assert a.location is not None and a.location.offset == len(response()) + 6
