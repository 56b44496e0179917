"""Cost of FlowParser.data() per frame (prints figures; not a test).

Run: PYTHONPATH=. python benchmarks/protocol_bench.py [frames] [--gc-threshold N]

Each scenario is one WebSocket flow: a real handshake, then N frames fed one frame per
data() call (one TCP segment per frame, the usual shape of chat-like traffic), except
where stated. Times are per frame, for the whole data() call: reader, checks, Frame and
Message records, payload work. CPU time of this process (``time.process_time``), so
other load on the machine does not inflate the figures; best of 3 runs.

The interpreter's cyclic GC costs a large share on the hot path (every record is a new
tuple): with ``--gc-threshold 10000`` the gen-0 threshold is raised the way a pipeline
could raise it around a capture (measured here: chat text 2.5 -> 1.6 us per frame inside
the stream, about 20% of the whole data() call).
"""

from __future__ import annotations

import gc
import sys
import time
import zlib
from collections.abc import Callable

from analyzer.limits import Limits
from analyzer.protocol.flow import FlowParser
from analyzer.protocol.frames import serialize

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
REQ = (
    "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def resp(ext: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{ext}\r\n"
    ).encode()


def chat(n: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    out = []
    for i in range(n):
        text = f'{{"type":"chat","seq":{i},"text":"hello there, message number {i}"}}'.encode()
        if i % 2:
            out.append((False, serialize(1, text)))
        else:
            out.append((True, serialize(1, text, mask=b"\x12\x34\x56\x78")))
    return resp(), out


def binary(n: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    blob = bytes(range(256)) * 4
    return resp(), [
        (i % 2 == 0, serialize(2, blob, mask=b"abcd" if i % 2 == 0 else None)) for i in range(n)
    ]


def deflated(n: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    cs = {True: zlib.compressobj(wbits=-15), False: zlib.compressobj(wbits=-15)}
    out = []
    for i in range(n):
        client = i % 2 == 0
        text = f'{{"type":"chat","seq":{i},"text":"hello there, message number {i}"}}'.encode()
        data = cs[client].compress(text) + cs[client].flush(zlib.Z_SYNC_FLUSH)
        out.append((client, serialize(1, data[:-4], rsv=4, mask=b"abcd" if client else None)))
    return resp("Sec-WebSocket-Extensions: permessage-deflate\r\n"), out


def pings(n: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    return resp(), [(False, serialize(9, b"")) for _ in range(n)]


def batched(n: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    """Server streaming 20 small frames per segment."""
    _, frames = chat(n)
    server = [f for c, f in frames if not c]
    out = [(False, b"".join(server[i : i + 20])) for i in range(0, len(server), 20)]
    return resp(), out


def run(name: str, make: Callable[[int], tuple[bytes, list[tuple[bool, bytes]]]], n: int) -> None:
    response, frames = make(n)
    count = sum(1 for _ in frames) if name != "batched (20 frames/segment)" else n // 2
    best = float("inf")
    for _ in range(3):
        p = FlowParser("bench.pcap", 0, Limits(max_messages_per_connection=10**7))
        p.data(True, REQ, 1, 0.0)
        p.data(False, response, 2, 0.0)
        data = p.data
        t0 = time.process_time()
        for i, (orig, chunk) in enumerate(frames, 3):
            data(orig, chunk, i, float(i))
        best = min(best, time.process_time() - t0)
        r = p.result()
        assert r is not None and not r.anomalies, r.anomalies[:3]
    per = best / count * 1e6
    rate = count / best / 1e3
    print(f"{name:32s} {count:>8d} frames  {per:6.2f} us/frame  {rate:7.0f}k frames/s")


def main() -> None:
    args = sys.argv[1:]
    if "--gc-threshold" in args:
        i = args.index("--gc-threshold")
        gc.set_threshold(int(args[i + 1]))
        del args[i : i + 2]
    n = int(args[0]) if args else 200_000
    print(f"Python {sys.version.split()[0]}; best of 3; gc thresholds {gc.get_threshold()}")
    run("chat text, masked/unmasked", chat, n)
    run("binary 1 KiB", binary, n)
    run("permessage-deflate text", deflated, n)
    run("empty pings", pings, n)
    run("batched (20 frames/segment)", batched, n)


if __name__ == "__main__":
    main()
