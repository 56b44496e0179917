"""Connections as tshark sees them, and as a HAR records them, for the hop tests.

The hop linker takes the session model; these loaders fill it from tshark's dissection (a
second, independent reader of the same captures) and from a HAR's JSON, so that the hop
tests exercise real captures whatever the state of the project's own readers. The tests
in test_hops.py run the same checks through ``analyzer.pipeline.load_capture`` as well.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from analyzer.session.build import summarize_close
from analyzer.session.model import (
    Capture,
    Connection,
    Fact,
    Headers,
    Location,
    Message,
    Request,
    Response,
)
from analyzer.vocabulary import CloseSeen

HOPS = Path(__file__).resolve().parents[1] / "data" / "hops"
PCAP_FACTS = frozenset(f.value for f in Fact)
HAR_FACTS = frozenset(
    {Fact.HANDSHAKE_REQUEST, Fact.HANDSHAKE_RESPONSE, Fact.MESSAGES, Fact.MESSAGE_PAYLOADS}
)

# Packets that can matter: handshakes, frames, and how the TCP connection ended.
KEEP = "http or websocket or tcp.flags.fin == 1 or tcp.flags.reset == 1"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _one(layer: dict[str, Any], name: str) -> Any:
    value = layer.get(name)
    return value[0] if isinstance(value, list) else value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _inner(layer: Any) -> Any:
    """The innermost of repeated layers (IP in IP, tunnels)."""
    return layer[-1] if isinstance(layer, list) else layer


def _headers(lines: Any) -> Headers:
    pairs = []
    for line in _as_list(lines):
        name, _, value = line.rstrip("\r\n").partition(":")
        pairs.append((name, value.strip()))
    return Headers.of(pairs)


def _walk(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _find(obj: Any, name: str) -> Any:
    for k, v in _walk(obj):
        if k == name:
            return v
    return None


def _payload_size(ws: dict[str, Any]) -> int:
    """Application payload bytes: tshark's decompressed payload when RSV1 is set."""
    if _find(ws, "websocket.pmc") == "1":
        for name in ("websocket.payload.text_raw", "websocket.payload.binary_raw"):
            raw = _find(ws, name)
            if raw:
                return len(raw[0]) // 2
    return int(_find(ws, "websocket.payload_length") or 0)


def read_with_tshark(path: Path) -> Capture:
    """Every flow that carries an upgrade request (or a request with a WebSocket key)."""
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", KEEP, "-T", "json", "-x", "--no-duplicate-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    flows: dict[int, dict[str, Any]] = {}
    for pkt in json.loads(out):
        layers = pkt["_source"]["layers"]
        frame, tcp = layers["frame"], _inner(layers.get("tcp"))
        if tcp is None:
            continue
        ip = _inner(layers.get("ip") or layers.get("ipv6")) or {}
        src_ip = _one(ip, "ip.src") or _one(ip, "ipv6.src")
        dst_ip = _one(ip, "ip.dst") or _one(ip, "ipv6.dst")
        src = f"{src_ip}:{_one(tcp, 'tcp.srcport')}"
        dst = f"{dst_ip}:{_one(tcp, 'tcp.dstport')}"
        stream = int(_one(tcp, "tcp.stream"))
        number, time = int(_one(frame, "frame.number")), float(_one(frame, "frame.time_epoch"))
        flow = flows.setdefault(stream, {"events": [], "first": (src, dst, time, number)})
        flow["events"].append((number, time, src, dst, layers))
    conns = []
    for stream, flow in sorted(flows.items()):
        conn = _connection(path, stream, flow["events"], len(conns))
        if conn is not None:
            conns.append(conn)
    return Capture(
        path=str(path),
        format="pcapng" if path.suffix == ".pcapng" else "pcap",
        creator="tshark",
        creator_version=None,
        can_show=PCAP_FACTS,
        connections=tuple(conns),
    )


