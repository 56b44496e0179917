"""The packet reader: file formats, link types, IP versions, damaged files.

Each variant is derived in the test from a real capture of the corpus (zeek
message-too-big-status.pcap: Python websockets 12.0, a ping, a 1009 close and its answer),
by editcap where it can make the variant, else by rewriting the records' link or IP layer
(documented in each helper); the variant must give the same connections and frames as the
original. Anomalies real software does not produce (fragments, cut files) are crafted.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.inputs.pcap import PacketReader, key_endpoints, reverse_key
from analyzer.session.build_pcap import read_packet_capture
from analyzer.session.model import Capture

DATA = Path(__file__).resolve().parents[1] / "data"
ORIGINAL = DATA / "pcap" / "zeek" / "message-too-big-status.pcap"
SLL_ORIGINAL = DATA / "pcap" / "evsetool" / "cap.pcapng"

Record = tuple[float, bytes]  # (time, link-layer frame)


def read_records(path: Path) -> tuple[int, list[Record]]:
    """Link type and records of a little-endian microsecond pcap (the corpus original)."""
    raw = path.read_bytes()
    assert raw[:4] == b"\xd4\xc3\xb2\xa1"
    linktype = struct.unpack_from("<I", raw, 20)[0]
    out, pos = [], 24
    while pos < len(raw):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", raw, pos)
        out.append((sec + usec / 1e6, raw[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return linktype, out


def write_pcap(
    path: Path,
    records: list[Record],
    linktype: int,
    *,
    endian: str = "<",
    nano: bool = False,
    snaplen: dict[int, int] | None = None,
) -> Path:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    unit = 1_000_000_000 if nano else 1_000_000
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, (t, frame) in enumerate(records):
        sec = int(t)
        frac = round((t - sec) * unit)
        cut = (snaplen or {}).get(i + 1, len(frame))
        out.append(struct.pack(endian + "IIII", sec, frac, cut, len(frame)) + frame[:cut])
    path.write_bytes(b"".join(out))
    return path


def summary(cap: Capture) -> list[tuple[object, ...]]:
    return [
        (
            c.stream,
            c.client,
            c.server,
            c.url,
            c.status,
            c.end,
            tuple((f.packet, f.side, f.opcode, f.length, f.close_code) for f in c.frames or ()),
        )
        for c in cap.connections
    ]


@pytest.fixture(scope="module")
def original() -> Capture:
    return read_packet_capture(ORIGINAL)


def test_original_is_what_the_variants_are_compared_with(original: Capture) -> None:
    (conn,) = original.connections
    assert conn.client == "127.0.0.1:60956" and conn.server == "127.0.0.1:8080"
    assert [(f.opcode, f.close_code) for f in conn.frames or ()] == [
        (9, None),
        (8, 1009),
        (8, 1000),
    ]
    assert original.packets == 14 and original.format == "pcap"


# -- file formats ---------------------------------------------------------------------------


def _editcap(tmp_path: Path, src: Path, *args: str, name: str) -> Path:
    out = tmp_path / name
    subprocess.run(["editcap", *args, str(src), str(out)], check=True, capture_output=True)
    return out


needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None, reason="needs editcap")


@needs_editcap
def test_pcapng_written_by_editcap(tmp_path: Path, original: Capture) -> None:
    ng = _editcap(tmp_path, ORIGINAL, "-F", "pcapng", name="x.pcapng")
    cap = read_packet_capture(ng)
    assert cap.format == "pcapng"
    assert summary(cap) == summary(original)
    assert cap.creator is not None and cap.creator.startswith("Editcap")
    assert cap.connections[0].start == original.connections[0].start


@needs_editcap
def test_nanosecond_pcap_written_by_editcap(tmp_path: Path, original: Capture) -> None:
    ns = _editcap(tmp_path, ORIGINAL, "-F", "nsecpcap", name="x.pcap")
    assert ns.read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"
    cap = read_packet_capture(ns)
    assert summary(cap) == summary(original)
    for a, b in zip(
        cap.connections[0].frames or (), original.connections[0].frames or (), strict=True
    ):
        assert a.time == pytest.approx(b.time, abs=1e-6)


def test_big_endian_pcap(tmp_path: Path, original: Capture) -> None:
    # Files written on big-endian hosts (SPARC, PowerPC) store every header field that way.
    linktype, records = read_records(ORIGINAL)
    for nano in (False, True):
        path = write_pcap(tmp_path / f"be{nano}.pcap", records, linktype, endian=">", nano=nano)
        cap = read_packet_capture(path)
        assert summary(cap) == summary(original)
        times = [f.time for f in cap.connections[0].frames or ()]
        assert times == pytest.approx([f.time for f in original.connections[0].frames or ()])


def test_gzip_compressed(tmp_path: Path, original: Capture) -> None:
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(ORIGINAL.read_bytes()))
    cap = read_packet_capture(gz)
    assert summary(cap) == summary(original)
    assert cap.connections[0].id == "x#0"


def test_gzip_cut_short_reads_what_is_there(tmp_path: Path) -> None:
    gz = tmp_path / "cut.pcap.gz"
    gz.write_bytes(gzip.compress(ORIGINAL.read_bytes())[:-200])
    cap = read_packet_capture(gz)
    assert "capture.truncated" in {a.code for a in cap.anomalies}
    assert cap.packets is not None and 0 < cap.packets < 14


# -- link types -----------------------------------------------------------------------------
# Each rewrites the original's Ethernet frames: the IP packet is kept byte for byte, the
# 14-byte Ethernet header is replaced by the link type's own header.


def _ip(frame: bytes) -> bytes:
    assert frame[12:14] == b"\x08\x00"
    return frame[14:]


def _sll(frame: bytes) -> bytes:
    # packet type 0 (to us), ARPHRD_ETHER, 6-byte address, protocol IPv4
    return struct.pack("!HHH8sH", 0, 1, 6, frame[6:12], 0x0800) + _ip(frame)


def _sll2(frame: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, frame[6:12]) + _ip(frame)


def _null_le(frame: bytes) -> bytes:
    return struct.pack("<I", 2) + _ip(frame)  # AF_INET, little-endian host (macOS, x86)


def _null_be(frame: bytes) -> bytes:
    return struct.pack(">I", 2) + _ip(frame)  # AF_INET, big-endian host


def _loop(frame: bytes) -> bytes:
    return struct.pack(">I", 2) + _ip(frame)  # OpenBSD: always network order


def _vlan(frame: bytes) -> bytes:
    return frame[:12] + b"\x81\x00\x00\x64" + frame[12:]  # 802.1Q, VLAN 100


def _qinq(frame: bytes) -> bytes:
    # 802.1ad outer tag (S-VLAN 7), then 802.1Q inner tag (C-VLAN 100)
    return frame[:12] + b"\x88\xa8\x00\x07\x81\x00\x00\x64" + frame[12:]


LINK_VARIANTS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "linux-sll": (113, _sll),
    "linux-sll2": (276, _sll2),
    "raw-101": (101, _ip),
    "raw-ipv4-228": (228, _ip),
    "null-le": (0, _null_le),
    "null-be": (0, _null_be),
    "loop-108": (108, _loop),
    "vlan": (1, _vlan),
    "qinq": (1, _qinq),
}


@pytest.mark.parametrize("name", sorted(LINK_VARIANTS))
def test_link_types(tmp_path: Path, original: Capture, name: str) -> None:
    linktype, make = LINK_VARIANTS[name]
    _, records = read_records(ORIGINAL)
    path = write_pcap(tmp_path / f"{name}.pcap", [(t, make(f)) for t, f in records], linktype)
    cap = read_packet_capture(path)
    assert summary(cap) == summary(original)
    assert not cap.anomalies


def test_linux_sll_from_dumpcap() -> None:
    # evsetool cap.pcapng was written by dumpcap on Linux "any": SLL, 2 connections.
    cap = read_packet_capture(SLL_ORIGINAL)
    assert cap.creator == "Dumpcap (Wireshark) 4.2.5 (Git v4.2.5 packaged as 4.2.5-1)"
    assert [c.stream for c in cap.connections] == [0, 1]


def test_unsupported_link_type_is_an_anomaly(tmp_path: Path) -> None:
    _, records = read_records(ORIGINAL)
    path = write_pcap(tmp_path / "ppp.pcap", records, 9)  # LINKTYPE_PPP: not read
    cap = read_packet_capture(path)
    assert cap.connections == ()
    assert cap.packets == 14
    assert [a.code for a in cap.anomalies] == ["capture.unsupported_linktype"]


# -- IPv6 -----------------------------------------------------------------------------------


def _to_ipv6(frame: bytes, ext: bytes = b"") -> bytes:
    """The same TCP segment in IPv6 (fd00::a and fd00::b), optionally behind extension
    headers ``ext`` (whose first Next Header byte must be filled by the caller)."""
    ip = _ip(frame)
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    src = bytes(15) + b"\x0a" if ip[12:16] == b"\x7f\x00\x00\x01" else bytes(16)
    # both ends are 127.0.0.1 in the original: tell them apart by port instead
    sport = struct.unpack("!H", tcp[:2])[0]
    a = b"\xfd" + bytes(14) + b"\x0a"
    b = b"\xfd" + bytes(14) + b"\x0b"
    s, d = (a, b) if sport != 8080 else (b, a)
    del src
    nh = 6 if not ext else 0  # 0: hop-by-hop options first
    hdr = struct.pack("!IHBB", 6 << 28, len(ext) + len(tcp), nh, 64) + s + d
    return frame[:12] + b"\x86\xdd" + hdr + ext + tcp


def test_ipv6(tmp_path: Path, original: Capture) -> None:
    _, records = read_records(ORIGINAL)
    path = write_pcap(tmp_path / "v6.pcap", [(t, _to_ipv6(f)) for t, f in records], 1)
    cap = read_packet_capture(path)
    (conn,) = cap.connections
    assert conn.client == "[fd00::a]:60956" and conn.server == "[fd00::b]:8080"
    assert summary(cap)[0][3:] == summary(original)[0][3:]


def test_raw_ipv6_link_types(tmp_path: Path, original: Capture) -> None:
    _, records = read_records(ORIGINAL)
    for linktype in (101, 229):  # LINKTYPE_RAW (version nibble), LINKTYPE_IPV6
        frames = [(t, _to_ipv6(f)[14:]) for t, f in records]
        cap = read_packet_capture(write_pcap(tmp_path / f"raw{linktype}.pcap", frames, linktype))
        assert summary(cap)[0][3:] == summary(original)[0][3:]


def test_ipv6_extension_headers_are_skipped(tmp_path: Path, original: Capture) -> None:
    # Hop-by-hop (8 bytes, next: destination options), destination options (8 bytes with a
    # PadN, next: TCP).
    ext = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([6, 0, 1, 4, 0, 0, 0, 0])
    _, records = read_records(ORIGINAL)
    path = write_pcap(tmp_path / "v6x.pcap", [(t, _to_ipv6(f, ext)) for t, f in records], 1)
    cap = read_packet_capture(path)
    assert summary(cap)[0][3:] == summary(original)[0][3:]


def test_ipv6_fragment_is_an_anomaly(tmp_path: Path) -> None:
    _, records = read_records(ORIGINAL)
    frag = bytes([6, 0, 0, 1, 0, 0, 0, 42])  # next: TCP, offset 0, M=1, id 42
    frames = [_to_ipv6(f) for _, f in records]
    f8 = frames[7]
    hdr = bytearray(f8[14:54])
    hdr[6] = 44
    hdr[4:6] = struct.pack("!H", len(f8) - 54 + 8)
    frames[7] = f8[:14] + bytes(hdr) + frag + f8[54:]
    path = write_pcap(
        tmp_path / "v6f.pcap", [(t, f) for (t, _), f in zip(records, frames, strict=True)], 1
    )
    cap = read_packet_capture(path)
    frag_anomalies = [a for a in cap.anomalies if a.code == "ip.fragment"]
    assert len(frag_anomalies) == 1 and frag_anomalies[0].location is not None
    assert frag_anomalies[0].location.packet == 8
    assert "IP fragments are not reassembled" in " ".join(cap.notes)


# -- IPv4 oddities ---------------------------------------------------------------------------


def test_ipv4_fragment_is_an_anomaly_and_skipped(tmp_path: Path) -> None:
    _, records = read_records(ORIGINAL)
    frames = [bytearray(f) for _, f in records]
    frames[7][14 + 6] |= 0x20  # More Fragments on packet 8 (the server's ping)
    path = write_pcap(
        tmp_path / "frag.pcap",
        [(t, bytes(f)) for (t, _), f in zip(records, frames, strict=True)],
        1,
    )
    cap = read_packet_capture(path)
    assert [(a.code, a.location and a.location.packet) for a in cap.anomalies] == [
        ("ip.fragment", 8)
    ]
    # The ping's bytes are missing: the server's stream has a hole there, never filled.
    conn = cap.connections[0]
    assert all(f.packet != 8 for f in conn.frames or ())


def test_ethernet_padding_is_not_payload(tmp_path: Path, original: Capture) -> None:
    # Short frames are padded to 60 bytes on the wire; the IP total length says where the
    # segment ends. Pad every frame with junk and nothing may change.
    _, records = read_records(ORIGINAL)
    path = write_pcap(tmp_path / "pad.pcap", [(t, f + b"\xee" * 18) for t, f in records], 1)
    assert summary(read_packet_capture(path)) == summary(original)


def test_snapshot_length_cut_is_a_gap(tmp_path: Path) -> None:
    _, records = read_records(ORIGINAL)
    # Packet 10 holds the client's 1009 close; keep only 60 bytes of it.
    path = write_pcap(tmp_path / "snap.pcap", records, 1, snaplen={10: 60})
    cap = read_packet_capture(path)
    conn = cap.connections[0]
    assert 1009 not in [f.close_code for f in conn.frames or ()]
    assert any("snapshot length" in n for n in cap.notes)
    assert any(a.code.endswith("gap") for a in conn.anomalies)


# -- pcapng structure ------------------------------------------------------------------------


def _opt(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    return (
        struct.pack(e + "II", btype, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)
    )


def _shb(e: str, appl: bytes | None) -> bytes:
    opts = (_opt(4, appl, e) + bytes(4)) if appl else b""
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts, e)


def _idb(e: str, linktype: int, tsresol: int | None) -> bytes:
    opts = (_opt(9, bytes([tsresol]), e) + bytes(4)) if tsresol is not None else b""
    return _block(1, struct.pack(e + "HHI", linktype, 0, 0) + opts, e)


def _epb(e: str, ifid: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(e + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return _block(6, head + data, e)


def _pb(e: str, ifid: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(e + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return _block(2, head + data, e)


def _spb(e: str, data: bytes) -> bytes:
    return _block(3, struct.pack(e + "I", len(data)) + data, e)


def test_pcapng_sections_interfaces_and_block_kinds(tmp_path: Path, original: Capture) -> None:
    """Two sections (little- then big-endian), three interfaces with their own link types
    and timestamp resolutions, EPB, obsolete PB and SPB, plus blocks to skip and keep."""
    _, records = read_records(ORIGINAL)
    keylog = b"CLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48 + b"\n"
    out = [
        _shb("<", b"ws-analyzer test writer"),
        _idb("<", 1, None),  # Ethernet, microseconds (the default)
        _idb("<", 113, 9),  # SLL, nanoseconds
        _block(0x0000000A, struct.pack("<II", 0x544C534B, len(keylog)) + keylog),  # DSB
        _block(0x0BAD0001, b"unknown block, skipped"),
        _block(4, struct.pack("<HH", 0, 0)),  # empty Name Resolution Block
    ]
    expected_times = []
    for i, (t, frame) in enumerate(records[:7]):
        if i % 2:
            out.append(_epb("<", 1, round(t * 1e9), _sll(frame)))
        else:
            out.append(_epb("<", 0, round(t * 1e6), frame))
        expected_times.append(t)
    out += [_shb(">", b"second section"), _idb(">", 1, 0x80 | 20)]  # 2^-20 s
    for t, frame in records[7:11]:
        out.append(_pb(">", 0, round(t * 2**20), frame))
    for _t, frame in records[11:]:
        out.append(_spb(">", frame))  # no timestamp in a Simple Packet Block
    path = tmp_path / "multi.pcapng"
    path.write_bytes(b"".join(out))

    cap = read_packet_capture(path)
    assert cap.format == "pcapng"
    assert cap.packets == 14
    assert cap.creator == "ws-analyzer test writer"
    assert cap.secrets_embedded
    assert summary(cap)[0][:5] == summary(original)[0][:5]
    ours = [(f.packet, f.opcode, f.close_code) for f in cap.connections[0].frames or ()]
    assert ours == [
        (f.packet, f.opcode, f.close_code) for f in original.connections[0].frames or ()
    ]
    frames = cap.connections[0].frames or ()
    assert frames[1].time == pytest.approx(records[9][0], abs=1e-6)  # a PB at 2^-20 s

    reader = PacketReader(path)
    segments = list(reader)
    assert reader.secrets == [keylog]
    assert [s[0] for s in segments] == list(range(1, 15))
    assert [s[1] for s in segments[:7]] == pytest.approx(expected_times, abs=1e-6)
    assert [s[1] for s in segments[11:]] == [0.0, 0.0, 0.0]


# -- damaged files --------------------------------------------------------------------------


def test_last_record_cut_short(tmp_path: Path) -> None:
    raw = ORIGINAL.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[:-30])
    cap = read_packet_capture(path)
    assert cap.packets == 13
    assert [a.code for a in cap.anomalies] == ["capture.truncated"]
    assert any("cut short" in n for n in cap.notes)
    assert len(cap.connections[0].frames or ()) == 3  # packet 14 is a bare ACK


def test_pcapng_last_block_cut_short(tmp_path: Path) -> None:
    ng = tmp_path / "x.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(ORIGINAL), str(ng)], check=True)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(ng.read_bytes()[:-10])
    cap = read_packet_capture(cut)
    assert cap.packets == 13
    assert "capture.truncated" in {a.code for a in cap.anomalies}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap file header is cut short"),
        (b"GIF89a....", "not a pcap or pcapng file"),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x11\x22\x33\x44" + bytes(16),
            "bad byte-order magic",
        ),
        (
            b"\x0a\x0d\x0d\x0a\x1e\x00\x00\x00\x4d\x3c\x2b\x1a" + bytes(18),
            "impossible length 30",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 0x7FFFFFFF),
            "corrupt pcap header",
        ),
    ],
)
def test_malformed_headers_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_packet_capture(path)
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


# -- reader details -------------------------------------------------------------------------


def test_non_tcp_is_skipped_and_every_packet_numbered() -> None:
    # arkime_synthetic.pcap: 918 packets, 733 of them TCP (tshark -Y tcp counts 733).
    reader = PacketReader(DATA / "pcap" / "arkime" / "arkime_synthetic.pcap")
    segments = list(reader)
    assert reader.packets == 918
    assert len(segments) == 733
    assert segments[-1][0] <= 918 and segments == sorted(segments, key=lambda s: s[0])


def test_gtp_u_tunnel_is_opened() -> None:
    # nDPI false_positives.pcapng: QinQ Ethernet, IPv4, UDP 2152, GTP-U, inner IPv4 + TCP.
    reader = PacketReader(DATA / "pcap" / "nDPI" / "false_positives.pcapng")
    segments = list(reader)
    assert len(segments) == 4
    assert key_endpoints(segments[0][2]) == ("10.140.231.26:61202", "159.65.12.169:443")


def test_reverse_key() -> None:
    key = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0x00, 0x50])
    assert key_endpoints(reverse_key(key)) == ("10.0.0.2:80", "10.0.0.1:8080")
    assert reverse_key(reverse_key(key)) == key


@given(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=4, max_size=4),
)
def test_key_endpoints_print_addresses_as_ipaddress_does(
    v4: bytes, v6: bytes, ports: bytes
) -> None:
    import ipaddress

    sport, dport = int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big")
    assert key_endpoints(v4 + v4[::-1] + ports) == (
        f"{ipaddress.ip_address(v4)}:{sport}",
        f"{ipaddress.ip_address(v4[::-1])}:{dport}",
    )
    assert key_endpoints(v6 + v6[::-1] + ports) == (
        f"[{ipaddress.ip_address(v6)}]:{sport}",
        f"[{ipaddress.ip_address(v6[::-1])}]:{dport}",
    )


# -- any bytes ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_bytes_give_a_capture_or_an_input_error(data: st.DataObject) -> None:
    """Flip, cut or insert bytes anywhere in real pcap and pcapng files: the result is a
    capture (with anomalies) or an InputError, never another exception."""
    source = data.draw(st.sampled_from([ORIGINAL, SLL_ORIGINAL]))
    raw = bytearray(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 64))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=32))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.pcap"
        path.write_bytes(bytes(raw))
        try:
            cap = read_packet_capture(path)
        except InputError as exc:
            assert "\n" not in str(exc)
        else:
            assert cap.packets is not None


def test_decryption_secrets_block_written_by_editcap() -> None:
    # tests/data/tls: editcap --inject-secrets tls,KEYS of a Node ws wss:// session.
    tls = DATA / "tls"
    reader = PacketReader(tls / "node-tls13-chacha20-dsb.pcapng")
    segments = list(reader)
    assert segments and reader.format == "pcapng"
    (secrets,) = reader.secrets
    assert secrets.rstrip(b"\0") == (tls / "node-tls13-chacha20.keys").read_bytes()
    assert read_packet_capture(tls / "node-tls13-chacha20-dsb.pcapng").secrets_embedded


def test_pcapng_if_tsoffset(tmp_path: Path) -> None:
    # if_tsoffset: seconds to add to every timestamp of the interface.
    _, records = read_records(ORIGINAL)
    opts = _opt(14, struct.pack("<q", 1_000_000)) + bytes(4)
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    body = [_shb("<", None), idb]
    body += [_epb("<", 0, round((t - 1_000_000) * 1e6), f) for t, f in records]
    path = tmp_path / "offset.pcapng"
    path.write_bytes(b"".join(body))
    times = [s[1] for s in PacketReader(path)]
    assert times == pytest.approx([t for t, _ in records], abs=1e-5)
