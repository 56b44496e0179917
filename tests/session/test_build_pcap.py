"""Packet captures into the session model (analyzer.session.build_pcap).

Corpus files for the fields; a live loopback capture for what real endpoints did: dumpcap
records a Python ``websockets`` server and clients on lo (a 1008 close, a 403 handshake, a
connection ended by FIN and one by RST without a close frame), and the analysis must tell
the same story the endpoints tell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.errors import KeyLogError
from analyzer.pipeline import load_capture
from analyzer.session.build_pcap import (
    PACKET_FACTS,
    PcapSession,
    iter_connections,
    read_packet_capture,
)
from analyzer.session.model import Fact

DATA = Path(__file__).resolve().parents[1] / "data"


def test_connection_fields_from_a_real_capture() -> None:
    path = DATA / "pcap" / "zeek" / "message-too-big-status.pcap"
    cap = read_packet_capture(path)
    assert cap.format == "pcap" and cap.packets == 14 and cap.creator is None
    assert cap.can_show == PACKET_FACTS
    (conn,) = cap.connections
    assert conn.id == "message-too-big-status#0"
    assert conn.capture == str(path)
    assert conn.url == "ws://localhost:8080/"
    assert (conn.client, conn.server) == ("127.0.0.1:60956", "127.0.0.1:8080")
    assert conn.location is not None
    assert (conn.location.packet, conn.location.stream) == (1, 0)
    assert conn.stream == 0 and conn.http_version == "1.1" and conn.handshake_seen
    assert conn.request is not None and conn.request.headers.get("User-Agent") == (
        "Python/3.10 websockets/12.0"
    )
    assert conn.accept_ok is True
    assert conn.close_known and conn.close is not None
    assert (conn.close.side, conn.close.code, conn.close.reason) == (
        "client",
        1009,
        "over size limit (4 > 2 bytes)",
    )
    assert conn.close.echoed and conn.close.echo_code == 1000
    assert conn.end == "close-handshake"
    assert conn.start is not None and conn.end_time is not None
    assert conn.start <= conn.end_time
    assert conn.can_show == frozenset(PACKET_FACTS)


def test_iter_connections_streams_before_the_file_ends() -> None:
    # wstunnel-ssh.pcap: two connections, one after the other.
    path = DATA / "pcap" / "zeek" / "wstunnel-ssh.pcap"
    session = PcapSession(path)
    connections = session.connections()
    first = next(connections)
    assert first.stream == 0
    assert session.tracker.streams == 1  # the second connection has not been read yet
    rest = list(connections)
    assert [c.stream for c in rest] == [1]
    assert [c.id for c in iter_connections(path)] == [
        c.id for c in read_packet_capture(path).connections
    ]


def test_pcapng_creator_and_pipeline_entry() -> None:
    path = DATA / "pcap" / "evsetool" / "cap.pcapng"
    cap = load_capture(path)  # the pipeline detects the format by content
    assert cap.format == "pcapng"
    assert cap.creator == "Dumpcap (Wireshark) 4.2.5 (Git v4.2.5 packaged as 4.2.5-1)"
    assert cap.packets == 66
    assert [c.id for c in cap.connections] == ["cap#0", "cap#1"]


def test_handshake_facts_only_when_seen() -> None:
    cap = read_packet_capture(DATA / "pcap" / "nDPI" / "websocket.pcap")
    (conn,) = cap.connections
    assert Fact.HANDSHAKE_REQUEST not in conn.can_show
    assert Fact.HANDSHAKE_RESPONSE not in conn.can_show
    assert Fact.FRAMES in conn.can_show and Fact.TRANSPORT_END in conn.can_show
    assert conn.end == "capture-ended"  # five frames, no FIN or RST: the capture stopped


def test_keylog_is_accepted(tmp_path: Path) -> None:
    # A usable key log changes nothing on a cleartext capture; an empty one is an error
    # (the TLS wiring is tested in tests/test_tls_pipeline.py).
    keylog = tmp_path / "keys.txt"
    keylog.write_text("CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48 + "\n")
    path = DATA / "pcap" / "zeek" / "websocket_baseline.pcap"
    assert read_packet_capture(path, keylog=keylog) == read_packet_capture(path)
    keylog.write_text("")
    with pytest.raises(KeyLogError, match="empty"):
        read_packet_capture(path, keylog=keylog)


# -- a live capture on loopback ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveCapture:
    """dumpcap on lo, filtered on one port; ``stop`` ends it (also done by the fixture)."""

    def __init__(self, out: Path, port: int) -> None:
        self.out = out
        self.port = port
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            time.sleep(0.5)  # the last FIN/ACKs
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def dumpcap(tmp_path: Path) -> Iterator[LiveCapture]:
    if shutil.which("dumpcap") is None or os.geteuid() != 0:
        pytest.skip("needs dumpcap and root to capture on lo")
    live = LiveCapture(tmp_path / "live.pcapng", _free_port())
    try:
        time.sleep(1.5)  # dumpcap needs a moment before it sees packets
        assert live.proc.poll() is None, "dumpcap did not start"
        yield live
    finally:
        live.stop()


def test_live_loopback_session(dumpcap: LiveCapture) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect
    from websockets.sync.server import ServerConnection, serve

    port = dumpcap.port

    def handler(ws: ServerConnection) -> None:
        try:
            for message in ws:
                if ws.request is not None and ws.request.path == "/policy":
                    ws.close(1008, "origin not allowed")
                    return
                ws.send(message)
        except ConnectionClosed:
            pass

    def gate(conn: ServerConnection, request: object) -> object:
        if getattr(request, "path", "") == "/forbidden":
            return conn.respond(403, "no\n")
        return None

    did: dict[str, str] = {}
    server = serve(handler, "127.0.0.1", port, process_request=gate, compression=None)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"ws://127.0.0.1:{port}"
        with connect(url + "/policy", compression=None) as ws:
            did["policy"] = f"127.0.0.1:{ws.socket.getsockname()[1]}"
            ws.send("hello")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        time.sleep(0.2)
        with pytest.raises(InvalidStatus), connect(url + "/forbidden"):
            pass
        time.sleep(0.2)
        # The transport ends with no close frame: the socket is shut under the client.
        with contextlib.suppress(ConnectionClosed, OSError), connect(url + "/fin") as ws:
            did["fin"] = f"127.0.0.1:{ws.socket.getsockname()[1]}"
            ws.send("one")
            assert ws.recv() == "one"
            ws.socket.shutdown(socket.SHUT_RDWR)  # FIN
            time.sleep(0.3)
        time.sleep(0.3)
        with contextlib.suppress(ConnectionClosed, OSError), connect(url + "/rst") as ws:
            did["rst"] = f"127.0.0.1:{ws.socket.getsockname()[1]}"
            ws.send("two")
            assert ws.recv() == "two"
            ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.socket.close()  # RST
            time.sleep(0.3)
        time.sleep(0.3)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    dumpcap.stop()
    cap = read_packet_capture(dumpcap.out)
    assert cap.format == "pcapng" and cap.creator is not None and "Dumpcap" in cap.creator
    policy, forbidden, fin, rst = cap.connections
    assert [c.stream for c in cap.connections] == [0, 1, 2, 3]

    assert policy.client == did["policy"] and policy.url is not None
    assert policy.url.endswith("/policy") and policy.status == 101
    assert policy.close is not None
    assert (policy.close.side, policy.close.code, policy.close.reason) == (
        "server",
        1008,
        "origin not allowed",
    )
    assert policy.close.echoed and policy.close.client_messages_before == 1
    assert policy.end == "close-handshake"
    assert [m.side for m in policy.messages] == ["client"]
    assert all(f.masked == (f.side == "client") for f in policy.frames or ())

    assert forbidden.status == 403 and forbidden.frames == () and forbidden.close is None

    assert fin.client == did["fin"] and fin.close is None and fin.end == "fin"
    assert [(m.side, m.size) for m in fin.messages] == [("client", 3), ("server", 3)]

    assert rst.client == did["rst"] and rst.close is None and rst.end == "rst"
    assert [(m.side, m.size) for m in rst.messages] == [("client", 3), ("server", 3)]


def _records(path: Path) -> list[tuple[bytes, bytes]]:
    """(16-byte record header, frame) of a little-endian pcap."""
    raw = path.read_bytes()
    out, pos = [], 24
    while pos < len(raw):
        caplen = struct.unpack_from("<I", raw, pos + 8)[0]
        out.append((raw[pos : pos + 16], raw[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


def test_tcp_anomaly_on_the_connection_names_the_side(tmp_path: Path) -> None:
    # message-too-big-status.pcap with the server's close (packet 11) moved before its ping
    # (packet 8), and a second copy of it with other bytes: the first copy wins.
    src = DATA / "pcap" / "zeek" / "message-too-big-status.pcap"
    head = src.read_bytes()[:24]
    recs = _records(src)
    close_hdr, close = recs[10]
    forged = close[:-2] + b"\x03\xf3"  # close code 1011 instead of 1000
    order = [*recs[:7], (close_hdr, close), (close_hdr, forged), *recs[7:10], *recs[11:]]
    path = tmp_path / "overlap.pcap"
    path.write_bytes(head + b"".join(h + f for h, f in order))
    (conn,) = read_packet_capture(path).connections
    (anomaly,) = [a for a in conn.anomalies if a.code == "tcp.overlap_conflict"]
    assert anomaly.location is not None
    assert (anomaly.location.packet, anomaly.location.direction) == (9, "server")
    closes = {(f.side, f.close_code) for f in conn.frames or () if f.opcode == 8}
    assert closes == {("client", 1009), ("server", 1000)}


def test_eviction_is_noted() -> None:
    from dataclasses import replace

    from analyzer.limits import DEFAULT_LIMITS

    limits = replace(DEFAULT_LIMITS, max_open_flows=2)
    session = PcapSession(DATA / "pcap" / "nDPI" / "1kxun.pcap", limits=limits)
    connections = list(session.connections())
    assert session.tracker.evicted > 0
    notes = session.notes()
    assert any("closed early" in n and "max_open_flows" in n for n in notes)
    assert all(c.stream is not None for c in connections)
