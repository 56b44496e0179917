"""Derive exporter-quirk HARs from real exports, each edit stated beside it.

Every file written to ``../derived/`` starts from a real export (a corpus HAR or the
Playwright HAR made by make_playwright_har.py) and changes only what the named exporter
writes differently. Rerun with ``python derive.py``; the output is committed.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
OUT = DATA / "derived"

MITM = DATA / "corpus" / "websocket.har"  # mitmproxy 1.2.3 export of a Chrome 114 session
PCAP2HAR = DATA / "corpus" / "test_websocket.py-test_websocket_parse.har"
PLAYWRIGHT = DATA / "playwright" / "playwright-embed.har"  # real, made on loopback

CREDENTIALS = {"cookie", "authorization", "set-cookie"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save(name: str, data: object) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


def wss(url: str) -> str:
    return "wss://" + url.removeprefix("https://")


def chrome_sanitized() -> None:
    """Chrome DevTools "Export HAR (sanitized)": creator WebInspector, wss:// URLs, and
    Cookie / Set-Cookie / Authorization headers and cookie lists removed."""
    har = load(MITM)
    har["log"]["creator"] = {"name": "WebInspector", "version": "537.36"}
    for e in har["log"]["entries"]:
        e["request"]["url"] = wss(e["request"]["url"])
        for part in ("request", "response"):
            e[part]["headers"] = [
                h for h in e[part]["headers"] if h["name"].lower() not in CREDENTIALS
            ]
            e[part]["cookies"] = []
    save("chrome-sanitized.har", har)


def chrome_error() -> None:
    """Chrome records a WebSocket error as a message of type "error" (data: the error
    text): one appended to entry 2 after its last message."""
    har = load(MITM)
    har["log"]["creator"] = {"name": "WebInspector", "version": "537.36"}
    e = har["log"]["entries"][2]
    e["request"]["url"] = wss(e["request"]["url"])
    last = e["_webSocketMessages"][-1]["time"]
    e["_webSocketMessages"].append(
        {"type": "error", "time": last + 0.5, "opcode": -1, "data": "net::ERR_CONNECTION_RESET"}
    )
    har["log"]["entries"] = [e]
    save("chrome-error.har", har)


def httptoolkit() -> None:
    """HTTP Toolkit: creator "HTTP Toolkit", header names lower case as Node gives them, no
    serverIPAddress, and ``_webSocketClose``: entry 0 closed 1008 with a reason, entry 1
    "aborted", entry 2 closed 1000 with an empty reason. Timestamps in seconds."""
    har = load(MITM)
    har["log"]["creator"] = {"name": "HTTP Toolkit", "version": "1.19.0"}
    closes: list[object] = [
        {"code": 1008, "reason": "Unknown api key"},
        "aborted",
        {"code": 1000, "reason": ""},
    ]
    for e, close in zip(har["log"]["entries"], closes, strict=True):
        for part in ("request", "response"):
            e[part]["headers"] = [
                {"name": h["name"].lower(), "value": h["value"]} for h in e[part]["headers"]
            ]
        e.pop("serverIPAddress", None)
        if isinstance(close, dict):
            close["timestamp"] = e["_webSocketMessages"][-1]["time"] + 0.25
        e["_webSocketClose"] = close
    save("httptoolkit.har", har)


def firefox() -> None:
    """Firefox "Save All As HAR": creator and browser Firefox, the 101 entry (entry 2) alone
    with a wss:// URL, no _resourceType and no _webSocketMessages."""
    har = load(MITM)
    har["log"]["creator"] = {"name": "Firefox", "version": "128.0"}
    har["log"]["browser"] = {"name": "Firefox", "version": "128.0"}
    e = har["log"]["entries"][2]
    e["request"]["url"] = wss(e["request"]["url"])
    del e["_webSocketMessages"], e["_resourceType"]
    har["log"]["entries"] = [e]
    save("firefox.har", har)


def safari() -> None:
    """Safari Web Inspector: creator "WebKit Web Inspector", no ``pages``, the 101 entry
    (entry 0) alone with a wss:// URL, empty httpVersion, no _resourceType and no
    _webSocketMessages."""
    har = load(MITM)
    har["log"]["creator"] = {"name": "WebKit Web Inspector", "version": "17.4"}
    del har["log"]["pages"]
    e = har["log"]["entries"][0]
    e["request"]["url"] = wss(e["request"]["url"])
    e["request"]["httpVersion"] = ""
    e["response"]["httpVersion"] = ""
    del e["_webSocketMessages"], e["_resourceType"]
    har["log"]["entries"] = [e]
    save("safari.har", har)