def _connection(path: Path, stream: int, events: list[Any], n: int) -> Connection | None:
    request = response = None
    client = server = None
    start = None
    messages: list[Message] = []
    closes: list[CloseSeen] = []
    transport = "open"
    for number, time, src, dst, layers in events:
        http = layers.get("http")
        if isinstance(http, dict) and request is None and "http.request.line" in http:
            method = _find(http, "http.request.method")
            target = _find(http, "http.request.uri")
            headers = _headers(http["http.request.line"])
            if headers.get("Sec-WebSocket-Key") is None:
                return None
            loc = Location(str(path), packet=number, stream=stream, direction="client")
            request = Request(method, target, headers, _find(http, "http.request.version"), loc)
            client, server, start = src, dst, time
        elif isinstance(http, dict) and response is None and "http.response.code" in str(http):
            loc = Location(str(path), packet=number, stream=stream, direction="server")
            response = Response(
                int(_find(http, "http.response.code")),
                _headers(http.get("http.response.line")),
                _find(http, "http.response.phrase"),
                _find(http, "http.response.version"),
                loc,
            )
        flags = _find(_inner(layers["tcp"]), "tcp.flags_tree") or {}
        if transport == "open" and flags.get("tcp.flags.reset") == "1":
            transport = "rst"
        elif transport == "open" and flags.get("tcp.flags.fin") == "1":
            transport = "fin"
        if request is None:
            continue
        side = "client" if src == client else "server"
        for ws in _as_list(layers.get("websocket")):
            opcode = int(_find(ws, "websocket.opcode"))
            if opcode in (1, 2):
                messages.append(
                    Message(len(messages), side, time, opcode, _payload_size(ws), packet=number)
                )
            elif opcode == 8:
                code = _find(ws, "websocket.payload.close.status_code")
                closes.append(
                    CloseSeen(
                        side,
                        time,
                        int(code) if code else None,
                        _find(ws, "websocket.payload.close.reason"),
                        Location(str(path), packet=number, stream=stream, direction=side),
                    )
                )
    if request is None:
        return None
    close, end = summarize_close(closes, messages, transport)
    return Connection(
        id=f"{path.stem}#{n}",
        capture=str(path),
        url=f"ws://{request.headers.get('Host')}{request.target}",
        client=client,
        server=server,
        start=start,
        end_time=events[-1][1],
        request=request,
        response=response,
        messages=tuple(messages),
        frames=(),
        close=close,
        close_known=True,
        end=end,
        can_show=PCAP_FACTS,
        stream=stream,
    )


def read_har_json(path: Path) -> Capture:
    """WebSocket entries of a Chrome/Playwright HAR: no endpoints, no closes."""
    log = json.loads(path.read_text())["log"]
    conns = []
    for index, entry in enumerate(log["entries"]):
        if "_webSocketMessages" not in entry:
            continue
        req, resp = entry["request"], entry["response"]
        start = datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00"))
        messages = []
        for k, m in enumerate(entry["_webSocketMessages"]):
            t = float(m["time"])
            t = t / 1000 if t > 1e11 else t  # Playwright writes milliseconds
            if m["opcode"] not in (1, 2):
                continue
            size = len(m["data"].encode()) if m["opcode"] == 1 else len(m["data"]) * 3 // 4
            side = "client" if m["type"] == "send" else "server"
            messages.append(
                Message(len(messages), side, t, m["opcode"], size, entry=index, entry_message=k)
            )
        conns.append(
            Connection(
                id=f"{path.stem}#{len(conns)}",
                capture=str(path),
                url=req["url"],
                client=None,
                server=None,
                start=start.timestamp(),
                end_time=None,
                request=Request(
                    req["method"],
                    "/" + req["url"].split("/", 3)[3],
                    Headers.of([(h["name"], h["value"]) for h in req["headers"]]),
                ),
                response=Response(
                    resp["status"], Headers.of([(h["name"], h["value"]) for h in resp["headers"]])
                ),
                messages=tuple(messages),
                frames=None,
                close=None,
                close_known=False,
                end="unknown",
                can_show=HAR_FACTS,
                location=Location(str(path), entry=index),
            )
        )
    return Capture(str(path), "har", "Playwright", None, HAR_FACTS, tuple(conns))


@needs_tshark
def test_tshark_loader_sees_both_legs_of_the_strip_case() -> None:
    cap = read_with_tshark(HOPS / "httpproxy-strip" / "both-legs.pcapng")
    assert [c.server.rsplit(":", 1)[1] for c in cap.connections if c.server] == ["3000", "8080"]
    assert [c.origin for c in cap.connections] == ["http://127.0.0.1:3000", None]
    assert all(c.close and c.close.code == 1008 for c in cap.connections)


def test_har_loader_reads_the_playwright_har() -> None:
    cap = read_har_json(HOPS / "browser" / "browser.har")
    (conn,) = cap.connections
    assert conn.origin == "http://127.0.0.1:3000"
    assert [m.side for m in conn.messages] == ["client"]
    assert conn.start is not None and abs(conn.messages[0].time - conn.start) < 5
