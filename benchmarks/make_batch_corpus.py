"""Make a large batch corpus from real captures: copies with rewritten addresses and times.

    python benchmarks/make_batch_corpus.py OUTDIR [--har 10000] [--pcap 1000] [--seed-dir DIR]

Each copy of a real capture (the shared corpus, or ``tests/data``) gets:

- HAR: every URL host and Host/Origin value rewritten to ``h<N>.example`` (so a batch
  shows many hosts), every ``startedDateTime`` and message ``time`` shifted by N hours;
- pcap / pcapng: every IPv4 address rewritten *checksum-neutrally* (the two 16-bit words
  of the address move by +k and -k in one's-complement arithmetic, so the IP and TCP
  checksums stay valid, RFC 1624) and every packet time shifted by N hours.

``corrupt(data, kind)`` makes the deliberately broken variants the tests use.
The functions are also imported by ``tests/batch`` (by file path).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

HOUR = 3600
# The shared corpus sits beside the project checkout (../shared/corpus).
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# Link types whose IPv4 header offset we know: Ethernet, Linux cooked v1/v2, raw, null.
IP_OFFSET = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0, 0: 4, 12: 0}


# --- HAR ---------------------------------------------------------------------------------

_HOST_RE = re.compile(r"^(?P<scheme>[a-z]+://)(?P<host>[^/:?#]+)", re.IGNORECASE)


def _shift_iso(value: str, hours: int) -> str:
    from datetime import datetime, timedelta

    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    shifted = (t + timedelta(hours=hours)).isoformat()
    return shifted.replace("+00:00", "Z") if value.endswith("Z") else shifted


def har_variant(data: bytes, n: int) -> bytes:
    """A copy of a HAR with hosts rewritten to ``h<n>.example`` and times moved by n hours."""
    text = data.decode("utf-8-sig")
    har = json.loads(text)
    new_host = f"h{n}.example"
    hosts: dict[str, str] = {}
    for entry in har.get("log", {}).get("entries", []):
        if "startedDateTime" in entry:
            entry["startedDateTime"] = _shift_iso(entry["startedDateTime"], n)
        request = entry.get("request", {})
        m = _HOST_RE.match(request.get("url", ""))
        if m:
            hosts[m.group("host")] = new_host
            request["url"] = m.group("scheme") + new_host + request["url"][m.end() :]
        for side in (request, entry.get("response", {})):
            for header in side.get("headers", []):
                if header.get("name", "").lower() in ("host", "origin", ":authority"):
                    for old, new in hosts.items():
                        header["value"] = header["value"].replace(old, new)
        for message in entry.get("_webSocketMessages", []) or []:
            if isinstance(message.get("time"), int | float):
                message["time"] = message["time"] + n * HOUR
    return json.dumps(har, ensure_ascii=False).encode("utf-8")


# --- pcap and pcapng ---------------------------------------------------------------------


def _ones_add(a: int, b: int) -> int:
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def _rewrite_ipv4(addr: bytes, k: int) -> bytes:
    """Move the two 16-bit words by +k and -k (one's complement): same checksum sum."""
    w1, w2 = struct.unpack("!HH", addr)
    k %= 0xFFFF
    w1n = _ones_add(w1, k)
    w2n = _ones_add(w2, 0xFFFF - k)
    # 0x0000 and 0xFFFF are the same number in one's complement; keep real words.
    w1n = w1n & 0xFFFF
    w2n = w2n & 0xFFFF
    return struct.pack("!HH", w1n, w2n)


def _rewrite_packet(pkt: bytearray, linktype: int, k: int) -> None:
    off = IP_OFFSET.get(linktype)
    if off is None:
        return
    if linktype == 1 and len(pkt) >= 14:
        ethertype = struct.unpack_from("!H", pkt, 12)[0]
        if ethertype == 0x8100 and len(pkt) >= 18:  # one VLAN tag
            off, ethertype = 18, struct.unpack_from("!H", pkt, 16)[0]
        if ethertype != 0x0800:
            return
    if len(pkt) < off + 20 or pkt[off] >> 4 != 4:
        return
    for start in (off + 12, off + 16):
        pkt[start : start + 4] = _rewrite_ipv4(bytes(pkt[start : start + 4]), k)


def pcap_variant(data: bytes, n: int) -> bytes:
    """A copy of a pcap or pcapng with IPv4 addresses rewritten and times moved n hours."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return _pcapng_variant(data, n)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("not a pcap or pcapng file")
    out = bytearray(data)
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0x0FFFFFFF
    pos = 24
    while pos + 16 <= len(out):
        ts, _sub, incl, _orig = struct.unpack_from(e + "IIII", out, pos)
        struct.pack_into(e + "I", out, pos, (ts + n * HOUR) & 0xFFFFFFFF)
        body = bytearray(out[pos + 16 : pos + 16 + incl])
        _rewrite_packet(body, linktype, n)
        out[pos + 16 : pos + 16 + len(body)] = body
        pos += 16 + incl
    return bytes(out)


def _pcapng_variant(data: bytes, n: int) -> bytes:
    out = bytearray(data)
    e = "<"
    linktypes: list[int] = []
    resolutions: list[int] = []
    pos = 0
    while pos + 12 <= len(out):
        btype = struct.unpack_from(e + "I", out, pos)[0]
        if btype == 0x0A0D0D0A:
            e = "<" if out[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes, resolutions = [], []
        blen = struct.unpack_from(e + "I", out, pos + 4)[0]
        if blen < 12 or pos + blen > len(out):
            break
        if btype == 1:  # Interface Description Block
            linktypes.append(struct.unpack_from(e + "H", out, pos + 8)[0])
            resolutions.append(_if_tsresol(out, pos, blen, e))
        elif btype == 6 and blen >= 32:  # Enhanced Packet Block
            iface, hi, lo, cap = struct.unpack_from(e + "IIII", out, pos + 8)
            ticks = (hi << 32 | lo) + n * HOUR * (
                resolutions[iface] if iface < len(resolutions) else 10**6
            )
            struct.pack_into(e + "II", out, pos + 12, ticks >> 32 & 0xFFFFFFFF, ticks & 0xFFFFFFFF)
            body = bytearray(out[pos + 28 : pos + 28 + cap])
            if iface < len(linktypes):
                _rewrite_packet(body, linktypes[iface], n)
            out[pos + 28 : pos + 28 + len(body)] = body
        pos += blen
    return bytes(out)


def _if_tsresol(buf: bytearray, pos: int, blen: int, e: str) -> int:
    """Ticks per second of an interface (option if_tsresol, code 9; default 10^6)."""
    opt = pos + 16
    end = pos + blen - 4
    while opt + 4 <= end:
        code, length = struct.unpack_from(e + "HH", buf, opt)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = buf[opt + 4]
            return 2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
        opt += 4 + (length + 3) // 4 * 4
    return 10**6


# --- deliberately broken captures ----------------------------------------------------------

CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated-json": lambda d: d[: max(20, len(d) // 3)],
    "gzip-cut": lambda d: gzip.compress(d)[: max(30, len(gzip.compress(d)) // 2)],
    "random-bytes": lambda d: bytes((i * 37 + 11) % 256 for i in range(512)),
    "header-only-pcap": lambda d: d[:4],
    "empty": lambda d: b"",
}


def corrupt(data: bytes, kind: str) -> bytes:
    return CORRUPTIONS[kind](data)


# --- the command -------------------------------------------------------------------------


def seeds(root: Path) -> tuple[list[Path], list[Path]]:
    hars = sorted(p for p in root.rglob("*.har") if p.is_file())
    pcaps = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng"))
    return hars, pcaps


def make(out: Path, n_har: int, n_pcap: int, seed_dir: Path, max_pcap_bytes: int) -> int:
    hars, pcaps = seeds(seed_dir)
    pcaps = [p for p in pcaps if p.stat().st_size <= max_pcap_bytes]
    if not hars or not pcaps:
        raise SystemExit(f"no HAR or pcap seeds under {seed_dir}")
    har_data = [(p, p.read_bytes()) for p in hars]
    pcap_data = [(p, p.read_bytes()) for p in pcaps]
    made = 0
    for i in range(n_har):
        src, data = har_data[i % len(har_data)]
        folder = out / "har" / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}-{src.name}").write_bytes(har_variant(data, i + 1))
        made += 1
    for i in range(n_pcap):
        src, data = pcap_data[i % len(pcap_data)]
        folder = out / "pcap" / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}-{src.name}").write_bytes(pcap_variant(data, i + 1))
        made += 1
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--har", type=int, default=10_000)
    parser.add_argument("--pcap", type=int, default=1_000)
    parser.add_argument("--seed-dir", type=Path, default=CORPUS)
    parser.add_argument(
        "--max-pcap-bytes",
        type=int,
        default=200_000,
        help="leave out bigger seeds (the 2.5 MB nDPI capture is mostly other traffic)",
    )
    args = parser.parse_args(argv)
    made = make(args.out, args.har, args.pcap, args.seed_dir, args.max_pcap_bytes)
    print(f"made {made} captures in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
