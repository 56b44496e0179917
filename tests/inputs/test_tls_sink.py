"""DecryptingSink: the TLS layer in front of the real FlowParser, as build_pcap will use it."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

MAKE = Path(__file__).resolve().parents[1] / "data" / "tls" / "make"
if str(MAKE) not in sys.path:
    sys.path.insert(0, str(MAKE))

import tcp_payloads  # noqa: E402
import tlstest  # noqa: E402

from analyzer.inputs.tls import DecryptingSink, KeyLog  # noqa: E402
from analyzer.limits import DEFAULT_LIMITS  # noqa: E402
from analyzer.protocol.flow import FlowParser  # noqa: E402

TLS = tlstest.TLS_DIR
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat-1008" / "server-side.pcapng"


def run(tcp: tcp_payloads.Flow, keylog: KeyLog | None) -> tuple[DecryptingSink, FlowParser, int]:
    parser = FlowParser("t.pcap", tcp.stream, DEFAULT_LIMITS)
    sink = DecryptingSink(parser, keylog, "t.pcap", tcp.stream)
    fed = 0
    for e in tcp.events:
        if not sink.interested:
            break
        fed += 1
        if e.gap:
            sink.gap(e.from_orig, e.gap, e.packet, e.time)
        if e.payload:
            sink.data(e.from_orig, e.payload, e.packet, e.time)
    return sink, parser, fed


@pytest.mark.parametrize("name", ["py-tls13-aes128gcm", "node-tls12-chacha20"])
def test_decrypted_flow_parses_as_websocket(name: str) -> None:
    (tcp,) = tcp_payloads.read(TLS / f"{name}.pcap").flows
    sink, parser, _ = run(tcp, KeyLog.from_file(TLS / f"{name}.keys"))
    assert sink.tls is not None and sink.tls.info.decrypted
    result = parser.result()
    assert result is not None and result.handshake_seen
    assert result.request is not None and result.request.target == "/tls-test"
    assert result.response is not None and result.response.status == 101
    sizes = [(m.side, m.size) for m in result.messages]
    assert sizes == [(side, n) for n in (5, 300, 1000, 20_000) for side in ("client", "server")]
    assert [c.code for c in result.closes] == [1000, 1000]
    assert result.anomalies == ()
    # Locations are packets of the capture: the request's record came in a client packet.
    packets = {e.packet: e.from_orig for e in tcp.events if e.payload}
    assert result.frames and all(packets[f.packet] == (f.side == "client") for f in result.frames)


def test_without_keys_the_flow_is_dropped_after_the_server_hello() -> None:
    (tcp,) = tcp_payloads.read(TLS / "py-tls12-aes128gcm.pcap").flows
    sink, parser, fed = run(tcp, None)
    assert sink.tls is not None and not sink.interested
    assert fed < len(tcp.events) // 2  # the encrypted bulk is not even read
    assert parser.result() is None
    assert sink.tls.info.sni == "localhost" and sink.tls.info.problem


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/chat-1008 not present")
def test_cleartext_flows_pass_through_unchanged() -> None:
    websockets = 0
    for tcp in tcp_payloads.read(EXAMPLE).flows:
        sink, through, _ = run(tcp, None)
        assert sink.tls is None
        direct = FlowParser("t.pcap", tcp.stream, DEFAULT_LIMITS)
        for e in tcp.events:
            if e.gap:
                direct.gap(e.from_orig, e.gap, e.packet, e.time)
            if e.payload:
                direct.data(e.from_orig, e.payload, e.packet, e.time)
        assert through.result() == direct.result()
        websockets += through.result() is not None
    assert websockets >= 1


@pytest.mark.parametrize("name", ["py-tls12-aes128gcm", "node-tls13-chacha20"])
@pytest.mark.parametrize("from_orig", [True, False], ids=["client", "server"])
def test_tcp_gap_inside_a_message_keeps_the_frames_after_it(name: str, from_orig: bool) -> None:
    """500 bytes missing in the last TLS record of a 20 000-byte message: that record's
    plaintext is lost. The parser is told the plaintext's length (not the 500 ciphertext
    bytes), so the frames after it (the close handshake) still parse."""
    (tcp,) = tcp_payloads.read(TLS / f"{name}.pcap").flows
    target = max((e for e in tcp.events if e.from_orig == from_orig), key=lambda e: len(e.payload))
    i = tcp.events.index(target)
    p, n, t = target.payload, target.packet, target.time
    damaged = dataclasses.replace(
        tcp,
        events=[
            *tcp.events[:i],
            tcp_payloads.Event(from_orig, p[:-1000], n, t),
            tcp_payloads.Event(from_orig, b"", n, t, gap=500),
            tcp_payloads.Event(from_orig, p[-500:], n, t),
            *tcp.events[i + 1 :],
        ],
    )
    sink, parser, _ = run(damaged, KeyLog.from_file(TLS / f"{name}.keys"))
    sink.finish()
    result = parser.result()
    assert result is not None
    side = "client" if from_orig else "server"
    (gap,) = result.anomalies
    assert gap.code == "stream.gap" and "inside a frame's payload" in gap.detail
    assert gap.location is not None and gap.location.direction == side
    # The lost record is the message's last: 20 000 bytes less the first record's 16 384
    # less what the frame header took of it.
    assert gap.detail.startswith(f"{20_000 - 16_384 + (8 if from_orig else 4)} bytes missing")
    sizes = sorted((m.side, m.size) for m in result.messages)
    assert sizes == sorted((s, k) for k in (5, 300, 1000, 20_000) for s in ("client", "server"))
    assert [c.code for c in result.closes] == [1000, 1000]
    assert sink.tls is not None
    assert [a.code for a in sink.tls.anomalies] == ["tls.truncated_record", "tls.gap"]
