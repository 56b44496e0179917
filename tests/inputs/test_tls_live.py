"""TLS decryption on captures generated now, on loopback, by real clients and servers.

Each test runs a wss:// session (Python websockets, or Node ws when node is available)
under dumpcap, then checks our plaintext against tshark's on the same capture.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

MAKE = Path(__file__).resolve().parents[1] / "data" / "tls" / "make"
if str(MAKE) not in sys.path:
    sys.path.insert(0, str(MAKE))

import tlstest  # noqa: E402
import wss_capture  # noqa: E402

from analyzer.inputs.tls import KeyLog  # noqa: E402

can_capture = pytest.mark.skipif(
    not (tlstest.have("dumpcap") and tlstest.have("tshark")) or os.geteuid() != 0,
    reason="dumpcap (as root) and tshark are needed to capture on lo",
)

LIVE = [
    wss_capture.Session("live-py-tls12-chacha20", "1.2", ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"),
    wss_capture.Session("live-py-tls13-default", "1.3", compression=True),
    wss_capture.Session(
        "live-node-tls13-aes128gcm", "1.3", impl="node", ciphers="TLS_AES_128_GCM_SHA256"
    ),
]


@can_capture
@pytest.mark.parametrize("session", LIVE, ids=lambda s: s.name)
def test_live_capture_decrypts_like_tshark(session: wss_capture.Session, tmp_path: Path) -> None:
    if session.impl == "node" and (
        shutil.which("node") is None or wss_capture.node_modules() is None
    ):
        pytest.skip("node and the npm package ws are not available")
    pcap, keys = wss_capture.generate(session, tmp_path)
    (result,) = tlstest.decrypt_file(pcap, KeyLog.from_file(keys))
    client, server = result.side(True), result.side(False)
    assert client.startswith(b"GET /tls-test HTTP/1.1\r\n")
    assert server.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert {client, server} == tlstest.tshark_follow(pcap, keys)
    info = result.flow.info
    assert info.version == f"TLS 1.{session.tls[-1]}" and info.decrypted
    assert result.flow.anomalies == ()
    if session.compression:
        assert b"permessage-deflate" in server
