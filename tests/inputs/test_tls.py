"""TLS decryption (analyzer.inputs.tls) on real wss:// captures made on loopback.

The captures in tests/data/tls/ were made by tests/data/tls/make/wss_capture.py (Python
websockets and Node ws, each TLS 1.2 and 1.3 suite we support); every decryption is
cross-checked against tshark's own (``-o tls.keylog_file``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MAKE = Path(__file__).resolve().parents[1] / "data" / "tls" / "make"
if str(MAKE) not in sys.path:
    sys.path.insert(0, str(MAKE))

import tcp_payloads  # noqa: E402
import tlstest  # noqa: E402
import wss_capture  # noqa: E402

from analyzer.inputs.tls import (  # noqa: E402
    KeyLog,
    TlsFlow,
    describe_key_coverage,
    looks_like_tls,
)

TLS = tlstest.TLS_DIR
WSS_SESSIONS = [s for s in wss_capture.SESSIONS if s.impl in ("python", "node") and s.alpn is None]
EXPECTED_SUITE = {
    "tls12-aes128gcm": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "tls12-aes256gcm": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "tls12-chacha20": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "tls13-aes128gcm": "TLS_AES_128_GCM_SHA256",
    "tls13-aes256gcm": "TLS_AES_256_GCM_SHA384",
    "tls13-chacha20": "TLS_CHACHA20_POLY1305_SHA256",
}
needs_tshark = pytest.mark.skipif(not tlstest.have("tshark"), reason="tshark not installed")


def files(name: str) -> tuple[Path, Path]:
    return TLS / f"{name}.pcap", TLS / f"{name}.keys"


def only_flow(name: str, keylog: KeyLog | None = None, **kw: bool) -> tlstest.Decrypted:
    pcap, keys = files(name)
    flows = tlstest.decrypt_file(pcap, KeyLog.from_file(keys) if keylog is None else keylog, **kw)
    assert len(flows) == 1
    return flows[0]


@needs_tshark
@pytest.mark.parametrize("session", WSS_SESSIONS, ids=lambda s: s.name)
def test_decrypts_like_tshark(session: wss_capture.Session) -> None:
    pcap, keys = files(session.name)
    result = only_flow(session.name)
    client, server = result.side(True), result.side(False)
    assert client.startswith(b"GET /tls-test HTTP/1.1\r\n")
    assert server.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    # Every byte tshark decrypts, and nothing else.
    assert {client, server} == tlstest.tshark_follow(pcap, keys)
    # Four echoed messages of 5 + 300 + 1000 + 20 000 bytes, plus headers and close frames.
    assert len(client) > 21_305 and len(server) > 21_305
    info = result.flow.info
    assert info.version == f"TLS 1.{session.tls[-1]}"
    assert info.cipher_suite == EXPECTED_SUITE[session.name.split("-", 1)[1]]
    assert info.sni == "localhost"
    assert info.decrypted and info.problem is None
    assert result.flow.anomalies == ()


@pytest.mark.parametrize("session", WSS_SESSIONS[:1] + WSS_SESSIONS[4:5], ids=lambda s: s.name)
def test_locations_name_the_packets(session: wss_capture.Session) -> None:
    """Each piece of plaintext names the packet that completed its record, and its time."""
    result = only_flow(session.name)
    by_packet = {e.packet: e for e in result.tcp.events if e.payload}
    last = 0
    for from_orig, _plaintext, packet, time in result.pieces:
        event = by_packet[packet]
        assert event.from_orig == from_orig
        assert event.time == time
        assert packet >= last
        last = packet
    # The 20 000-byte message needs two records at least: one piece per record.
    assert len(result.pieces) >= 10


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_plaintext_however_the_bytes_are_chunked(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["py-tls12-aes256gcm", "node-tls13-chacha20"]))
    pcap, keys = files(name)
    tcp = tcp_payloads.read(pcap).flows[0]
    whole = tlstest.feed(tcp, KeyLog.from_file(keys))
    events: list[tcp_payloads.Event] = []
    for e in tcp.events:
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(e.payload) - 1)), max_size=4)))
        start = 0
        for cut in [*cuts, len(e.payload)]:
            if cut > start:
                events.append(
                    tcp_payloads.Event(e.from_orig, e.payload[start:cut], e.packet, e.time)
                )
                start = cut
    split = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    assert split.side(True) == whole.side(True)
    assert split.side(False) == whole.side(False)
    assert split.flow.anomalies == ()


def test_one_byte_at_a_time() -> None:
    pcap, keys = files("py-tls13-aes128gcm")
    tcp = tcp_payloads.read(pcap).flows[0]
    whole = tlstest.feed(tcp, KeyLog.from_file(keys))
    events = [
        tcp_payloads.Event(e.from_orig, e.payload[i : i + 1], e.packet, e.time)
        for e in tcp.events
        for i in range(len(e.payload))
    ]
    split = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    assert split.side(True) == whole.side(True) and split.side(False) == whole.side(False)


@needs_tshark
def test_key_update_is_followed() -> None:
    """OpenSSL s_client sends KeyUpdate (update_requested: the server updates too)."""
    pcap, keys = files("openssl-tls13-keyupdate")
    result = only_flow("openssl-tls13-keyupdate")
    assert result.side(True) == b"before the key update\nafter the key update\n"
    assert result.flow.anomalies == ()  # the close_notify after both updates authenticates
    assert result.side(True) in tlstest.tshark_follow(pcap, keys)


def test_tls13_with_traffic_secrets_only() -> None:
    """A key log without the handshake secrets still decrypts the application data."""
    _pcap, keys = files("py-tls13-chacha20")
    lines = [line for line in keys.read_text().splitlines() if "HANDSHAKE" not in line]
    partial = KeyLog.from_bytes("\n".join(lines).encode(), source="partial")
    full = only_flow("py-tls13-chacha20")
    result = only_flow("py-tls13-chacha20", partial)
    assert result.side(True) == full.side(True) and result.side(False) == full.side(False)
    assert result.flow.anomalies == ()


# Without keys, or with the wrong ones ----------------------------------------------------


def test_without_key_log_the_handshake_is_still_described() -> None:
    pcap, _keys = files("py-tls13-h2alpn")
    (result,) = tlstest.decrypt_file(pcap, None)
    info = result.flow.info
    assert (info.version, info.sni, info.alpn, info.alpn_selected) == (
        "TLS 1.3",
        "localhost",
        ("h2",),
        None,  # in TLS 1.3 the selected ALPN is inside the encrypted EncryptedExtensions
    )
    assert info.cipher_suite == "TLS_AES_256_GCM_SHA384"
    assert not info.decrypted and result.pieces == []
    assert info.problem is not None
    for advice in ("SSLKEYLOGFILE", "--tls-keylog", "keylog_filename", "--keylog", "editcap"):
        assert advice in info.problem


def test_key_log_from_another_session() -> None:
    pcap, _ = files("py-tls12-chacha20")
    other = KeyLog.from_file(files("py-tls13-chacha20")[1])
    (result,) = tlstest.decrypt_file(pcap, other)
    client_random = result.flow.client_random
    assert client_random is not None
    assert result.flow.info.problem == (
        f"no key for client random {client_random.hex()} in the key log "
        "(1 other TLS sessions in it)"
    )
    assert [a.code for a in result.flow.anomalies] == ["tls.no_key"]
    assert result.pieces == []
    coverage = describe_key_coverage(other, [result.flow])
    assert coverage is not None and "matches none of the 1 TLS connections" in coverage


def test_key_log_that_does_not_match() -> None:
    """Right client random, wrong secret: said plainly, not a flood of anomalies."""
    _pcap, keys = files("py-tls12-aes128gcm")
    (line,) = [x for x in keys.read_text().splitlines() if not x.startswith("#")]
    label, client_random, _secret = line.split()
    wrong_secret = KeyLog.from_file(files("py-tls12-aes256gcm")[1])
    (theirs,) = wrong_secret.secrets.values()
    forged = f"{label} {client_random} {theirs['CLIENT_RANDOM'].hex()}\n".encode()
    result = only_flow("py-tls12-aes128gcm", KeyLog.from_bytes(forged, "forged"))
    problem = result.flow.info.problem
    assert problem is not None and problem.startswith("key log does not match")
    codes = [a.code for a in result.flow.anomalies]
    assert codes == ["tls.key_mismatch", "tls.key_mismatch"]  # once per direction
    assert result.pieces == []


@pytest.mark.skipif(not tlstest.have("mergecap"), reason="mergecap not installed")
def test_missing_key_for_one_connection_among_several(tmp_path: Path) -> None:
    merged = tmp_path / "two.pcap"
    subprocess.run(
        [
            "mergecap",
            "-F",
            "pcap",
            "-w",
            str(merged),
            str(files("py-tls12-chacha20")[0]),
            str(files("node-tls13-aes128gcm")[0]),
        ],
        check=True,
    )
    keylog = KeyLog.from_file(files("node-tls13-aes128gcm")[1])
    results = tlstest.decrypt_file(merged, keylog)
    assert len(results) == 2
    decrypted = [r for r in results if r.flow.info.decrypted]
    missing = [r for r in results if not r.flow.info.decrypted]
    assert len(decrypted) == 1 and len(missing) == 1
    assert decrypted[0].side(True).startswith(b"GET /tls-test")
    assert [a.code for a in missing[0].flow.anomalies] == ["tls.no_key"]
    assert describe_key_coverage(keylog, [r.flow for r in results]) == (
        f"the key log has no key for 1 of the 2 TLS connections "
        f"(tcp.stream {missing[0].flow.stream})"
    )


# Damaged captures --------------------------------------------------------------------------


def test_corrupted_ciphertext_is_an_anomaly_and_the_rest_decrypts() -> None:
    pcap, keys = files("node-tls12-chacha20")
    tcp = tcp_payloads.read(pcap).flows[0]
    good = tlstest.feed(tcp, KeyLog.from_file(keys))
    # Flip one byte in the middle of the largest server chunk (inside the 20 000-byte echo).
    target = max((e for e in tcp.events if not e.from_orig), key=lambda e: len(e.payload))
    events = []
    for e in tcp.events:
        if e is target:
            middle = len(e.payload) // 2
            damaged = (
                e.payload[:middle] + bytes([e.payload[middle] ^ 0x40]) + e.payload[middle + 1 :]
            )
            e = tcp_payloads.Event(e.from_orig, damaged, e.packet, e.time)
        events.append(e)
    bad = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    (anomaly,) = bad.flow.anomalies
    assert anomaly.code == "tls.decrypt_failed"
    assert anomaly.location is not None
    assert (anomaly.location.packet, anomaly.location.direction) == (target.packet, "server")
    # Exactly one record's plaintext is missing; every later record still decrypts.
    lost = [p for p in good.pieces if p not in bad.pieces]
    assert len(lost) == 1 and lost[0][2] == target.packet
    assert [p for p in good.pieces if p != lost[0]] == bad.pieces
    assert bad.side(False).endswith(good.side(False)[-50:])


def test_capture_ending_inside_a_record() -> None:
    pcap, keys = files("py-tls13-aes256gcm")
    tcp = tcp_payloads.read(pcap).flows[0]
    target = max((e for e in tcp.events if not e.from_orig), key=lambda e: len(e.payload))
    index = tcp.events.index(target)
    cut = tcp_payloads.Event(target.from_orig, target.payload[:-100], target.packet, target.time)
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=[*tcp.events[:index], cut])
    (anomaly,) = result.flow.anomalies
    assert anomaly.code == "tls.truncated_record"
    assert "the capture ends inside a TLS record" in anomaly.detail
    assert anomaly.location is not None and anomaly.location.direction == "server"


def test_gap_inside_a_record() -> None:
    """A hole inside a record: that record is lost, decryption resumes at the next one."""
    pcap, keys = files("py-tls12-aes128gcm")
    tcp = tcp_payloads.read(pcap).flows[0]
    target = max((e for e in tcp.events if e.from_orig), key=lambda e: len(e.payload))
    index = tcp.events.index(target)
    head = tcp_payloads.Event(True, target.payload[:1000], target.packet, target.time)
    hole = tcp_payloads.Event(True, b"", target.packet, target.time, gap=500)
    tail = tcp_payloads.Event(True, target.payload[1500:], target.packet, target.time)
    events = [*tcp.events[:index], head, hole, tail, *tcp.events[index + 1 :]]
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    truncated, gap = result.flow.anomalies
    assert truncated.code == "tls.truncated_record" and gap.code == "tls.gap"
    assert "1 TLS records lost; decryption resumed" in gap.detail
    whole = tlstest.feed(tcp, KeyLog.from_file(keys))
    lost = [p for p in whole.pieces if p not in result.pieces]
    assert len(lost) == 1 and lost[0][0] is True and lost[0][2] == target.packet
    assert [p for p in whole.pieces if p != lost[0]] == result.pieces


def test_gap_of_whole_segments_skips_their_records() -> None:
    """Whole TCP segments missing (several records): the sequence number is found again."""
    pcap, keys = files("node-tls13-chacha20")
    tcp = tcp_payloads.read(pcap).flows[0]
    whole = tlstest.feed(tcp, KeyLog.from_file(keys))
    client = [i for i, e in enumerate(tcp.events) if e.from_orig and e.payload]
    dropped = client[3:5]  # after the upgrade request: two of the client's message segments
    events = []
    for i, e in enumerate(tcp.events):
        if i in dropped:
            if i == dropped[0]:
                size = sum(len(tcp.events[j].payload) for j in dropped)
                events.append(tcp_payloads.Event(True, b"", e.packet, e.time, gap=size))
            continue
        events.append(e)
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    lost_packets = {tcp.events[j].packet for j in dropped}
    expected = [p for p in whole.pieces if p[2] not in lost_packets]
    assert result.pieces == expected
    (gap,) = result.flow.anomalies
    records = sum(1 for p in whole.pieces if p[2] in lost_packets)
    assert f"{records} TLS records lost" in gap.detail


def test_gap_before_the_keys_work_stops_the_direction() -> None:
    pcap, keys = files("py-tls13-aes128gcm")
    tcp = tcp_payloads.read(pcap).flows[0]
    first_client = next(e for e in tcp.events if e.from_orig)
    hole = tcp_payloads.Event(True, b"", first_client.packet, first_client.time, gap=100)
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=[hole, *tcp.events[1:]])
    assert result.side(True) == b""
    assert [a.code for a in result.flow.anomalies][:1] == ["tls.gap"]
    assert "not decrypted further" in result.flow.anomalies[0].detail


def test_capture_starting_mid_connection() -> None:
    pcap, keys = files("node-tls13-aes256gcm")
    tcp = tcp_payloads.read(pcap).flows[0]
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=tcp.events[6:])
    assert not result.flow.info.decrypted and result.pieces == []
    problem = result.flow.info.problem
    assert problem is not None and "handshake is not in the capture" in problem


def test_plain_http_is_not_read_as_tls() -> None:
    flow = TlsFlow(None, "x.pcap", 3)
    assert flow.data(True, b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0.0) == []
    (anomaly,) = flow.anomalies
    assert anomaly.code == "tls.bad_record"
    assert flow.data(True, b"more bytes", 2, 0.1) == []  # stopped, no second anomaly
    assert len(flow.anomalies) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=12))
def test_garbage_after_a_real_handshake_never_raises(chunks: list[tuple[bool, bytes]]) -> None:
    pcap, keys = files("py-tls12-chacha20")
    tcp = tcp_payloads.read(pcap).flows[0]
    flow = TlsFlow(KeyLog.from_file(keys), str(pcap), 0)
    for e in tcp.events[:3]:
        flow.data(e.from_orig, e.payload, e.packet, e.time)
    for i, (from_orig, chunk) in enumerate(chunks):
        flow.data(from_orig, chunk, 100 + i, 1.0)
    assert all(a.code.startswith("tls.") for a in flow.anomalies)
    _ = flow.info


# HTTP/2 and detection ----------------------------------------------------------------------


def test_alpn_h2_is_named_and_not_passed_on() -> None:
    result = only_flow("py-tls13-h2alpn")
    info = result.flow.info
    assert info.alpn_selected == "h2" and info.decrypted
    assert info.application == "HTTP/2"
    assert result.flow.http2
    assert result.pieces == []
    (anomaly,) = result.flow.anomalies
    assert anomaly.code == "tls.http2" and "not analysed" in anomaly.detail
    # Asked for explicitly, the plaintext is there (the lead may analyse RFC 8441 later).
    passed = only_flow("py-tls13-h2alpn", pass_http2=True)
    assert passed.side(True).startswith(b"GET /tls-test")


def test_looks_like_tls() -> None:
    for s in wss_capture.SESSIONS:
        tcp = tcp_payloads.read(files(s.name)[0]).flows[0]
        first = {e.from_orig: e.payload for e in reversed(tcp.events) if e.payload}
        assert looks_like_tls(first[True][:16]) and looks_like_tls(first[False][:16])
        # Mid-connection: an application data record header is recognised too.
        late = [e.payload for e in tcp.events if e.payload and e.payload[0] == 23]
        assert late and looks_like_tls(late[-1][:5])
    for not_tls in (b"GET /chat HTTP/1.1\r\n", b"HTTP/1.1 101 Switching", b"\x81\x05hello", b""):
        assert not looks_like_tls(not_tls)
    assert not looks_like_tls(b"\x16\x03\x01\xff\xff")  # longer than any TLS record


# Third-party captures (public corpus, no keys): the handshake facts tshark shows -----------

CORPUS = TLS / "corpus"


def tshark_hellos(pcap: Path) -> dict[int, dict[str, str]]:
    """Per client port: SNI and offered ALPN (ClientHello), suite and version (ServerHello)."""
    fields = [
        "tcp.srcport",
        "tcp.dstport",
        "tls.handshake.type",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "tls.handshake.ciphersuite",
        "tls.handshake.extensions.supported_version",
    ]
    cmd = [
        "tshark",
        "-n",
        "-r",
        str(pcap),
        "-Y",
        "tls.handshake.type==1 || tls.handshake.type==2",
        "-T",
        "fields",
        "-E",
        "aggregator=,",
    ]
    for f in fields:
        cmd += ["-e", f]
    out: dict[int, dict[str, str]] = {}
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        sport, dport, htype, sni, alpn, suite, version = (line.split("\t") + [""] * 7)[:7]
        if htype.startswith("1"):
            out.setdefault(int(sport), {}).update(sni=sni, alpn=alpn)
        else:
            out.setdefault(int(dport), {}).update(suite=suite, version=version)
    return out


@needs_tshark
@pytest.mark.parametrize(
    "name", ["nDPI-1kxun-tls-streams.pcap", "nDPI-tls_heur__vmess-websocket.pcapng"]
)
def test_handshake_facts_match_tshark_on_third_party_captures(name: str) -> None:
    pcap = CORPUS / name
    expected = tshark_hellos(pcap)
    seen = 0
    for tcp in tcp_payloads.read(pcap).flows:
        first = next((e.payload for e in tcp.events if e.payload), b"")
        if not looks_like_tls(first[:16]):
            continue
        result = tlstest.feed(tcp, None, str(pcap))
        flow = result.flow
        assert result.pieces == [] and not flow.info.decrypted and flow.info.problem
        if flow.client_random is None:
            assert "handshake is not in the capture" in flow.info.problem
            continue
        seen += 1
        want = expected[tcp.orig[1]]
        info = flow.info
        assert (info.sni or "") == want["sni"]
        assert ",".join(info.alpn) == want["alpn"]
        assert flow.suite == int(want["suite"], 16)
        version = int(want["version"], 16) if want["version"] else 0x0303
        assert flow.version == version
        if flow.suite == 0x002F:
            assert [a.code for a in flow.anomalies] == ["tls.unsupported_cipher"]
            assert "TLS_RSA_WITH_AES_128_CBC_SHA is not supported" in info.problem
        else:
            assert flow.anomalies == () and "SSLKEYLOGFILE" in info.problem
    assert seen >= 1


@needs_tshark
def test_hello_retry_request_and_0rtt_early_data() -> None:
    """OpenSSL: a HelloRetryRequest, then a resumed session sending 0-RTT early data."""
    pcap, keys = files("openssl-tls13-hrr-0rtt")
    first, second = tlstest.decrypt_file(pcap, KeyLog.from_file(keys))
    assert first.side(True) == b"first connection\n"
    assert second.side(True) == b"early data line\nafter the handshake\n"
    assert second.flow.early_data_decrypted
    for result in (first, second):
        assert result.flow.anomalies == ()
        assert result.side(True) in tlstest.tshark_follow(pcap, keys, result.flow.stream)
    # Without the early secret the 0-RTT data is reported and the rest still decrypts.
    lines = [x for x in keys.read_text().splitlines() if "EARLY_TRAFFIC" not in x]
    _, partial = tlstest.decrypt_file(pcap, KeyLog.from_bytes("\n".join(lines).encode(), "k"))
    assert partial.side(True) == b"after the handshake\n"
    (anomaly,) = partial.flow.anomalies
    assert anomaly.code == "tls.early_data"
    assert "no CLIENT_EARLY_TRAFFIC_SECRET" in anomaly.detail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_real_captures_never_raise(data: st.DataObject) -> None:
    """Flipped bytes, dropped segments and gaps anywhere in a real session: anomalies only."""
    name = data.draw(
        st.sampled_from(["py-tls12-chacha20", "node-tls13-aes256gcm", "openssl-tls13-hrr-0rtt"])
    )
    pcap, keys = files(name)
    tcp = tcp_payloads.read(pcap).flows[0]
    events = []
    for e in tcp.events:
        action = data.draw(st.sampled_from(["keep"] * 6 + ["flip", "drop", "gap", "cut"]))
        payload = e.payload
        if action == "flip" and payload:
            i = data.draw(st.integers(0, len(payload) - 1))
            payload = payload[:i] + bytes([payload[i] ^ 0xFF]) + payload[i + 1 :]
        elif action == "drop":
            continue
        elif action == "gap":
            events.append(tcp_payloads.Event(e.from_orig, b"", e.packet, e.time, gap=len(payload)))
            continue
        elif action == "cut" and payload:
            payload = payload[: data.draw(st.integers(0, len(payload)))]
        events.append(tcp_payloads.Event(e.from_orig, payload, e.packet, e.time))
    result = tlstest.feed(tcp, KeyLog.from_file(keys), events=events)
    assert all(a.code.startswith("tls.") for a in result.flow.anomalies)
    _ = result.flow.info
