"""Packet capture reader: pcap and pcapng (plain or gzip-compressed) to TCP segments.

Theory of operation
-------------------
``PacketReader`` reads the file in large chunks and walks the records with precompiled
``struct`` unpackers, keeping offsets into the chunk rather than building an object per
packet. For each record it peels the link layer (``linktypes``), IPv4/IPv6 (extension
headers skipped, GTP-U tunnels opened) and yields one plain tuple per TCP segment::

    (packet, time, key, seq, flags, payload, missing)

- ``packet``: the record's number as Wireshark counts them (1-based, every record).
- ``time``: Unix seconds (float).
- ``key``: source address + destination address + source port + destination port, as the
  raw bytes of the packet (12 bytes for IPv4, 36 for IPv6); ``reverse_key`` turns it round.
- ``flags``: the TCP flag byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
- ``payload``: the captured TCP payload (``b""`` when none).
- ``missing``: payload bytes the IP header announces but the capture did not keep
  (snapshot length); the reassembler marks them as a gap.

Everything that is not TCP is skipped after a byte or two of inspection. Odd packets (IP
fragments, truncated headers, unknown link types) become capture-level anomalies, counted
per code, with the first few kept with their packet number. A file whose last record is cut
is read up to the cut and noted (``capture.truncated``); headers that cannot be a capture
raise ``InputError``.

pcapng Decryption Secrets Blocks are kept (``secrets``: TLS key log text) for the TLS layer.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal, NoReturn

from analyzer.errors import InputError
from analyzer.inputs.linktypes import LINKTYPE_NAMES, ip_offset
from analyzer.vocabulary import Anomaly, Location

Segment = tuple[int, float, bytes, int, int, bytes, int]

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"

# pcapng block types (draft-ietf-opsawg-pcapng).
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BT_DSB = 0x0000000A
SECRETS_TLS_KEYLOG = 0x544C534B  # "TLSK"
# The smallest length of the blocks whose fixed fields are read: 12 bytes of type and
# lengths, plus the section header's byte-order magic, version and section length, the
# packet blocks' interface, timestamp and lengths, the secrets block's type and length.
MIN_BLOCK = {PCAPNG_SHB: 28, BT_EPB: 32, BT_PB: 32, BT_DSB: 20}

SHB_USERAPPL = 4
SHB_HARDWARE = 2
SHB_OS = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14

CHUNK = 1 << 20  # bytes read at a time: large enough that refills are rare
MAX_RECORD = 1 << 28  # a record larger than this is a corrupt header, not a packet
KEEP_ANOMALIES = 20  # per code: the first few with their packet, the rest counted

TCP = 6
UDP = 17
GTP_U_PORT = 2152
IPV6_SKIPPABLE = frozenset({0, 43, 60, 51, 135, 139, 140})  # hop-by-hop, routing, dst opts...
IPV6_FRAGMENT = 44


SEQ = struct.Struct("!I")
# Link types with a fixed-size header before IPv4: (header length, offset of the
# ethertype or -1). Their common case (IPv4 + TCP, no options) skips the general decoder.
FAST_L2 = {1: (14, 12), 113: (16, 14), 276: (20, 0), 101: (0, -1), 228: (0, -1)}


def reverse_key(key: bytes) -> bytes:
    """The key of the same 4-tuple seen from the other side."""
    n = (len(key) - 4) >> 1
    return key[n : 2 * n] + key[:n] + key[-2:] + key[-4:-2]


def key_endpoints(key: bytes) -> tuple[str, str]:
    """``("ip:port", "ip:port")`` of the sender and receiver of a key, IPv6 in brackets."""
    n = (len(key) - 4) >> 1
    sport = int.from_bytes(key[2 * n : 2 * n + 2], "big")
    dport = int.from_bytes(key[2 * n + 2 :], "big")
    if n == 4:
        # What ipaddress prints for IPv4, without its objects (once per connection).
        return (
            "{}.{}.{}.{}:{}".format(*key[:4], sport),
            "{}.{}.{}.{}:{}".format(*key[4:8], dport),
        )
    import ipaddress

    src = ipaddress.ip_address(key[:n])
    dst = ipaddress.ip_address(key[n : 2 * n])
    return f"[{src}]:{sport}", f"[{dst}]:{dport}"


class _Interface:
    __slots__ = ("linktype", "divisor", "offset", "fast")

    def __init__(self, linktype: int, divisor: int, offset: int) -> None:
        self.linktype = linktype
        self.divisor = divisor  # timestamp units per second
        self.offset = offset  # seconds added to every timestamp (if_tsoffset)
        self.fast = FAST_L2.get(linktype, (-1, -1))


class _Gunzip:
    """Reads a gzip file (any number of members) as a stream. Unlike ``gzip.open``, a file
    cut short gives every byte that can be decompressed, then ``truncated`` is set."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.inflater = zlib.decompressobj(wbits=31)
        self.out = b""
        self.truncated = False
        self.done = False

    def read(self, n: int) -> bytes:
        while len(self.out) < n and not self.done:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                self.done = True
                self.truncated = not self.inflater.eof
                self.out += self.inflater.flush()
                break
            while chunk:
                self.out += self.inflater.decompress(chunk)
                if self.inflater.eof:  # next member, if any
                    chunk = self.inflater.unused_data
                    self.inflater = zlib.decompressobj(wbits=31)
                    if not chunk.startswith(GZIP_MAGIC):
                        chunk = b""  # trailing garbage after the last member
                        self.done = True
                else:
                    chunk = b""
        data, self.out = self.out[:n], self.out[n:]
        return data

    def close(self) -> None:
        self.raw.close()


