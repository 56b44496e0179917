#!/usr/bin/env python3
"""How long ``link_sessions`` takes, by number of connections, and on the real hop captures.

Two synthetic loads (model objects built here, one capture each): N sessions through one
proxy, all to the same path, started 5 ms apart (the worst case for the timing match),
with the proxy either forwarding the key (``key``) or starting its own handshake
(``relay``); and a load where one fixed key is reused by every connection (``fixed-key``).
Then the real captures of tests/data/hops, read once, linked together.

Usage: PYTHONPATH=. python benchmarks/bench_hops.py [N ...]   (default 1000 5000)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from analyzer.session.hops import link_sessions
from analyzer.session.model import Capture, Connection, Fact, Headers, Message, Request

FACTS = frozenset(f.value for f in Fact)


def _conn(n: int, leg: int, key: str, start: float) -> Connection:
    client = (
        f"198.51.100.{n % 250 + 1}:{40000 + n % 20000}" if leg == 0 else f"10.0.0.1:{30000 + n}"
    )
    server = "10.0.0.1:443" if leg == 0 else "10.0.0.2:8080"
    headers = [("Host", "chat.example"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    headers += [("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    if leg:
        headers.append(("X-Forwarded-For", client.split(":")[0]))
    d = 0.0005 * leg
    messages = tuple(
        Message(i, side, start + 0.01 * (i + 1) + (d if side == "client" else -d), 1, 20 + i)
        for i, side in enumerate(("client", "server", "client", "server"))
    )
    return Connection(
        id=f"bench#{2 * n + leg}",
        capture="bench.pcapng",
        url="ws://chat.example/socket",
        client=client,
        server=server,
        start=start + d,
        end_time=start + 1,
        request=Request("GET", "/socket", Headers.of(headers), "HTTP/1.1"),
        response=None,
        messages=messages,
        frames=(),
        close=None,
        close_known=True,
        end="capture-ended",
        can_show=FACTS,
    )


def synthetic(n: int, mode: str) -> Capture:
    conns = []
    for i in range(n):
        key = "fixedfixedfixedfixedfA==" if mode == "fixed-key" else f"k{i:020d}=="
        start = 1_700_000_000.0 + 0.005 * i
        conns.append(_conn(i, 0, key, start))
        conns.append(_conn(i, 1, key if mode != "relay" else f"r{i:020d}==", start))
    return Capture("bench.pcapng", "pcapng", None, None, FACTS, tuple(conns))


def timed(captures: tuple[Capture, ...]) -> tuple[float, int]:
    t0 = time.perf_counter()
    chains = link_sessions(captures)
    return time.perf_counter() - t0, len(chains)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 5000]
    print(f"{'load':<10} {'sessions':>8} {'connections':>11} {'seconds':>8} {'chains':>7}")
    for mode in ("key", "relay", "fixed-key"):
        for n in sizes:
            seconds, chains = timed((synthetic(n, mode),))
            print(f"{mode:<10} {n:>8} {2 * n:>11} {seconds:>8.3f} {chains:>7}")
    from analyzer.pipeline import load_capture

    hops = Path(__file__).resolve().parent.parent / "tests" / "data" / "hops"
    files = sorted(p for p in hops.glob("*/*") if p.suffix in (".pcapng", ".har"))
    caps = tuple(load_capture(p) for p in files)
    seconds, chains = timed(caps)
    conns = sum(len(c.connections) for c in caps)
    print(
        f"tests/data/hops: {len(files)} captures, {conns} connections, {seconds:.3f} s, "
        f"{chains} chains"
    )


if __name__ == "__main__":
    main()
