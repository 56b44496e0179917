"""TEST-ONLY: TCP payload bytes per flow and direction from simple loopback captures.

This is not the analyzer's capture path (analyzer/inputs/pcap.py and analyzer/streams/,
written separately): it is the minimum the TLS tests need to feed ``TlsFlow`` with bytes
from real captures made by ``wss_capture.py``: pcap or pcapng (Ethernet, Linux cooked or
raw IP), IPv4/IPv6, TCP segments taken in order, retransmitted bytes dropped, a hole
reported as a gap. It also returns the payloads of pcapng Decryption Secrets Blocks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

DSB_TLS_KEY_LOG = 0x544C534B  # "TLSK"


@dataclass
class Event:
    from_orig: bool
    payload: bytes  # empty for a gap
    packet: int  # 1-based, as Wireshark numbers frames
    time: float
    gap: int = 0  # bytes missing before this point


@dataclass
class Flow:
    stream: int
    orig: tuple[str, int]
    resp: tuple[str, int]
    events: list[Event] = field(default_factory=list)
    next_seq: dict[bool, int] = field(default_factory=dict)

    def bytes_from(self, from_orig: bool) -> bytes:
        return b"".join(e.payload for e in self.events if e.from_orig == from_orig)


@dataclass
class Capture:
    flows: list[Flow]
    secrets: list[bytes]  # DSB TLSK payloads, in file order
    packets: int


def _ip_tcp(frame: bytes, linktype: int) -> tuple[str, int, str, int, int, int, bytes] | None:
    if linktype == 1:  # Ethernet
        ethertype, off = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype == 0x8100:
            ethertype, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
    elif linktype == 113:  # Linux cooked v1
        ethertype, off = struct.unpack_from("!H", frame, 14)[0], 16
    elif linktype == 276:  # Linux cooked v2
        ethertype, off = struct.unpack_from("!H", frame, 0)[0], 20
    elif linktype in (101, 228, 229):  # raw IP
        ethertype = 0x0800 if frame[0] >> 4 == 4 else 0x86DD
        off = 0
    else:
        return None
    if ethertype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, off + 2)[0]
        if frame[off + 9] != 6:
            return None
        src = ".".join(str(b) for b in frame[off + 12 : off + 16])
        dst = ".".join(str(b) for b in frame[off + 16 : off + 20])
        end = off + total
        off += ihl
    elif ethertype == 0x86DD:
        plen = struct.unpack_from("!H", frame, off + 4)[0]
        if frame[off + 6] != 6:
            return None
        src = frame[off + 8 : off + 24].hex()
        dst = frame[off + 24 : off + 40].hex()
        end = off + 40 + plen
        off += 40
    else:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", frame, off)
    data_off = (frame[off + 12] >> 4) * 4
    flags = frame[off + 13]
    return src, sport, dst, dport, seq, flags, frame[off + data_off : end]


def _records(data: bytes) -> tuple[list[tuple[int, float, bytes, int]], list[bytes]]:
    """(linktype, time, frame, captured) per packet, and DSB TLSK payloads."""
    packets: list[tuple[int, float, bytes, int]] = []
    secrets: list[bytes] = []
    magic = data[:4]
    if magic in (
        b"\xd4\xc3\xb2\xa1",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\xa1\xb2\x3c\x4d",
    ):
        endian = "<" if magic[0] in (0xD4, 0x4D) else ">"
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
        pos = 24
        while pos + 16 <= len(data):
            sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
            t = sec + frac / (1e9 if nano else 1e6)
            packets.append((linktype, t, data[pos + 16 : pos + 16 + incl], incl))
            pos += 16 + incl
        return packets, secrets
    if magic != b"\x0a\x0d\x0d\x0a":
        raise ValueError("neither pcap nor pcapng")
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    links: list[tuple[int, float]] = []
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        body = data[pos + 8 : pos + blen - 4]
        if btype == 0x0A0D0D0A:
            links = []
        elif btype == 1:  # Interface Description Block
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            resolution = 1e-6
            opos = 8
            while opos + 4 <= len(body):
                code, olen = struct.unpack_from(endian + "HH", body, opos)
                if code == 0:
                    break
                if code == 9:  # if_tsresol
                    v = body[opos + 4]
                    resolution = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
                opos += 4 + olen + (-olen % 4)
            links.append((linktype, resolution))
        elif btype == 6:  # Enhanced Packet Block
            iface, hi, lo, incl, _orig = struct.unpack_from(endian + "IIIII", body, 0)
            linktype, res = links[iface]
            packets.append((linktype, ((hi << 32) | lo) * res, body[20 : 20 + incl], incl))
        elif btype == 0x0000000A:  # Decryption Secrets Block
            stype, slen = struct.unpack_from(endian + "II", body, 0)
            if stype == DSB_TLS_KEY_LOG:
                secrets.append(body[8 : 8 + slen])
        pos += blen
    return packets, secrets


def read(path: Path) -> Capture:
    raw, secrets = _records(Path(path).read_bytes())
    flows: dict[tuple[str, int, str, int], Flow] = {}
    ordered: list[Flow] = []
    for number, (linktype, t, frame, _incl) in enumerate(raw, start=1):
        seg = _ip_tcp(frame, linktype)
        if seg is None:
            continue
        src, sport, dst, dport, seq, flags, payload = seg
        key = (src, sport, dst, dport)
        flow = flows.get(key)
        from_orig = True
        if flow is None:
            flow = flows.get((dst, dport, src, sport))
            from_orig = False
        if flow is None:
            flow = Flow(len(ordered), (src, sport), (dst, dport))
            flows[key] = flow
            ordered.append(flow)
            from_orig = True
        syn = bool(flags & 0x02)
        if syn:
            flow.next_seq[from_orig] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        expected = flow.next_seq.setdefault(from_orig, seq)
        delta = (seq - expected) & 0xFFFFFFFF
        if delta >= 0x80000000:  # starts before what we have: drop the retransmitted part
            overlap = (expected - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                continue
            payload = payload[overlap:]
            delta = 0
        if delta:
            flow.events.append(Event(from_orig, b"", number, t, gap=delta))
        flow.events.append(Event(from_orig, payload, number, t))
        flow.next_seq[from_orig] = (expected + delta + len(payload)) & 0xFFFFFFFF
    return Capture(ordered, secrets, len(raw))
