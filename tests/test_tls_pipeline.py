"""wss:// through the whole tool: pcap + key log -> analyzer.pipeline / the CLI -> report.

The captures in tests/data/tls/ are real loopback sessions (Python websockets and Node ws,
every TLS 1.2 and 1.3 suite we support) with their key logs; see tests/data/README.md.
What tshark decrypts with ``-o tls.keylog_file:K`` is the reference for the frames.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.errors import KeyLogError
from analyzer.pipeline import Analysis, Options, analyze
from analyzer.render import render
from analyzer.session.build_pcap import read_packet_capture
from analyzer.session.model import Capture, Connection, Fact

TLS = Path(__file__).resolve().parent / "data" / "tls"
# The WebSocket sessions of tests/data/tls/make/wss_capture.py (SESSIONS): py-* and node-*.
WSS = sorted(
    p.stem
    for p in TLS.glob("*-tls1*.pcap")
    if p.stem.startswith(("py-", "node-")) and "h2alpn" not in p.stem
)
SUITES = {
    "tls12-aes128gcm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    "tls12-aes256gcm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    "tls12-chacha20": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    "tls13-aes128gcm": ("TLS 1.3", "TLS_AES_128_GCM_SHA256"),
    "tls13-aes256gcm": ("TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    "tls13-chacha20": ("TLS 1.3", "TLS_CHACHA20_POLY1305_SHA256"),
}
# The exchange wss_capture.py makes: each message echoed, then a clean close.
EXCHANGE = [(side, n) for n in (5, 300, 1000, 20_000) for side in ("client", "server")]
ADVICE = ("SSLKEYLOGFILE", "--tls-keylog", "keylog_filename", "editcap --inject-secrets")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@pytest.fixture(autouse=True)
def _no_ambient_keylog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own SSLKEYLOGFILE must not change what these tests see."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


def pcap(name: str) -> Path:
    return TLS / f"{name}.pcap"


def keys(name: str) -> Path:
    return TLS / f"{name}.keys"


def run(path: Path, keylog: Path | None = None) -> Analysis:
    return analyze([path], Options(keylog=keylog))


def only(capture: Capture) -> Connection:
    assert len(capture.connections) == 1
    return capture.connections[0]


def tshark(path: Path, keylog: Path | None, filter_: str, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-Y", filter_, "-T", "fields"]
    if keylog is not None:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


# With the key log -----------------------------------------------------------------------


@needs_tshark
@pytest.mark.parametrize("name", WSS)
def test_decrypted_connection_matches_tshark(name: str) -> None:
    assert len(WSS) == 11
    analysis = run(pcap(name), keys(name))
    (capture,) = analysis.captures
    conn = only(capture)
    version, suite = SUITES[name.split("-", 1)[1]]
    assert conn.tls is not None
    assert (conn.tls.version, conn.tls.cipher_suite, conn.tls.sni) == (version, suite, "localhost")
    assert conn.tls.decrypted and conn.tls.problem is None
    assert conn.url is not None and conn.url.startswith("wss://") and conn.url.endswith("/tls-test")
    assert conn.request is not None and conn.request.target == "/tls-test"
    assert conn.response is not None and conn.response.status == 101
    assert [(m.side, m.size) for m in conn.messages] == EXCHANGE
    assert conn.close is not None and (conn.close.side, conn.close.code) == ("client", 1000)
    assert conn.close.echoed and conn.close.echo_code == 1000
    assert conn.end == "close-handshake"
    assert Fact.MESSAGE_PAYLOADS in conn.can_show and Fact.HANDSHAKE_REQUEST in conn.can_show
    assert conn.anomalies == () and capture.notes == ()
    # Every frame tshark decrypts, in the packet that completes it, with its opcode, mask
    # and close code; and no other.
    client_port = conn.client.rsplit(":", 1)[1] if conn.client else ""
    theirs = []
    for number, port, opcodes, masks, codes in tshark(
        pcap(name),
        keys(name),
        "websocket",
        "frame.number",
        "tcp.srcport",
        "websocket.opcode",
        "websocket.mask",
        "websocket.payload.close.status_code",
    ):
        side = "client" if port == client_port else "server"
        close_codes = iter(codes.split(","))
        for opcode, mask in zip(opcodes.split(","), masks.split(","), strict=True):
            code = int(next(close_codes)) if opcode == "8" else None
            theirs.append((int(number), side, int(opcode), mask in ("1", "True"), code))
    assert conn.frames is not None
    ours = [
        (f.last_packet or f.packet, f.side, f.opcode, f.masked, f.close_code) for f in conn.frames
    ]
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == len(EXCHANGE) + 2
    assert not [n for n in analysis.not_evaluable if n.connection == conn.id]


def test_sslkeylogfile_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "node-tls13-aes256gcm"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keys(name)))
    conn = only(read_packet_capture(pcap(name)))
    assert conn.tls is not None and conn.tls.decrypted
    assert [(m.side, m.size) for m in conn.messages] == EXCHANGE
    # ... and through the CLI, which reads it too.
    result = CliRunner().invoke(
        main,
        ["analyze", str(pcap(name)), "--format", "json", "-o", "-"],
        env={"SSLKEYLOGFILE": str(keys(name))},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (c,) = doc["connections"]
    assert c["tls"]["decrypted"] is True and c["message_count"] == {"client": 4, "server": 4}


def test_cli_keylog_option_decrypts() -> None:
    name = "py-tls12-chacha20"
    result = CliRunner().invoke(
        main, ["analyze", str(pcap(name)), "--keylog", str(keys(name)), "-f", "json", "-o", "-"]
    )
    assert result.exit_code == 0, result.output
    (c,) = json.loads(result.stdout)["connections"]
    assert c["url"].startswith("wss://") and c["response"]["status"] == 101
    assert c["tls"] == {
        "version": "TLS 1.2",
        "sni": "localhost",
        "alpn": [],
        "alpn_selected": None,
        "cipher_suite": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "decrypted": True,
        "problem": None,
        "application": None,
    }
    assert [m["size"] for m in c["messages"]] == [n for _, n in EXCHANGE]


# Without keys ---------------------------------------------------------------------------


@needs_tshark
@pytest.mark.parametrize("name", ["py-tls13-aes128gcm", "node-tls12-aes128gcm"])
def test_without_keys_the_connection_is_listed_as_encrypted(name: str) -> None:
    analysis = run(pcap(name))
    (capture,) = analysis.captures
    conn = only(capture)
    ((sni, port),) = tshark(
        pcap(name),
        None,
        "tls.handshake.type == 1",
        "tls.handshake.extensions_server_name",
        "tcp.dstport",
    )
    assert conn.tls is not None and conn.tls.sni == sni == "localhost"
    assert not conn.tls.decrypted and conn.tls.problem is not None
    assert conn.tls.version == SUITES[name.split("-", 1)[1]][0]
    assert conn.url == f"wss://localhost:{port}/"
    assert conn.server is not None and conn.server.endswith(f":{port}")
    assert (conn.request, conn.response, conn.messages, conn.frames) == (None, None, (), None)
    assert conn.can_show == {Fact.ENDPOINTS, Fact.TRANSPORT_END}
    assert conn.end == "fin"
    # Every rule that needs what encryption hides says so, and how to get the keys.
    mine = [n for n in analysis.not_evaluable if n.connection == conn.id]
    assert mine and len(mine) == len({n.rule for n in mine})
    for n in mine:
        assert n.reason.startswith("cannot be evaluated: encrypted")
        assert all(a in n.advice for a in ADVICE)
    assert any("not decrypted" in note and "SSLKEYLOGFILE" in note for note in capture.notes)
    # The reports show the TLS facts and why it was not decrypted.
    md = render(analysis, "md")
    assert md.startswith(
        f"# No problem found in what could be checked: {pcap(name)} (pcap) holds 1 TLS "
        "connection (1 not decrypted), so only endpoints and how TCP ended were evaluated."
    )
    assert "| TLS | TLS 1." in md and "not decrypted" in md and "SNI localhost" in md
    html = render(analysis, "html")
    assert 'id="c0-tls"' in html and "<strong>not decrypted</strong>" in html
    doc = json.loads(render(analysis, "json"))
    assert doc["connections"][0]["tls"]["decrypted"] is False
    assert doc["connections"][0]["tls"]["sni"] == "localhost"


@needs_tshark
def test_third_party_tls_streams_are_listed_with_tsharks_sni() -> None:
    """nDPI's 1kxun capture: many HTTPS connections, no keys. Each TLS connection whose
    ClientHello is in the capture is listed on its tcp.stream with tshark's SNI."""
    path = TLS / "corpus" / "nDPI-1kxun-tls-streams.pcap"
    capture = read_packet_capture(path)
    theirs = {
        int(stream): sni
        for stream, sni in tshark(
            path,
            None,
            "tls.handshake.type == 1",
            "tcp.stream",
            "tls.handshake.extensions_server_name",
        )
    }
    ours = {c.stream: c for c in capture.connections if c.tls is not None}
    assert theirs and set(theirs) <= set(ours)
    for stream, sni in theirs.items():
        tls = ours[stream].tls
        assert tls is not None and (tls.sni or "") == sni and not tls.decrypted
    # They negotiated TLS_RSA_WITH_AES_128_CBC_SHA: a key log would not help, and the
    # report says so rather than asking for one.
    analysis = analyze([path])
    for conn in analysis.captures[0].connections:
        assert conn.tls is not None and conn.tls.problem is not None
        advice = {n.advice for n in analysis.not_evaluable if n.connection == conn.id}
        (only_advice,) = advice
        if "not supported for decryption" in conn.tls.problem:
            assert conn.tls.cipher_suite == "TLS_RSA_WITH_AES_128_CBC_SHA"
            assert only_advice.startswith("A key log would not help here")
        else:  # two connections already open when the capture started
            assert "handshake is not in the capture" in conn.tls.problem
            assert only_advice.startswith("Start the capture before the connection opens")


