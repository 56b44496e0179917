#!/usr/bin/env python3
"""Make a large packet capture from real WebSocket traffic, for bench_capture.py.

1. Seed: dumpcap on loopback records Python ``websockets`` clients talking to a
   ``websockets`` echo server (text and binary messages of mixed sizes, pings, fragmented
   messages, permessage-deflate on some connections, closes 1000/1001/1008, a 403).
2. Replicate: the seed's packets are written again and again, each copy with its own
   client address (10.x.y.z instead of 127.0.0.1, IPv4 checksum recomputed) and its own
   times, several copies interleaved so that many flows are open at once, until the file
   reaches the requested size.

    python benchmarks/make_large_capture.py [--size-mb 1000] [--format pcap|pcapng]
                                            [--out benchmarks/data/large.pcap]

Needs root (dumpcap on lo) and the ``websockets`` package. benchmarks/data/ is git-ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
PORT = 28931
INTERLEAVE = 8  # seed copies in flight at once


# -- 1. real traffic -----------------------------------------------------------------------


async def _traffic(port: int, sessions: int, seed: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.http11 import Request, Response

    rng = random.Random(seed)

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if message == "bye-policy":
                    await ws.close(1008, "policy violation")
                    return
                await ws.send(message)
        except ConnectionClosed:
            pass

    def gate(conn: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/forbidden"):
            return conn.respond(403, "forbidden\n")
        return None

    async with serve(handler, "127.0.0.1", port, process_request=gate, max_size=None):
        for i in range(sessions):
            compression = "deflate" if i % 4 == 0 else None
            if i % 25 == 7:
                try:
                    async with connect(f"ws://127.0.0.1:{port}/forbidden"):
                        pass
                except InvalidStatus:
                    pass
                continue
            async with connect(
                f"ws://127.0.0.1:{port}/chat?session={i}",
                compression=compression,
                max_size=None,
                additional_headers=Headers(Origin="http://127.0.0.1"),
            ) as ws:
                for n in range(rng.randint(40, 120)):
                    r = rng.random()
                    if r < 0.7:
                        msg: str | bytes = "m" * rng.randint(5, 200) + f" {n}"
                    elif r < 0.9:
                        msg = rng.randbytes(rng.randint(200, 1500))
                    elif r < 0.97:
                        msg = rng.randbytes(rng.randint(1500, 8000))
                    else:
                        await ws.ping()
                        continue
                    if r > 0.95:
                        await ws.send([msg[:100], msg[100:]])  # a fragmented message
                    else:
                        await ws.send(msg)
                    await ws.recv()
                if i % 10 == 3:
                    await ws.send("bye-policy")
                    try:
                        await ws.recv()
                    except ConnectionClosed:
                        pass
                elif i % 10 == 5:
                    await ws.close(1001, "going away")


def capture_seed(path: Path, sessions: int) -> None:
    cap = subprocess.Popen(
        ["dumpcap", "-q", "-P", "-i", "lo", "-f", f"tcp port {PORT}", "-w", str(path)],
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)  # dumpcap needs a moment before it sees packets
        asyncio.run(_traffic(PORT, sessions, seed=6455))
        time.sleep(1.0)  # the last FIN/ACKs
    finally:
        cap.terminate()
        cap.wait(timeout=10)


# -- 2. replication ------------------------------------------------------------------------


def read_seed(path: Path) -> tuple[bytes, list[tuple[float, bytes]]]:
    """Global header and (time, Ethernet frame) records of a little-endian pcap."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: expected a little-endian pcap from dumpcap -P")
    divisor = 1e9 if magic == 0xA1B23C4D else 1e6
    pos, out = 24, []
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from("<IIII", data, pos)
        out.append((sec + frac / divisor, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return data[:24], out


def _ip_checksum(header: bytearray) -> int:
    header[10:12] = b"\0\0"
    total = sum(struct.unpack("!10H", bytes(header[:20])))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _rewrite(frame: bytes, client: bytes, shift: float) -> bytes:
    """The frame with 127.0.0.1's client side replaced by ``client`` (IPv4 over Ethernet)."""
    if frame[12:14] != b"\x08\x00":
        return frame
    b = bytearray(frame)
    ip = 14
    sport, dport = struct.unpack_from("!HH", b, ip + 20)
    if dport == PORT:
        b[ip + 12 : ip + 16] = client
    elif sport == PORT:
        b[ip + 16 : ip + 20] = client
    hdr = b[ip : ip + 20]
    b[ip + 10 : ip + 12] = struct.pack("!H", _ip_checksum(hdr))
    return bytes(b)


def replicate(seed: Path, out: Path, size: int, fmt: str) -> tuple[int, int]:
    header, records = read_seed(seed)
    t0 = records[0][0]
    span = records[-1][0] - t0 + 0.001
    rel = [(t - t0, f) for t, f in records]
    written = packets = 0
    with out.open("wb", buffering=1 << 22) as f:
        if fmt == "pcapng":
            shb_opts = _opt(4, b"ws-analyzer make_large_capture.py") + b"\0\0\0\0"
            body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts
            f.write(_block(0x0A0D0D0A, body))
            tsresol = _opt(9, b"\x09") + b"\0\0\0\0"  # nanoseconds
            f.write(_block(1, struct.pack("<HHI", 1, 0, 0) + tsresol))
        else:
            f.write(header)
        written = f.tell()
        copy = 0
        base = time.time() - 86400
        while written < size:
            # INTERLEAVE copies, each starting a little after the previous one, merged in time.
            batch = []
            for j in range(INTERLEAVE):
                n = copy + j
                client = bytes((10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))
                start = base + j * span / INTERLEAVE
                batch.append((client, start))
            merged = sorted(
                ((start + t, k, fr) for k, (_c, start) in enumerate(batch) for t, fr in rel),
                key=lambda x: x[0],
            )
            for ts, k, frame in merged:
                data = _rewrite(frame, batch[k][0], 0)
                if fmt == "pcapng":
                    ns = int(ts * 1e9)
                    pad = (-len(data)) % 4
                    body = struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(data), len(data))
                    rec = _block(6, body + data + b"\0" * pad)
                else:
                    sec = int(ts)
                    rec = struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(data))
                    rec += data
                f.write(rec)
                written += len(rec)
                packets += 1
            copy += INTERLEAVE
            base += span
            print(f"\r{written / 1e6:8.1f} MB {packets} packets", end="", file=sys.stderr)
    print(file=sys.stderr)
    return written, packets


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument("--sessions", type=int, default=60, help="real sessions in the seed")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed-file", type=Path, help="reuse a seed capture instead of making one")
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    out = args.out or DATA / f"large-{int(args.size_mb)}mb.{args.format}"
    seed = args.seed_file or DATA / "seed.pcap"
    if args.seed_file is None:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "seed.pcap"
            os.chmod(tmp, 0o777)
            capture_seed(raw, args.sessions)
            seed.write_bytes(raw.read_bytes())
    size, packets = replicate(seed, out, int(args.size_mb * 1e6), args.format)
    print(f"{out}: {size / 1e6:.1f} MB, {packets} packets (seed {seed})")


if __name__ == "__main__":
    main()
