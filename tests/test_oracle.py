"""Every corpus packet capture agrees with Wireshark's view of it (tests/data/oracle).

The oracle is tshark 4.0.17's dissection (``../shared/tools/tshark-oracle``): streams,
endpoints, the upgrade request and response, and every frame (packet, direction, FIN, RSV,
opcode, mask, length, close code and reason). Where we differ from tshark on purpose, the
difference is written down below with the reason, and our view is asserted instead.

Conventions of the oracle that are not disagreements:

- ``length`` is tshark's ``websocket.payload_length``: the 7-bit length field, so 126 and
  127 stand for "the real length is in the 16-bit / 64-bit extension". We compare the real
  length with what that field must have said (and 127 with a small length means a
  non-minimal encoding, which we must flag).
- ``frame`` is the packet where tshark shows the frame: the one that completes it. Ours is
  ``Frame.last_packet`` when the frame spans packets, else ``Frame.packet``.
- A close frame with a code and no reason: tshark has no reason field, we have ``""``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import pytest

from analyzer.session.build_pcap import read_packet_capture
from analyzer.session.model import Capture, Connection, Headers

DATA = Path(__file__).resolve().parent / "data"
PCAPS = sorted(p for p in (DATA / "pcap").glob("*/*") if p.suffix in (".pcap", ".pcapng"))


def oracle_for(path: Path) -> dict[str, object]:
    name = f"{path.parent.name}__{path.name}.json"
    result: dict[str, object] = json.loads((DATA / "oracle" / name).read_text())
    return result


def _endpoint(text: str) -> str:
    # GTP-U tunnels (nDPI false_positives, http_origin_different_than_host): tshark's
    # ip.src has the outer and the inner address joined by \x1f; the WebSocket session is
    # between the inner addresses, which are what we report.
    host, port = text.rsplit(":", 1)
    return f"{host.split(chr(0x1F))[-1]}:{port}"


def _headers(headers: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for h in headers:
        # The oracle tool strips values with .rstrip("\\r\\n"), a *set* of characters:
        # it also eats a trailing "r", "n" or backslash ("swoole-websocket-server" becomes
        # "...-serve" in 1kxun). Ours are right; apply the same cut to compare.
        out[h.name.lower()].append(h.value.strip().rstrip("\\rn").strip())
    return dict(out)


def _length_field(length: int) -> int:
    return length if length < 126 else 126 if length <= 0xFFFF else 127


# Streams tshark does not show and we do, with the reason.
EXTRA_STREAMS = {
    # Packets 1-8 are the end of an earlier connection (no SYN, no handshake): the client
    # sends 88 82 e3 55 be f7 e0 bc, a masked close frame with code 1001 (e3 55 be f7 is the
    # mask), and the server answers 88 02 03 e9, an unmasked close 1001. tshark dissects
    # WebSocket only after a handshake it saw; our heuristic recognises the two frames.
    # Hand-checked: `tshark -d tcp.port==9696,websocket` shows the same two closes.
    ("mikekap-pcap2har", "ipv4-websocket-segmented.pcap"): {0},
}

# tshark found these upgrades only with `-d tcp.port==N,http` (corpus MANIFEST, decode-as
# column): non-standard ports 1234, 25896, 34536 and cleartext HTTP on 443. We must find
# them with no hint: the oracle files were made with the hints, so they are the reference.
NEEDED_HINTS = {
    ("nDPI", "1kxun.pcap"),
    ("nDPI", "false_positives.pcapng"),
    ("nDPI", "http_origin_different_than_host.pcap"),
    ("nDPI", "websocket.pcap"),
    ("suricata-verify", "http-request-header-multi__input.pcap"),
}

_CACHE: dict[Path, Capture] = {}


def capture(path: Path) -> Capture:
    """The capture's WebSocket connections: the TLS connections we list without keys
    (``tls.decrypted`` False, nothing above TLS) are not WebSocket to tshark's oracle;
    tests/test_tls_pipeline.py checks them against tshark's TLS fields."""
    if path not in _CACHE:
        cap = read_packet_capture(path)
        ws = tuple(c for c in cap.connections if c.tls is None or c.request or c.response)
        _CACHE[path] = dataclasses.replace(cap, connections=ws)
    return _CACHE[path]