def test_alpn_h2_is_named_http2_not_misparsed() -> None:
    name = "py-tls13-h2alpn"
    analysis = run(pcap(name), keys(name))
    conn = only(analysis.captures[0])
    assert conn.tls is not None and conn.tls.alpn_selected == "h2"
    assert conn.tls.application == "HTTP/2" and conn.http_version == "2"
    assert conn.request is None and conn.messages == ()
    assert "tls.http2" in {a.code for a in conn.anomalies}
    mine = [n for n in analysis.not_evaluable if n.connection == conn.id]
    assert mine and all("HTTP/2" in n.reason and "not analysed yet" in n.reason for n in mine)
    assert any("HTTP/2" in note for note in analysis.captures[0].notes)
    assert "WebSocket over HTTP/2 is not analysed yet" in render(analysis, "md")


# Key logs that do not fit ---------------------------------------------------------------


def test_key_log_of_another_session_is_said_plainly() -> None:
    capture = read_packet_capture(pcap("py-tls12-chacha20"), keylog=keys("py-tls13-chacha20"))
    conn = only(capture)
    assert conn.tls is not None and not conn.tls.decrypted
    assert conn.tls.problem is not None and conn.tls.problem.startswith("no key for client random")
    assert "tls.no_key" in {a.code for a in conn.anomalies}
    assert any(
        "matches none of the 1 TLS connections" in n and "another session" in n
        for n in capture.notes
    )


