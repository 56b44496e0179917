"""DecryptingSink: the TLS layer in front of the real FlowParser, as build_pcap will use it."""

from __future__ import annotations

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