def http2() -> None:
    """WebSocket over HTTP/2 (RFC 8441) as Chrome exports it: status 200, httpVersion
    "h2", request headers are pseudo-headers (:method CONNECT, :protocol websocket,
    :scheme, :path, :authority) and no Upgrade/Connection/Sec-WebSocket-Key/Accept."""
    har = load(PLAYWRIGHT)
    har["log"]["creator"] = {"name": "WebInspector", "version": "537.36"}
    e = next(x for x in har["log"]["entries"] if x.get("_resourceType") == "websocket")
    url = e["request"]["url"]
    authority = url.split("/")[2]
    path = "/" + url.split("/", 3)[3]
    e["request"]["url"] = "wss://" + url.removeprefix("ws://")
    drop = {"upgrade", "connection", "sec-websocket-key", "sec-websocket-accept", "host"}
    pseudo = [
        {"name": ":method", "value": "CONNECT"},
        {"name": ":protocol", "value": "websocket"},
        {"name": ":scheme", "value": "https"},
        {"name": ":path", "value": path},
        {"name": ":authority", "value": authority},
    ]
    e["request"]["headers"] = pseudo + [
        h for h in e["request"]["headers"] if h["name"].lower() not in drop
    ]
    e["response"]["headers"] = [
        h for h in e["response"]["headers"] if h["name"].lower() not in drop
    ]
    e["request"]["httpVersion"] = e["response"]["httpVersion"] = "h2"
    e["response"]["status"] = 200
    e["response"]["statusText"] = ""
    for m in e["_webSocketMessages"]:
        m["time"] = m["time"] / 1000.0  # Chrome writes seconds, Playwright milliseconds
    har["log"]["entries"] = [e]
    save("http2.har", har)


def control_opcodes() -> None:
    """An exporter that writes control frames into the message list: a client ping
    (opcode 9) and server pong (10), then a server close 1008 "policy" and the client's
    close echo 1008, base64 as for every non-text opcode."""
    har = load(PCAP2HAR)
    e = har["log"]["entries"][0]
    msgs = e["_webSocketMessages"]
    t = msgs[-1]["time"]

    def close(code: int, reason: str) -> str:
        return base64.b64encode(code.to_bytes(2, "big") + reason.encode()).decode()

    msgs.insert(1, {"type": "send", "time": msgs[0]["time"] + 1, "opcode": 9, "data": ""})
    msgs.insert(2, {"type": "receive", "time": msgs[0]["time"] + 1.01, "opcode": 10, "data": ""})
    msgs.append({"type": "receive", "time": t + 1, "opcode": 8, "data": close(1008, "policy")})
    msgs.append({"type": "send", "time": t + 1.01, "opcode": 8, "data": close(1008, "")})
    save("control-opcodes.har", har)


def nulls() -> None:
    """Nulls and missing fields where real exporters leave them: no ``pages``, null
    creator version, null httpVersion, statusText, serverIPAddress, startedDateTime and
    cookies, a header with a null value, a message with a null time, a missing pageref."""
    har = load(MITM)
    del har["log"]["pages"]
    har["log"]["creator"]["version"] = None
    e = har["log"]["entries"][2]
    e["request"]["httpVersion"] = None
    e["response"]["statusText"] = None
    e["serverIPAddress"] = None
    e["startedDateTime"] = None
    e["request"]["cookies"] = None
    e["request"]["headers"].append({"name": "X-Empty", "value": None})
    e["_webSocketMessages"][1]["time"] = None
    e.pop("pageref", None)
    har["log"]["entries"] = [e]
    save("nulls.har", har)


def malformed() -> None:
    """One HAR with bad entries among good ones: entry 1 is a string, entry 3 has a
    string "request", entry 4 has a "_webSocketMessages" object instead of a list; the
    good WebSocket entry 2 carries bad messages (unknown type, a non-object, an opcode
    that is a string, binary data that is not base64)."""
    har = load(MITM)
    good = har["log"]["entries"]
    bad_messages = copy.deepcopy(good[2])
    bad_messages["_webSocketMessages"] += [
        {"type": "bogus", "time": 1693314245.0, "opcode": 1, "data": "x"},
        "not a message",
        {"type": "send", "time": 1693314246.0, "opcode": "1", "data": "y"},
        {"type": "receive", "time": 1693314247.0, "opcode": 2, "data": "%%not base64%%"},
    ]
    not_list = copy.deepcopy(good[1])
    not_list["_webSocketMessages"] = {"type": "send"}
    har["log"]["entries"] = [
        good[0],
        "oops",
        bad_messages,
        {"request": "GET / HTTP/1.1", "response": {"status": 101}},
        not_list,
    ]
    save("malformed-entries.har", har)


if __name__ == "__main__":
    for make in (
        chrome_sanitized,
        chrome_error,
        httptoolkit,
        firefox,
        safari,
        http2,
        control_opcodes,
        nulls,
        malformed,
    ):
        make()
