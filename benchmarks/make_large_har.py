#!/usr/bin/env python3
"""Make a large Chrome DevTools HAR from a real one, for bench_cli.py.

    python benchmarks/make_large_har.py --size-mb 70 [--out benchmarks/data/large-70mb.har]
                                        [--messages 240] [--max-message-bytes 256]
                                        [--seed-file PATH]

How it is made:

1. Seed: a real Chrome 144 DevTools export (``log.creator`` "WebInspector" 537.36), by
   default ``/work/shared/corpus/har/chrome-export/clawos-ws.har`` (mrytsr/clawos @
   7599877c0e38, ``ws.har``, MIT; see the corpus MANIFEST.md). It has one WebSocket entry
   (``_resourceType: "websocket"``, ws://127.0.0.1:18789/, 101) with 24 sent and 33
   received JSON-RPC-like text messages in ``_webSocketMessages``, and one fetch entry.
   The repository's own HARs (tests/data/har/, examples/chat-1008/browser.har) are
   mitmproxy, Playwright or derived exports, or Chrome exports without messages, so this
   is the one real Chrome export with a message list at hand.
2. Replicate: the seed's WebSocket entry is written again and again, each copy with its
   own URL (``?socket=N``), its own ``Sec-WebSocket-Key`` (and the matching
   ``Sec-WebSocket-Accept``, RFC 6455 section 4.2.2), its own ``startedDateTime`` (copies
   start 2 s apart, so many sockets overlap) and message times shifted to match. Each
   copy carries ``--messages`` messages (default 240, the shape of the issue's reference
   HAR: 69 MB, 3,000 sockets, 720k messages): the seed's messages in their order, cycled,
   each cycle shifted by the seed's span, keeping only those whose data is at most
   ``--max-message-bytes`` (default 256; the seed's few large replies, up to 122 kB,
   would otherwise be most of the bytes and the file would hold a few hundred messages a
   megabyte instead of thousands). The data of each message is the seed's, unchanged.
   The seed's non-WebSocket entries are kept once, at the start.
3. Written as Chrome writes it (``JSON.stringify(har, null, 2)``: two-space indent),
   until the file reaches the requested size.

benchmarks/data/ is git-ignored.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SEED = Path("/work/shared/corpus/har/chrome-export/clawos-ws.har")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
STAGGER = 2.0  # seconds between the starts of two copies


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def _set_header(headers: list[dict[str, Any]], name: str, value: str) -> None:
    for h in headers:
        if h.get("name", "").lower() == name.lower():
            h["value"] = value


def load_seed(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The seed HAR, its first WebSocket entry with messages, and its other entries."""
    har = json.loads(path.read_text(encoding="utf-8"))
    entries = har["log"]["entries"]
    ws = [
        e for e in entries if e.get("_resourceType") == "websocket" and e.get("_webSocketMessages")
    ]
    if not ws:
        raise SystemExit(f"{path}: no entry with _resourceType websocket and _webSocketMessages")
    others = [e for e in entries if e is not ws[0]]
    return har, ws[0], others


def make_messages(
    seed_msgs: list[dict[str, Any]], count: int, max_bytes: int, shift: float
) -> list[dict[str, Any]]:
    """``count`` messages: the seed's (those of at most ``max_bytes``), cycled, shifted."""
    kept = [m for m in seed_msgs if len(m.get("data", "")) <= max_bytes]
    if not kept:
        raise SystemExit(f"no seed message of at most {max_bytes} bytes")
    t0 = seed_msgs[0]["time"]
    span = seed_msgs[-1]["time"] - t0 + 0.1
    out = []
    for i in range(count):
        m = kept[i % len(kept)]
        cycle = i // len(kept)
        out.append(
            {
                "type": m["type"],
                "time": m["time"] + shift + cycle * span,
                "opcode": m["opcode"],
                "data": m["data"],
            }
        )
    return out


def make_entry(
    seed: dict[str, Any], n: int, messages: int, max_bytes: int, rng: random.Random
) -> dict[str, Any]:
    entry = copy.deepcopy({k: v for k, v in seed.items() if k != "_webSocketMessages"})
    shift = n * STAGGER
    started = dt.datetime.fromisoformat(seed["startedDateTime"].replace("Z", "+00:00"))
    started += dt.timedelta(seconds=shift)
    entry["startedDateTime"] = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    url = seed["request"]["url"]
    entry["request"]["url"] = f"{url}{'&' if '?' in url else '?'}socket={n}"
    entry["request"]["queryString"] = [{"name": "socket", "value": str(n)}]
    key = base64.b64encode(rng.randbytes(16)).decode()
    _set_header(entry["request"]["headers"], "Sec-WebSocket-Key", key)
    _set_header(entry["response"]["headers"], "Sec-WebSocket-Accept", _accept(key))
    if "_connectionId" in entry:
        entry["_connectionId"] = str(1_000_000 + n)
    msgs = make_messages(seed["_webSocketMessages"], messages, max_bytes, shift)
    first = seed["_webSocketMessages"][0]["time"] + shift
    entry["time"] = max(seed.get("time", 0.0), (msgs[-1]["time"] - first) * 1000 + 1.0)
    entry["timings"]["wait"] = entry["time"]
    entry["_webSocketMessages"] = msgs
    return entry


def _entry_text(entry: dict[str, Any], first: bool) -> str:
    """The entry as Chrome writes it inside ``log.entries`` (two-space indent, depth 3)."""
    text = json.dumps(entry, indent=2, ensure_ascii=False)
    pad = " " * 6
    return ("\n" if first else ",\n") + "\n".join(pad + line for line in text.split("\n"))


def write_har(
    out: Path, seed_path: Path, size: int, messages: int, max_bytes: int
) -> tuple[int, int, int]:
    """Write the HAR; returns (bytes, sockets, messages)."""
    har, ws_seed, others = load_seed(seed_path)
    rng = random.Random(6455)
    log = {k: v for k, v in har["log"].items() if k != "entries"}
    head = json.dumps({"log": {**log, "entries": []}}, indent=2, ensure_ascii=False)
    # head ends with '"entries": []\n  }\n}': entries are written between the brackets.
    cut = head.rindex("[]")
    prefix, suffix = head[:cut] + "[", "\n    ]" + head[cut + 2 :] + "\n"
    sockets = total = 0
    with out.open("w", encoding="utf-8", buffering=1 << 20) as f:
        f.write(prefix)
        written = len(prefix.encode())
        first = True
        for entry in others:
            text = _entry_text(entry, first)
            f.write(text)
            written += len(text.encode())
            first = False
        while written + len(suffix) < size:
            text = _entry_text(make_entry(ws_seed, sockets, messages, max_bytes, rng), first)
            f.write(text)
            written += len(text.encode())
            first = False
            sockets += 1
            total += messages
        f.write(suffix)
        written += len(suffix.encode())
    return written, sockets, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=70)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--messages", type=int, default=240, help="messages per socket")
    ap.add_argument("--max-message-bytes", type=int, default=256)
    ap.add_argument("--seed-file", type=Path, default=SEED)
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    out = args.out or DATA / f"large-{int(args.size_mb)}mb.har"
    size, sockets, messages = write_har(
        out, args.seed_file, int(args.size_mb * 1e6), args.messages, args.max_message_bytes
    )
    print(
        f"{out}: {size / 1e6:.1f} MB, {sockets} sockets, {messages} messages "
        f"(seed {args.seed_file})"
    )
    # The file must be what it claims: one JSON document.
    json.loads(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