@pytest.mark.skipif(shutil.which("mergecap") is None, reason="mergecap not installed")
def test_missing_key_for_one_connection_among_several(tmp_path: Path) -> None:
    merged = tmp_path / "two.pcap"
    subprocess.run(
        ["mergecap", "-F", "pcap", "-w", str(merged)]
        + [str(pcap("py-tls12-chacha20")), str(pcap("node-tls13-aes128gcm"))],
        check=True,
    )
    capture = read_packet_capture(merged, keylog=keys("node-tls13-aes128gcm"))
    by_decrypted = {c.tls.decrypted: c for c in capture.connections if c.tls is not None}
    assert len(capture.connections) == 2 and set(by_decrypted) == {True, False}
    assert [(m.side, m.size) for m in by_decrypted[True].messages] == EXCHANGE
    missing = by_decrypted[False]
    assert (
        f"The key log has no key for 1 of the 2 TLS connections (tcp.stream {missing.stream})."
        in capture.notes
    )


def test_key_log_with_malformed_lines_is_used_and_reported(tmp_path: Path) -> None:
    name = "node-tls12-aes128gcm"
    log = tmp_path / "keys.txt"
    log.write_text("CLIENT_RANDOM zz\nnot a key log line at all\n" + keys(name).read_text())
    capture = read_packet_capture(pcap(name), keylog=log)
    assert only(capture).tls is not None and only(capture).messages
    (note,) = [n for n in capture.notes if "key log lines could not be used" in n]
    assert note.startswith("2 TLS key log lines") and "line 1:" in note and "line 2:" in note