def test_every_corpus_pcap_has_an_oracle() -> None:
    assert len(PCAPS) == 29
    for path in PCAPS:
        assert oracle_for(path)["capture"] == path.name


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_streams_and_endpoints(path: Path) -> None:
    oracle = oracle_for(path)
    ours = {c.stream: c for c in capture(path).connections}
    expected = {s["stream"]: s for s in oracle["streams"]}  # type: ignore[attr-defined]
    extra = EXTRA_STREAMS.get((path.parent.name, path.name), set())
    assert set(ours) == set(expected) | extra
    for sid, s in expected.items():
        conn = ours[sid]
        assert conn.client == _endpoint(s["client"]), sid
        assert conn.server == _endpoint(s["server"]), sid
        assert conn.id == f"{path.stem}#{sid}"
        assert conn.location is not None and conn.location.stream == sid


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_handshake(path: Path) -> None:
    ours = {c.stream: c for c in capture(path).connections}
    for s in oracle_for(path)["streams"]:  # type: ignore[attr-defined]
        conn = ours[s["stream"]]
        if s["request"] is None:
            assert conn.request is None
            assert not conn.handshake_seen
        else:
            assert conn.request is not None
            assert conn.request.target == s["request"]["uri"]
            assert _headers(conn.request.headers) == s["request"]["headers"]
            assert conn.handshake_seen
        if s["response"] is None:
            assert conn.response is None
        else:
            assert conn.response is not None
            assert conn.response.status == s["response"]["status"]
            assert _headers(conn.response.headers) == s["response"]["headers"]


def _frames(conn: Connection) -> list[tuple[object, ...]]:
    return [
        (
            f.last_packet or f.packet,
            "c2s" if f.side == "client" else "s2c",
            int(f.fin),
            f.rsv,
            f.opcode,
            int(f.masked),
            _length_field(f.length),
            f.close_code,
            f.close_reason or None,
        )
        for f in conn.frames or ()
    ]


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_frames(path: Path) -> None:
    ours = {c.stream: c for c in capture(path).connections}
    for s in oracle_for(path)["streams"]:  # type: ignore[attr-defined]
        conn = ours[s["stream"]]
        expected = [
            (
                f["frame"],
                f["dir"],
                f["fin"],
                f["rsv"],
                f["opcode"],
                f["masked"],
                f["length"],
                f["close_code"],
                f["close_reason"],
            )
            for f in s["frames"]
        ]
        got = _frames(conn)
        if (path.parent.name, path.name) == ("zeek", "oversized-close-frame.pcapng"):
            # The close frame's 258-byte payload is written with the 64-bit length form
            # (field 127) where the 16-bit form would do: a non-minimal length, which
            # tshark shows without comment and we flag.
            assert got[0][6] == 126 and expected[0][6] == 127
            assert conn.frames is not None and conn.frames[0].length == 258
            assert any("minimal" in a.code for a in conn.anomalies)
            got[0] = got[0][:6] + (127,) + got[0][7:]
        assert got == expected


def test_upgrades_tshark_needed_hints_for() -> None:
    for d, name in NEEDED_HINTS:
        conns = capture(DATA / "pcap" / d / name).connections
        assert conns, name
    # 1kxun: three okhttp upgrades to port 1234 among 1723 packets of other traffic.
    kxun = capture(DATA / "pcap" / "nDPI" / "1kxun.pcap")
    assert [c.stream for c in kxun.connections] == [30, 31, 32]
    assert all(c.server == "172.104.93.92:1234" and c.status == 101 for c in kxun.connections)
    assert kxun.packets == 1723


def test_close_handshake_tshark_did_not_dissect() -> None:
    path = DATA / "pcap" / "mikekap-pcap2har" / "ipv4-websocket-segmented.pcap"
    conn = {c.stream: c for c in capture(path).connections}[0]
    assert not conn.handshake_seen
    assert [(f.packet, f.side, f.opcode, f.masked, f.close_code) for f in conn.frames or ()] == [
        (1, "client", 8, True, 1001),
        (3, "server", 8, False, 1001),
    ]
    assert conn.close is not None and conn.close.echoed and conn.end == "close-handshake"


def test_mid_stream_frames_without_handshake() -> None:
    # nDPI websocket.pcap: five frames cut from a session, no SYN and no upgrade.
    conn = capture(DATA / "pcap" / "nDPI" / "websocket.pcap").connections[0]
    assert not conn.handshake_seen
    assert conn.request is None and conn.response is None
    assert len(conn.messages) == 5
    assert [m.side for m in conn.messages] == ["server", "client", "server", "client", "server"]


def test_request_without_response() -> None:
    # The Go client's upgrade request is all there is: no 101, no frames.
    path = DATA / "pcap" / "suricata-verify" / "http-request-header-multi__input.pcap"
    conn = capture(path).connections[0]
    assert conn.request is not None and conn.response is None
    assert conn.url == "ws://foobar.com:80/s/ws"
    assert conn.frames == ()
    assert "handshake_request" in conn.can_show and "handshake_response" not in conn.can_show
