"""Captures the render tests are built on, and the edits that make the hostile and
secret-laden HARs from real exports (documented in tests/data/README.md, section render/).

``make_hostile_har``: the mitmproxy HAR of a real Chrome session, edited so that every
place captured text reaches a report carries an attack: URL, header names and values,
message payloads (text, JSON, binary with invalid UTF-8, a lone surrogate), an HTTP
Toolkit-style ``_webSocketClose`` reason, megabytes in one header and one message.

``make_secrets_har``: the Playwright HAR of the motivating case (examples/chat-1008),
with planted credentials in every place a secret can hide.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from analyzer.engine.findings import Evidence, Finding, NotEvaluable, Severity
from analyzer.pipeline import Analysis, load_capture
from analyzer.session.model import Capture, Location

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
MITM_HAR = TESTS / "data" / "render" / "mitmproxy-websocket.har"
CHAT_HAR = ROOT / "examples" / "chat-1008" / "browser.har"
CHAT_PCAP = ROOT / "examples" / "chat-1008" / "server-side.pcapng"
BOTH_PCAP = ROOT / "examples" / "chat-1008" / "both-legs.pcapng"

# Each would change the page's title (or add an element) if it ever ran.
TITLE_SCRIPT = "document.title='PWNED'"
ATTACKS = {
    "script": f"<script>{TITLE_SCRIPT}</script>",
    "svg": f'</svg></text><svg onload="{TITLE_SCRIPT}"><script>{TITLE_SCRIPT}</script>',
    "img": f'"><img src=x onerror="{TITLE_SCRIPT}" id="pwned-img">',
    "attr": f"' onmouseover='{TITLE_SCRIPT}' data-x='",
    "js": f"javascript:{TITLE_SCRIPT}",
    "style": "<style>body{display:none}</style>",
    "meta": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "control": "ctl\x00\x07\x1b[31mred\x1b[0m\u202eevil\u200b\r\nX-Injected: yes",
}
MEGA = 2 * 1024 * 1024


def make_hostile_har(dst: Path) -> Path:
    """Write the hostile HAR to ``dst`` (made at test time: it is 4 MB)."""
    har: dict[str, Any] = json.loads(MITM_HAR.read_text(encoding="utf-8"))
    entry = har["log"]["entries"][2]
    req = entry["request"]
    req["url"] = (
        "https://demo.piesocket.com/v3/" + ATTACKS["script"] + "?q=" + ATTACKS["img"] + "&notify"
    )
    headers = req["headers"]
    for h in headers:
        if h["name"] == "Origin":
            h["value"] = ATTACKS["js"]
        if h["name"] == "User-Agent":
            h["value"] = ATTACKS["attr"] + ATTACKS["svg"]
    headers += [
        {"name": "X-Evil", "value": ATTACKS["svg"]},
        {"name": "<b onclick=\"document.title='PWNED'\">X-Name</b>", "value": ATTACKS["style"]},
        {"name": "X-Control", "value": ATTACKS["control"]},
        {"name": "X-Meta", "value": ATTACKS["meta"]},
        {"name": "X-Huge", "value": "A" * MEGA},
    ]
    entry["response"]["headers"].append({"name": "X-Evil-Response", "value": ATTACKS["script"]})
    entry["response"]["statusText"] = ATTACKS["svg"]
    base = entry["_webSocketMessages"][0]["time"]
    binary = b"\xff\xfe\x00<script>" + TITLE_SCRIPT.encode() + b"</script>\xc3\x28"
    entry["_webSocketMessages"] += [
        {"type": "receive", "time": base + 1, "opcode": 1, "data": ATTACKS["script"]},
        {"type": "receive", "time": base + 2, "opcode": 1, "data": ATTACKS["svg"]},
        {
            "type": "send",
            "time": base + 3,
            "opcode": 1,
            "data": json.dumps({"html": "</pre>" + ATTACKS["script"], "n": 1}),
        },
        {"type": "send", "time": base + 4, "opcode": 1, "data": "bad \udcff surrogate"},
        {
            "type": "receive",
            "time": base + 5,
            "opcode": 2,
            "data": base64.b64encode(binary).decode(),
        },
        {"type": "receive", "time": base + 6, "opcode": 1, "data": ATTACKS["control"]},
        {"type": "receive", "time": base + 7, "opcode": 1, "data": "<" * MEGA},
    ]
    entry["_webSocketClose"] = {
        "code": 4000,
        "reason": ATTACKS["svg"],
        "timestamp": (base + 8) * 1000,
    }
    dst.write_text(json.dumps(har), encoding="utf-8")
    return dst


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJwbGFudGVkLXVzZXIiLCJuYW1lIjoiUGxhbnRlZCJ9."
    "c2VjcmV0LXNpZ25hdHVyZS1wbGFudGVk"
)
SECRETS = {
    "authorization": "Zm9vYmFyLXBsYW50ZWQtYmVhcmVy",
    "proxy_authorization": "cHJveHktcGxhbnRlZC1zZWNyZXQ",
    "cookie": "c2Vzc2lvbi1jb29raWUtcGxhbnRlZA",
    "set_cookie": "c2V0LWNvb2tpZS1wbGFudGVkLXZhbA",
    "query_token": "cXVlcnktdG9rZW4tcGxhbnRlZA",
    "query_api_key": "YXBpLWtleS1wbGFudGVkLXZhbHVl",
    "json_password": "hunter2-planted-password",
    "json_token": "payload-token-planted-value",
    "jwt": JWT,
    "custom_header": "Y3VzdG9tLWhlYWRlci1wbGFudGVk",
    "custom_param": "Y3VzdG9tLXBhcmFtLXBsYW50ZWQ",
}


def make_secrets_har(dst: Path) -> Path:
    har: dict[str, Any] = json.loads(CHAT_HAR.read_text(encoding="utf-8"))
    entries = [e for e in har["log"]["entries"] if e.get("_webSocketMessages") is not None]
    entry = entries[0]
    s = SECRETS
    req = entry["request"]
    req["url"] = (
        req["url"]
        + f"&token={s['query_token']}&api_key={s['query_api_key']}&tenant={s['custom_param']}"
    )
    req["headers"] = copy.deepcopy(req["headers"]) + [
        {"name": "Authorization", "value": f"Bearer {s['authorization']}"},
        {"name": "Proxy-Authorization", "value": f"Basic {s['proxy_authorization']}"},
        {"name": "Cookie", "value": f"session={s['cookie']}; theme=dark"},
        {"name": "Sec-WebSocket-Protocol", "value": f"chat, authorization.bearer.{s['jwt']}"},
        {"name": "X-Tenant-Key", "value": s["custom_header"]},
        {"name": "Referer", "value": f"http://127.0.0.1:3000/?token={s['query_token']}"},
    ]
    entry["response"]["headers"] = list(entry["response"]["headers"]) + [
        {"name": "Set-Cookie", "value": f"sid={s['set_cookie']}; Path=/; HttpOnly"},
        {"name": "Sec-WebSocket-Protocol", "value": "chat"},
    ]
    base = entry["_webSocketMessages"][0]["time"]
    entry["_webSocketMessages"] += [
        {
            "type": "send",
            "time": base + 1,
            "opcode": 1,
            "data": json.dumps(
                {"type": "login", "password": s["json_password"], "access_token": s["json_token"]}
            ),
        },
        {"type": "receive", "time": base + 2, "opcode": 1, "data": f"your token is {s['jwt']}"},
        # cut off inside the secret: a preview shorter than the message
        {
            "type": "send",
            "time": base + 3,
            "opcode": 1,
            "data": '{"password": "' + s["json_password"] + '", "pad": "' + "x" * 5000 + '"}',
        },
    ]
    dst.write_text(json.dumps(har), encoding="utf-8")
    return dst


def chat_findings(capture: Capture) -> tuple[tuple[Finding, ...], tuple[NotEvaluable, ...]]:
    """Findings as the rules would make them for the motivating case, built here so the
    golden files do not move when a rule's wording changes. Evidence points at real
    records of the capture."""
    conn = capture.connections[0]
    assert conn.close is not None and conn.request is not None
    close = conn.close
    first = conn.messages[0]
    findings = (
        Finding(
            rule="close-1008-after-first-message",
            title="Server closed with 1008 right after the client's first message",
            severity=Severity.CRITICAL,
            connection=conn.id,
            message=(
                f"The server closed the connection with 1008 Policy Violation "
                f"({close.reason!r}) right after the client's first message"
            ),
            evidence=(
                Evidence("server sent close 1008", close.location, frame=close.frame_index),
                Evidence(
                    "first client message",
                    first.location(conn.capture, conn.stream),
                    message=first.index,
                ),
            ),
            why="Servers that check Origin often judge on the first message.",
            fix="Make the proxy forward Origin.",
            references=("RFC 6455 section 7.4.1",),
            tags=("close",),
            time=close.time,
        ),
        Finding(
            rule="origin-missing",
            title="Upgrade request without an Origin header",
            severity=Severity.HIGH,
            connection=conn.id,
            message="The upgrade request carried no Origin header",
            evidence=(
                Evidence(
                    "no Origin header in the upgrade request",
                    conn.request.location,
                    header="Origin",
                ),
                Evidence("request header User-Agent", conn.request.location, header="User-Agent"),
            ),
            why="Browsers always send Origin.",
            fix="Set Origin, or make the proxy pass it.",
            tags=("origin",),
            time=conn.start,
        ),
    )
    not_evaluable = (
        NotEvaluable(
            rule="close-not-echoed",
            title="Close not answered",
            connection=conn.id,
            reason="this capture does not show the transport end",
            advice="capture on both hosts",
            missing=("transport_end",),
        ),
    )
    return findings, not_evaluable


def chat_analysis() -> Analysis:
    """The motivating case's server-side pcap, loaded by path relative to the repo root
    (so the report's paths do not depend on the checkout's location)."""
    capture = load_capture(CHAT_PCAP.relative_to(ROOT))
    findings, ne = chat_findings(capture)
    return Analysis(
        captures=(capture,),
        findings=findings,
        not_evaluable=ne,
        rules_run=("close-1008-after-first-message", "origin-missing", "close-not-echoed"),
    )


def mitm_analysis() -> Analysis:
    """Three connections from a real Chrome session exported by mitmproxy; no findings."""
    capture = load_capture(MITM_HAR.relative_to(ROOT))
    ne = tuple(
        NotEvaluable(
            rule="close-not-echoed",
            title="Close not answered",
            connection=c.id,
            reason="mitmproxy HAR exports record no close frames",
            advice="capture with tcpdump or HTTP Toolkit",
            missing=("close_frames",),
        )
        for c in capture.connections
    )
    return Analysis(captures=(capture,), not_evaluable=ne, rules_run=("close-not-echoed",))


def hostile_finding(capture: Capture) -> Finding:
    """A finding whose text carries the attacks too (rule messages quote captured text)."""
    conn = capture.connections[-1]
    return Finding(
        rule="hostile-echo",
        title="Finding quoting " + ATTACKS["script"],
        severity=Severity.HIGH,
        connection=conn.id,
        message="Captured text: " + ATTACKS["svg"] + ATTACKS["img"],
        evidence=(
            Evidence(ATTACKS["js"], Location(capture.path, entry=2), header="X-Evil"),
            Evidence(ATTACKS["control"], Location(capture.path, entry=2, message=3), message=3),
        ),
        why=ATTACKS["style"],
        fix=ATTACKS["meta"],
        references=(ATTACKS["js"],),
        time=conn.start,
    )


def hostile_analysis(tmp: Path) -> Analysis:
    """The hostile HAR, loaded (no rule engine: this tests the renderers alone), with a
    finding that quotes the attacks as a rule's message would."""
    capture = load_capture(make_hostile_har(tmp / "hostile.har"))
    return Analysis(captures=(capture,), findings=(hostile_finding(capture),), rules_run=("x",))


def secrets_analysis(tmp: Path) -> Analysis:
    capture = load_capture(make_secrets_har(tmp / "secrets.har"))
    conn = capture.connections[0]
    auth = conn.request.headers.get("Authorization") if conn.request else None
    finding = Finding(
        rule="planted",
        title="A finding quoting the URL",
        severity=Severity.MEDIUM,
        connection=conn.id,
        message=f"The client connected to {conn.url} with {auth}",
        evidence=(
            Evidence(f"URL {conn.url}", conn.location),
            Evidence(f"request header Cookie: session={SECRETS['cookie']}; theme=dark"),
            Evidence(f"request header X-Tenant-Key: {SECRETS['custom_header']}"),
        ),
    )
    return Analysis(captures=(capture,), findings=(finding,), rules_run=("planted",))