@pytest.mark.parametrize("content", [None, b"", b"hello\n"])
def test_unusable_key_log_is_one_line_and_exit_2(tmp_path: Path, content: bytes | None) -> None:
    log = tmp_path / "keys.txt"
    if content is not None:
        log.write_bytes(content)
    with pytest.raises(KeyLogError):
        read_packet_capture(pcap("py-tls13-aes128gcm"), keylog=log)
    result = CliRunner().invoke(
        main, ["analyze", str(pcap("py-tls13-aes128gcm")), "--keylog", str(log), "-o", "-"]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(log) in lines[0] and "key log" in lines[0]


# Embedded secrets -----------------------------------------------------------------------


def test_pcapng_with_decryption_secrets_block_decrypts_and_warns() -> None:
    analysis = run(TLS / "node-tls13-chacha20-dsb.pcapng")
    (capture,) = analysis.captures
    assert capture.secrets_embedded
    conn = only(capture)
    assert conn.tls is not None and conn.tls.decrypted
    assert conn.tls.cipher_suite == "TLS_CHACHA20_POLY1305_SHA256"
    assert [(m.side, m.size) for m in conn.messages] == EXCHANGE
    warning = "this capture embeds TLS keys (a pcapng Decryption Secrets Block): sharing it"
    doc = json.loads(render(analysis, "json"))
    assert doc["captures"][0]["secrets_embedded"] is True
    assert doc["captures"][0]["warnings"][0].startswith(warning)
    md = render(analysis, "md")
    assert f"> **Warning:** {TLS / 'node-tls13-chacha20-dsb.pcapng'}: {warning}" in md
    html = render(analysis, "html")
    assert '<p class="warning" role="alert"><strong>Warning:</strong>' in html
    assert warning in html
    # A capture without a DSB carries no warning.
    plain = json.loads(render(run(pcap("node-tls13-chacha20")), "json"))
    assert plain["captures"][0]["warnings"] == []
    assert "Warning:" not in render(run(pcap("node-tls13-chacha20")), "md")


def test_dsb_keys_merge_with_a_key_log_file() -> None:
    """--keylog for another session beside a pcapng's own DSB: both are used."""
    path = TLS / "node-tls13-chacha20-dsb.pcapng"
    capture = read_packet_capture(path, keylog=keys("py-tls12-chacha20"))
    conn = only(capture)
    assert conn.tls is not None and conn.tls.decrypted
    assert [(m.side, m.size) for m in conn.messages] == EXCHANGE
    assert capture.secrets_embedded and capture.notes == ()


def test_corrupted_record_is_a_hole_for_the_parser_not_garbage(tmp_path: Path) -> None:
    """One flipped byte in the last TLS record of the client's 20 000-byte message: that
    record fails authentication. The parser is told its plaintext is missing (a gap inside
    the frame's payload), never fed what follows as if it were contiguous (before this was
    wired, the rest of the stream misparsed into dozens of bogus frame anomalies)."""
    name = "node-tls12-chacha20"
    data = bytearray(pcap(name).read_bytes())
    packets = []  # (offset of the packet's data, its length): classic pcap, little-endian
    pos = 24
    while pos < len(data):
        incl = int.from_bytes(data[pos + 8 : pos + 12], "little")
        packets.append((pos + 16, incl))
        pos += 16 + incl
    start, length = max(packets, key=lambda p: p[1])  # the client's 20 000-byte message
    data[start + length - 1000] ^= 0x40
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(bytes(data))
    conn = only(read_packet_capture(damaged, keylog=keys(name)))
    gap, failed = conn.anomalies
    assert (gap.code, failed.code) == ("stream.gap", "tls.decrypt_failed")
    assert "inside a frame's payload" in gap.detail
    assert gap.location is not None and failed.location is not None
    assert gap.location.direction == failed.location.direction == "client"
    assert gap.location.packet == failed.location.packet == packets.index((start, length)) + 1
    # The frames around the hole are intact: every message, and the close handshake.
    assert [(m.side, m.size) for m in conn.messages] == EXCHANGE
    assert conn.close is not None and conn.close.echoed and conn.end == "close-handshake"
