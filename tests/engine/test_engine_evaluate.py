"""run_rules on real captures: findings, evidence, not-evaluable advice, the view."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer.engine.cel import compile_template, split_template
from analyzer.engine.evaluate import run_rules
from analyzer.engine.view import VIEW_SCHEMA, connection_view
from analyzer.pipeline import Options, analyze, load_capture

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "rules"
LOOP = ROOT / "tests" / "data" / "loopback"
CHAT = ROOT / "examples" / "chat-1008"


def test_har_without_close_frames_is_not_evaluable_with_advice() -> None:
    """A Playwright HAR records no close frames: close rules say so, never pass silently."""
    analysis = analyze([CHAT / "browser.har"], Options())
    skipped = {n.rule: n for n in analysis.not_evaluable}
    n = skipped["close-1008-after-first-message"]
    assert n.missing == ("close_frames",)
    assert n.connection == analysis.captures[0].connections[0].id
    assert n.reason == "this capture (har from Playwright) cannot show close frames"
    assert "tcpdump -i any -w ws.pcap 'tcp port 8080'" in n.advice
    assert "HTTP Toolkit" in n.advice
    assert skipped["unmasked-client-frame"].missing == ("masks",)
    # rules the HAR can show are evaluated, not skipped
    assert "origin-missing" not in skipped
    assert "origin-missing" in analysis.rules_run


def test_findings_sorted_by_severity_then_time() -> None:
    analysis = analyze([LOOP / "no-origin-1008.pcapng", LOOP / "close-codes.pcapng"], Options())
    keys = [(-f.severity, f.time) for f in analysis.findings]
    assert keys == sorted(keys)
    assert analysis.findings[0].rule == "close-1008-after-first-message"


def test_select_and_ignore_reach_the_analysis() -> None:
    path = LOOP / "no-origin-1008.pcapng"
    only = analyze([path], Options(select=("origin",)))
    assert {f.rule for f in only.findings} == {"origin-missing", "close-1008-after-first-message"}
    assert "token-in-url" not in only.rules_run
    without = analyze([path], Options(ignore=("origin-missing", "policy-violation-close")))
    assert {f.rule for f in without.findings} == {"close-1008-after-first-message"}


def test_close_evidence_points_at_the_packet_tshark_shows() -> None:
    path = LOOP / "no-origin-1008.pcapng"
    finding = next(
        f for f in analyze([path], Options()).findings if f.rule == "close-1008-after-first-message"
    )
    close = finding.evidence[0]
    assert close.label.startswith("server sent close 1008 'origin not allowed' at +")
    assert close.label.endswith("after 1 client and 0 server messages")
    assert close.location is not None and close.frame is not None
    first = finding.evidence[2]
    assert first.label.startswith("first client message: text, ")
    assert first.message == 0
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "websocket.payload.close.status_code == 1008",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert close.location.packet == int(out[0])


def test_a_rule_that_fails_at_run_time_is_reported_not_hidden(tmp_path: Path) -> None:
    text = (BUILTIN / "token-in-url.yaml").read_text()
    start, end = text.index("when: |"), text.index("message: >-")
    # no null guard: connection.close is null on a connection that ended with a RST
    text = text[:start] + "when: connection.close.code == 1000\n" + text[end:]
    (tmp_path / "unguarded.yaml").write_text(text.replace("id: token-in-url", "id: unguarded"))
    analysis = analyze([LOOP / "abnormal-rst.pcapng"], Options(rule_dirs=(tmp_path,)))
    failed = [n for n in analysis.not_evaluable if n.rule == "unguarded"]
    assert len(failed) == 1
    assert failed[0].reason.startswith("the rule's condition failed here: ")
    assert "abnormal-closure" in {f.rule for f in analysis.findings}  # the others still run


def test_user_rule_reading_messages(tmp_path: Path) -> None:
    """A rule may read the heavy ``messages`` list; only such rules pay for it."""
    text = (BUILTIN / "token-in-url.yaml").read_text()
    start, end = text.index("when: |"), text.index("evidence:")
    text = (
        text[:start]
        + 'when: connection.messages.exists(m, m["from"] == "server" && m.size > 20)\n'
        + 'message: \'{connection.messages.filter(m, m["from"] == "server").size()} server'
        + ' messages, the first of {connection.messages.filter(m, m["from"] =='
        + ' "server")[0].size} bytes\'\n'
        + text[end:]
    )
    (tmp_path / "big-server-message.yaml").write_text(
        text.replace("id: token-in-url", "id: big-server-message")
    )
    capture = load_capture(LOOP / "clean.pcapng")
    first = next(m for m in capture.connections[0].messages if m.side == "server")
    analysis = run_rules((capture,), Options(rule_dirs=(tmp_path,), select=("big-server-message",)))
    assert analysis.rules_run == ("big-server-message",)
    assert [f.message for f in analysis.findings] == [
        f"3 server messages, the first of {first.size} bytes"
    ]


def test_view_of_a_real_connection() -> None:
    capture = load_capture(LOOP / "token-in-url.pcapng")
    view = connection_view(capture.connections[0], capture)
    assert set(view) == set(VIEW_SCHEMA["connection"].fields or {}) - {"messages", "frames"}
    assert view["host"] == "127.0.0.1:9106"
    assert view["origin"] == "http://127.0.0.1:9106"
    assert view["origin_matches_host"] is True
    assert view["query_keys"] == ["access_token"]
    assert view["request"]["headers_by_name"]["upgrade"] == ["websocket"]
    assert view["request"]["headers"][0]["name"] == "Host"
    assert view["is_browser_ua"] is True
    assert view["via_proxy"] is False
    assert view["accept_ok"] is True
    assert view["close"]["code"] == 1000
    assert view["message_count"] == {"client": 1, "server": 1}
    assert view["pings"] == {"client": 0, "server": 0}


def test_view_of_a_har_connection_keeps_unknowns_null() -> None:
    capture = load_capture(CHAT / "browser.har")
    view = connection_view(capture.connections[0], capture)
    assert view["close"] is None
    assert view["close_known"] is False
    assert view["frames_known"] is False
    assert view["pings"] is None
    assert view["client"] is None


def test_template_pieces_and_escapes() -> None:
    assert split_template("a {{literal}} {x.y} b") == [
        ("a {literal} ", 0, False),
        ("x.y", 15, True),
        (" b", 19, False),
    ]
    t = compile_template('close {connection.close == null ? "none" : "x"}', VIEW_SCHEMA)
    assert len(t.parts) == 2


def _real_connections() -> list[tuple[Path, int]]:
    data = ROOT / "tests" / "data"
    paths = [
        p
        for sub in ("pcap", "loopback", "hops")
        for p in sorted((data / sub).rglob("*"))
        if p.suffix in (".pcap", ".pcapng") and p.stat().st_size < 300_000
    ]
    return [(p, len(load_capture(p).connections)) for p in paths]


def test_view_handshake_facts_equal_the_model_on_every_real_connection() -> None:
    """The view computes these from its own header maps (for speed): same answers."""
    checked = 0
    for path, _ in _real_connections():
        capture = load_capture(path)
        for c in capture.connections:
            v = connection_view(c, capture)
            assert (v["key"], v["accept"], v["expected_accept"], v["accept_ok"]) == (
                c.key,
                c.accept,
                c.expected_accept,
                c.accept_ok,
            ), c.id
            assert v["subprotocols_offered"] == list(c.subprotocols_offered), c.id
            assert v["subprotocol_selected"] == c.subprotocol_selected, c.id
            assert v["extensions_offered"] == list(c.extensions_offered), c.id
            assert v["extensions_negotiated"] == list(c.extensions_negotiated), c.id
            assert v["extension_names"] == list(c.extension_names), c.id
            assert v["origin"] == c.origin and v["user_agent"] == c.user_agent, c.id
            checked += 1
    assert checked > 50


def test_packed_evaluation_agrees_with_rule_by_rule() -> None:
    """The pack is evaluated as one CEL list over the fields the rules read; on every real
    connection that gives each rule the answer it gives alone over the full view."""
    from analyzer.engine.evaluate import _activation, _pack_program, truth
    from analyzer.engine.loader import load_rules
    from analyzer.engine.scopes import SCOPES

    rules = [r for r in load_rules().rules if r.scope == "connection" and not r.heavy]
    fields = frozenset().union(*(r.fields or frozenset() for r in rules))
    compared = 0
    for path, _ in _real_connections():
        for item in SCOPES["connection"].items((load_capture(path),)):
            packed = _pack_program("connection", rules).eval(
                _activation(item, "connection", frozenset(), fields)
            )
            assert packed.type().name().upper().startswith("LIST")
            full = _activation(item, "connection", frozenset(), None)
            alone = [truth(r.when.program.eval(full))[0] for r in rules]
            assert packed.plain_value() == alone, item.connection
            compared += 1
    assert compared > 50


def test_capture_scope_rule(tmp_path: Path) -> None:
    """A user rule may judge a whole capture (scope: capture)."""
    text = (BUILTIN / "token-in-url.yaml").read_text()
    start, end = text.index("scope: connection"), text.index("evidence:")
    text = (
        text[:start]
        + "scope: capture\nrequires: []\n"
        + "when: capture.connections.filter(c, c.close != null && c.close.code == 1008)"
        + ".size() >= 1\n"
        + "message: '{capture.connections.filter(c, c.close != null && c.close.code == 1008)"
        + ".size()} of {capture.connection_count} connections closed with 1008'\n"
        + text[end:]
    )
    text = text.replace("id: token-in-url", "id: many-1008")
    text = text.replace("connection: {url:", "capture: {connections: [], url:")
    text = text.replace("connection: {}", "capture: {connections: []}")
    text = text.replace("      connection:\n        url:", "      capture:\n        url:")
    (tmp_path / "many-1008.yaml").write_text(text)
    analysis = analyze(
        [LOOP / "no-origin-1008.pcapng", LOOP / "clean.pcapng"],
        Options(rule_dirs=(tmp_path,), select=("many-1008",)),
    )
    assert [(f.connection, f.message) for f in analysis.findings] == [
        (None, "1 of 1 connections closed with 1008")
    ]


def test_every_view_field_is_documented() -> None:
    from analyzer.engine.view import CAPTURE, CONNECTION_FIELDS

    docs = (ROOT / "docs" / "rules.md").read_text()
    names = [f"`connection.{n}`" for n in CONNECTION_FIELDS]
    names += [f"`capture.{n}`" for n in CAPTURE.fields or {}]
    assert [n for n in names if n not in docs] == []


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("demo.piesocket.com", "piesocket.com"),
        ("www.piesocket.com", "piesocket.com"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("localhost", "localhost"),
        ("Evil.Example.", "evil.example"),
    ],
)
def test_site_of(host: str, site: str) -> None:
    from analyzer.engine.view import site_of

    assert site_of(host) == site


def test_subdomains_of_one_site_are_not_cross_site() -> None:
    """HAR from the piesocket demo: Origin www.piesocket.com, Host demo.piesocket.com."""
    analysis = analyze([ROOT / "tests" / "data" / "har" / "corpus" / "websocket.har"], Options())
    assert [f for f in analysis.findings if f.rule == "origin-host-mismatch"] == []
    view = connection_view(analysis.captures[0].connections[0], analysis.captures[0])
    assert (view["origin_matches_host"], view["origin_same_site"]) == (False, True)


def test_a_failing_placeholder_prints_a_question_mark(tmp_path: Path) -> None:
    text = (BUILTIN / "token-in-url.yaml").read_text()
    start, end = text.index("when: |"), text.index("evidence:")
    text = (
        text[:start]
        + "when: connection.close == null\n"
        + "message: 'ended {connection.end}, close code {connection.close.code}'\n"
        + text[end:]
    )
    (tmp_path / "no-close.yaml").write_text(text.replace("id: token-in-url", "id: no-close"))
    analysis = analyze(
        [LOOP / "abnormal-rst.pcapng"], Options(rule_dirs=(tmp_path,), select=("no-close",))
    )
    assert [f.message for f in analysis.findings] == ["ended rst, close code ?"]