def _open(path: Path) -> BinaryIO | _Gunzip:
    try:
        f: BinaryIO = path.open("rb")
        if f.read(2) == GZIP_MAGIC:
            f.seek(0)
            return _Gunzip(f)
        f.seek(0)
        return f
    except OSError as exc:
        raise InputError(f"cannot open ({exc.strerror or exc})", path) from None


class PacketReader:
    """One pass over a pcap or pcapng file. Iterate it for TCP segments (see module doc)."""

    def __init__(self, path: Path, capture: str | None = None) -> None:
        self.path = path
        self.capture = capture if capture is not None else str(path)
        self.format: Literal["pcap", "pcapng"] = "pcap"
        self.packets = 0  # records read, as Wireshark numbers them
        self.creator: str | None = None  # pcapng shb_userappl
        self.hardware: str | None = None
        self.os: str | None = None
        self.secrets: list[bytes] = []  # TLS key log text from Decryption Secrets Blocks
        self.linktypes: set[int] = set()
        self.truncated = False
        self.snapped = 0  # packets whose TCP payload the snapshot length cut
        self.anomaly_counts: dict[str, int] = {}
        self._anomalies: list[Anomaly] = []
        self._stream_cut = ""  # why the compressed stream stopped early, if it did

    # -- anomalies -------------------------------------------------------------------------

    def note(self, code: str, detail: str, packet: int | None = None) -> None:
        n = self.anomaly_counts.get(code, 0)
        self.anomaly_counts[code] = n + 1
        if n < KEEP_ANOMALIES:
            loc = Location(self.capture, packet=packet) if packet else Location(self.capture)
            self._anomalies.append(Anomaly(code, detail, loc))

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        out = list(self._anomalies)
        for code, n in self.anomaly_counts.items():
            if n > KEEP_ANOMALIES:
                out.append(Anomaly(code, f"{n} in all; the first {KEEP_ANOMALIES} are listed"))
        return tuple(out)

    # -- reading ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Segment]:
        f = _open(self.path)
        try:
            head = self._read(f, 4)
            if len(head) < 4:
                raise InputError("too short to be a packet capture", self.path)
            magic_le = int.from_bytes(head, "little")
            if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or int.from_bytes(head, "big") in (
                PCAP_MAGIC_US,
                PCAP_MAGIC_NS,
            ):
                self.format = "pcap"
                rest = self._read(f, 20)
                if len(rest) < 20:
                    raise InputError("pcap file header is cut short (24 bytes expected)", self.path)
                return self._pcap(f, head + rest)  # the generator closes the file
            if magic_le == PCAPNG_SHB:
                self.format = "pcapng"
                return self._pcapng(f, head)
            raise InputError(f"not a pcap or pcapng file (first bytes {head.hex(' ')})", self.path)
        except BaseException:
            f.close()
            raise

    def _read(self, f: BinaryIO | _Gunzip, n: int) -> bytes:
        try:
            data = f.read(n)
        except zlib.error:
            self._stream_cut = "the gzip data is corrupt"
            return b""
        except OSError as exc:
            raise InputError(f"read error ({exc})", self.path) from None
        if len(data) < n and isinstance(f, _Gunzip) and f.truncated:
            # Whatever could be decompressed is read; noted when the reading stops.
            self._stream_cut = "the gzip stream ends early"
        return data

    # The record loops' ways out, shared by the pcap and pcapng loops.

    def _done(self, f: BinaryIO | _Gunzip, number: int) -> None:
        """The end of a pass, however it ends: count, close, note a compressed stream cut."""
        self.packets = number
        f.close()
        if self._stream_cut:
            self._cut(self._stream_cut, number)

    def _corrupt(self, message: str) -> NoReturn:
        raise InputError(message, self.path)

    def _record_too_large(self, number: int, caplen: int) -> NoReturn:
        self._corrupt(f"record {number + 1} claims {caplen} bytes: corrupt pcap header")

    def _block_length_impossible(self, number: int, blocklen: int) -> NoReturn:
        self._corrupt(f"pcapng block after packet {number} has an impossible length {blocklen}")

    def _block_too_large(self, number: int, blocklen: int) -> NoReturn:
        self._corrupt(f"pcapng block after packet {number} claims {blocklen} bytes: corrupt header")

    def _bad_bom(self, bom: bytes) -> NoReturn:
        self._corrupt(f"pcapng section header has a bad byte-order magic {bom.hex()}")

    def _caplen_exceeds_block(self, number: int, caplen: int) -> NoReturn:
        self._corrupt(f"packet {number}: captured length {caplen} exceeds its block")

    def _bad_interface(self, ifid: int, number: int) -> None:
        self.note(
            "capture.bad_interface",
            f"packet refers to interface {ifid}, which was not described",
            number,
        )

    def _cut(self, why: str, number: int) -> None:
        if not self.truncated:
            self.truncated = True
            self.note(
                "capture.truncated",
                f"{why} after packet {number}: the rest of the file is missing",
            )

    def _pcap(self, f: BinaryIO | _Gunzip, header: bytes) -> Iterator[Segment]:
        head, rest = header[:4], header[4:]
        endian = "<" if int.from_bytes(head, "little") in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
        magic = struct.unpack(endian + "I", head)[0]
        divisor = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
        _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", rest)
        # The top bits of the link type field may carry an FCS length (pcap-savefile).
        linktype = network & 0x0FFFFFFF
        self._linktype_seen(linktype)
        unpack = struct.Struct(endian + "IIII").unpack_from
        seq_at = SEQ.unpack_from
        l2, eo = FAST_L2.get(linktype, (0, -1))
        fast = linktype in FAST_L2
        read = self._read
        buf = b""
        pos = 0
        blen = 0
        number = self.packets
        try:
            while True:
                if pos + 16 > blen:
                    buf = buf[pos:] + read(f, CHUNK)
                    pos, blen = 0, len(buf)
                    if blen < 16:
                        if blen:
                            self._cut("the last record header is cut short", number)
                        return
                sec, frac, caplen, _wirelen = unpack(buf, pos)
                end = pos + 16 + caplen
                if end > blen:
                    if caplen > MAX_RECORD:
                        self._record_too_large(number, caplen)
                    buf = buf[pos:] + read(f, max(CHUNK, caplen + 16))
                    pos, blen = 0, len(buf)
                    end = 16 + caplen
                    if end > blen:
                        self.packets = number
                        self._cut("the last record is cut short", number)
                        return
                number += 1
                # Fast path: IPv4 without options or fragmentation, carrying TCP, whole.
                ip = pos + 16 + l2
                if (
                    fast
                    and ip + 40 <= end
                    and buf[ip] == 0x45
                    and buf[ip + 9] == TCP
                    and (eo < 0 or (buf[pos + 16 + eo] == 8 and buf[pos + 17 + eo] == 0))
                    and not (buf[ip + 6] & 0x3F or buf[ip + 7])
                ):
                    pay_end = ip + ((buf[ip + 2] << 8) | buf[ip + 3])
                    tcp_end = ip + 20 + ((buf[ip + 32] >> 4) << 2)
                    if pay_end <= end and ip + 40 <= tcp_end <= pay_end:
                        yield (
                            number,
                            sec + frac / divisor,
                            buf[ip + 12 : ip + 24],
                            seq_at(buf, ip + 24)[0],
                            buf[ip + 33],
                            buf[tcp_end:pay_end],
                            0,
                        )
                        pos = end
                        continue
                seg = self._decode(buf, pos + 16, end, linktype, number)
                if seg is not None:
                    key, tcp, tcp_end, pay_end, missing = seg
                    yield (
                        number,
                        sec + frac / divisor,
                        key,
                        seq_at(buf, tcp + 4)[0],
                        buf[tcp + 13],
                        buf[tcp_end:pay_end] if tcp_end < pay_end else b"",
                        missing,
                    )
                pos = end
        finally:
            self._done(f, number)

    def _pcapng(self, f: BinaryIO | _Gunzip, head: bytes) -> Iterator[Segment]:
        read = self._read
        buf = head + read(f, CHUNK)
        pos = 0
        blen = len(buf)
        number = self.packets
        endian = "<"
        u32 = struct.Struct("<I").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        seq_at = SEQ.unpack_from
        interfaces: list[_Interface] = []
        try:
            while True:
                if pos + 12 > blen:
                    buf = buf[pos:] + read(f, CHUNK)
                    pos, blen = 0, len(buf)
                    if blen < 12:
                        if blen:
                            self._cut("the last block header is cut short", number)
                        return
                btype = u32(buf, pos)[0]
                if btype == PCAPNG_SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if int.from_bytes(bom, "little") == PCAPNG_BOM:
                        endian = "<"
                    elif int.from_bytes(bom, "big") == PCAPNG_BOM:
                        endian = ">"
                    else:
                        self._bad_bom(bom)
                    u32 = struct.Struct(endian + "I").unpack_from
                    epb = struct.Struct(endian + "IIIII").unpack_from
                    interfaces = []
                blocklen = u32(buf, pos + 4)[0]
                if blocklen < 12 or blocklen % 4:
                    self._block_length_impossible(number, blocklen)
                end = pos + blocklen
                if end > blen:
                    if blocklen > MAX_RECORD:
                        self._block_too_large(number, blocklen)
                    buf = buf[pos:] + read(f, max(CHUNK, blocklen))
                    pos, blen = 0, len(buf)
                    end = blocklen
                    if end > blen:
                        self.packets = number
                        self._cut("the last block is cut short", number)
                        return
                if blocklen < 32 and blocklen < MIN_BLOCK.get(btype, 12):
                    # Too short for its own fields (which would be read past its end).
                    self._block_length_impossible(number, blocklen)
                if btype == BT_EPB:
                    ifid, ts_hi, ts_lo, caplen, _wirelen = epb(buf, pos + 8)
                    data = pos + 28
                    number += 1
                    if ifid >= len(interfaces):
                        self._bad_interface(ifid, number)
                        pos = end
                        continue
                    itf = interfaces[ifid]
                    stop = data + caplen
                    if stop > end - 4:
                        self._caplen_exceeds_block(number, caplen)
                    l2, eo = itf.fast
                    ip = data + l2
                    if (
                        l2 >= 0
                        and ip + 40 <= stop
                        and buf[ip] == 0x45
                        and buf[ip + 9] == TCP
                        and (eo < 0 or (buf[data + eo] == 8 and buf[data + eo + 1] == 0))
                        and not (buf[ip + 6] & 0x3F or buf[ip + 7])
                    ):
                        pay_end = ip + ((buf[ip + 2] << 8) | buf[ip + 3])
                        tcp_end = ip + 20 + ((buf[ip + 32] >> 4) << 2)
                        if pay_end <= stop and ip + 40 <= tcp_end <= pay_end:
                            yield (
                                number,
                                ((ts_hi << 32) | ts_lo) / itf.divisor + itf.offset,
                                buf[ip + 12 : ip + 24],
                                seq_at(buf, ip + 24)[0],
                                buf[ip + 33],
                                buf[tcp_end:pay_end],
                                0,
                            )
                            pos = end
                            continue
                    seg = self._decode(buf, data, stop, itf.linktype, number)
                    if seg is not None:
                        key, tcp, tcp_end, pay_end, missing = seg
                        yield (
                            number,
                            ((ts_hi << 32) | ts_lo) / itf.divisor + itf.offset,
                            key,
                            seq_at(buf, tcp + 4)[0],
                            buf[tcp + 13],
                            buf[tcp_end:pay_end] if tcp_end < pay_end else b"",
                            missing,
                        )
                elif btype == BT_SPB or btype == BT_PB:
                    number += 1
                    yield from self._other_packet(buf, pos, end, btype, endian, interfaces, number)
                elif btype == BT_IDB:
                    interfaces.append(self._idb(buf, pos, end, endian))
                elif btype == PCAPNG_SHB:
                    self._shb(buf, pos, end, endian)
                elif btype == BT_DSB:
                    self._dsb(buf, pos, end, endian)
                # Other blocks (name resolution, statistics, custom...) are skipped.
                pos = end
        finally:
            self._done(f, number)

    def _other_packet(
        self,
        buf: bytes,
        pos: int,
        end: int,
        btype: int,
        endian: str,
        interfaces: list[_Interface],
        number: int,
    ) -> Iterator[Segment]:
        """Simple Packet Blocks (no timestamp) and obsolete Packet Blocks."""
        if btype == BT_SPB:
            (wirelen,) = struct.unpack_from(endian + "I", buf, pos + 8)
            ifid, data, time = 0, pos + 12, 0.0
            caplen = min(wirelen, end - 4 - data)
        else:
            ifid, _drops, ts_hi, ts_lo, caplen, _wirelen = struct.unpack_from(
                endian + "HHIIII", buf, pos + 8
            )
            data = pos + 28
            time = -1.0
        if ifid >= len(interfaces):
            self._bad_interface(ifid, number)
            return
        itf = interfaces[ifid]
        if time < 0:
            time = ((ts_hi << 32) | ts_lo) / itf.divisor + itf.offset
        stop = data + caplen
        if stop > end - 4:
            self._caplen_exceeds_block(number, caplen)
        seg = self._decode(buf, data, stop, itf.linktype, number)
        if seg is None:
            return
        key, tcp, tcp_end, pay_end, missing = seg
        payload = buf[tcp_end:pay_end] if tcp_end < pay_end else b""
        seq = int.from_bytes(buf[tcp + 4 : tcp + 8], "big")
        yield number, time, key, seq, buf[tcp + 13], payload, missing

    def _options(
        self, buf: bytes, start: int, end: int, endian: str
    ) -> Iterator[tuple[int, bytes]]:
        p = start
        while p + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", buf, p)
            if code == 0:
                return
            value = buf[p + 4 : p + 4 + length]
            if len(value) < length:
                return
            yield code, value
            p += 4 + ((length + 3) & ~3)

    def _shb(self, buf: bytes, pos: int, end: int, endian: str) -> None:
        major, _minor = struct.unpack_from(endian + "HH", buf, pos + 12)
        if major != 1:
            raise InputError(f"pcapng version {major} is not supported", self.path)
        for code, value in self._options(buf, pos + 24, end - 4, endian):
            text = value.decode("utf-8", "replace").rstrip("\x00")
            if code == SHB_USERAPPL and self.creator is None:
                self.creator = text
            elif code == SHB_HARDWARE and self.hardware is None:
                self.hardware = text
            elif code == SHB_OS and self.os is None:
                self.os = text

    def _idb(self, buf: bytes, pos: int, end: int, endian: str) -> _Interface:
        (linktype,) = struct.unpack_from(endian + "H", buf, pos + 8)
        divisor, offset = 1_000_000, 0
        for code, value in self._options(buf, pos + 16, end - 4, endian):
            if code == IF_TSRESOL and value:
                r = value[0]
                # MSB clear: a negative power of 10; set: a negative power of 2.
                divisor = 2 ** (r & 0x7F) if r & 0x80 else 10**r
            elif code == IF_TSOFFSET and len(value) >= 8:
                (offset,) = struct.unpack_from(endian + "q", value)
        self._linktype_seen(linktype)
        return _Interface(linktype, divisor, offset)

    def _dsb(self, buf: bytes, pos: int, end: int, endian: str) -> None:
        stype, slen = struct.unpack_from(endian + "II", buf, pos + 8)
        data = buf[pos + 16 : min(pos + 16 + slen, end - 4)]
        if stype == SECRETS_TLS_KEYLOG:
            self.secrets.append(data)
        else:
            self.note(
                "capture.secrets_unsupported",
                f"decryption secrets of type 0x{stype:08x} are not used (only TLS key logs)",
            )

    def _linktype_seen(self, linktype: int) -> None:
        if linktype in self.linktypes:
            return
        self.linktypes.add(linktype)
        if linktype not in LINKTYPE_NAMES:
            self.note(
                "capture.unsupported_linktype",
                f"link type {linktype} is not supported: its packets are skipped",
            )

    # -- layers ----------------------------------------------------------------------------

    def _decode(
        self, buf: bytes, start: int, end: int, linktype: int, number: int
    ) -> tuple[bytes, int, int, int, int] | None:
        """(key, tcp header, payload start, payload end, bytes missing) of a TCP packet."""
        if linktype == 1 and end - start >= 34 and buf[start + 12] == 8 and buf[start + 13] == 0:
            ip = start + 14  # Ethernet II, IPv4: the common case first
            version = 4
        else:
            ip = ip_offset(buf, start, end, linktype)
            if ip < 0:
                return None
            version = buf[ip] >> 4
        for _depth in range(3):  # at most two tunnels (GTP-U) deep
            if version == 4:
                if ip + 20 > end:
                    self.note("ip.truncated", "IPv4 header cut short", number)
                    return None
                ihl = (buf[ip] & 0x0F) << 2
                proto = buf[ip + 9]
                if buf[ip + 6] & 0x3F or buf[ip + 7]:  # MF set or a fragment offset
                    if proto == TCP or proto == UDP:
                        self.note(
                            "ip.fragment",
                            "IPv4 fragment: fragments are not reassembled, its bytes are missing",
                            number,
                        )
                    return None
                total = (buf[ip + 2] << 8) | buf[ip + 3]
                l4 = ip + ihl
                if ihl < 20 or (total and total < ihl):
                    self.note("ip.malformed", f"IPv4 header length {ihl}, total {total}", number)
                    return None
                # Total length 0: segmentation offload on the capturing host; trust the record.
                declared_end = ip + total if total else end
                src = buf[ip + 12 : ip + 20]
            elif version == 6:
                if ip + 40 > end:
                    self.note("ip.truncated", "IPv6 header cut short", number)
                    return None
                proto = buf[ip + 6]
                declared_end = ip + 40 + ((buf[ip + 4] << 8) | buf[ip + 5])
                l4 = ip + 40
                while proto in IPV6_SKIPPABLE:
                    if l4 + 8 > end:
                        return None
                    nxt = buf[l4]
                    if proto == 51:  # AH: length in 4-octet units, minus 2
                        l4 += (buf[l4 + 1] + 2) << 2
                    else:
                        l4 += (buf[l4 + 1] + 1) << 3
                    proto = nxt
                if proto == IPV6_FRAGMENT:
                    self.note(
                        "ip.fragment",
                        "IPv6 fragment: fragments are not reassembled, its bytes are missing",
                        number,
                    )
                    return None
                src = buf[ip + 8 : ip + 40]
            else:
                return None
            if proto == TCP:
                if l4 + 20 > end:
                    self.note("tcp.truncated", "TCP header cut short", number)
                    return None
                tcp_end = l4 + ((buf[l4 + 12] >> 4) << 2)
                if tcp_end < l4 + 20:
                    self.note("tcp.malformed", "TCP data offset below 5 words", number)
                    return None
                key = src + buf[l4 : l4 + 4]
                if declared_end <= end:
                    # Ethernet pads short frames: the IP length says where the payload ends.
                    return key, l4, tcp_end, declared_end, 0
                # The snapshot length cut the packet: the rest is missing, not invented.
                self.snapped += 1
                return key, l4, tcp_end, end, declared_end - max(end, tcp_end)
            if proto == UDP and l4 + 8 <= end:
                # GTP-U (3GPP TS 29.281) carries user IP packets over UDP port 2152.
                if (buf[l4] << 8 | buf[l4 + 1]) != GTP_U_PORT and (
                    buf[l4 + 2] << 8 | buf[l4 + 3]
                ) != GTP_U_PORT:
                    return None
                g = l4 + 8
                if g + 8 > end or buf[g] >> 5 != 1 or buf[g + 1] != 0xFF:
                    return None  # not GTPv1 or not a T-PDU
                inner = g + 8
                if buf[g] & 0x07:  # sequence number, N-PDU or extension headers present
                    inner += 4
                    ext = buf[inner - 1]
                    while ext and inner < end:
                        length = buf[inner] << 2  # in 4-octet units, the next type at the end
                        if not length or inner + length > end:
                            return None  # malformed: would loop for ever or read past the end
                        inner += length
                        ext = buf[inner - 1]
                if inner >= end:
                    return None
                ip = inner
                version = buf[ip] >> 4
                continue
            if proto == 4 or proto == 41:  # IPv4/IPv6 in IP
                ip = l4
                version = 4 if proto == 4 else 6
                if ip >= end:
                    return None
                continue
            return None
        return None
