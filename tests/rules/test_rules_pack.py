"""The built-in rule pack: schema, examples, and behaviour on real captures.

Captures come from real software: the public corpus (tests/data/pcap, rows in
tests/data/MANIFEST.md), the hop captures (tests/data/hops) and the loopback captures
made for this pack (tests/data/loopback, made by tests/data/loopback/make/make_loopback.py
with Python websockets 17.4 and nginx; see tests/data/README.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from analyzer.engine.evaluate import run_examples
from analyzer.engine.findings import Severity
from analyzer.engine.loader import parse_rule
from analyzer.pipeline import Analysis, Options, analyze

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
DATA = ROOT / "tests" / "data"
LOOP = DATA / "loopback"
RULE_FILES = sorted(RULES.glob("*.yaml"))


@cache
def analysis_of(path: Path) -> Analysis:
    return analyze([path], Options())


def fired(path: Path, rule: str) -> list[str]:
    """Connection ids on which ``rule`` fired in ``path``."""
    return [f.connection or "" for f in analysis_of(path).findings if f.rule == rule]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_schema_accepts_every_builtin_rule(path: Path) -> None:
    schema = json.loads((RULES / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["id"] == path.stem


def test_schema_rejects_a_rule_without_examples() -> None:
    schema = json.loads((RULES / "schema.json").read_text())
    data = yaml.safe_load((RULES / "origin-missing.yaml").read_text())
    del data["examples"]
    with pytest.raises(jsonschema.ValidationError, match="'examples' is a required property"):
        jsonschema.Draft202012Validator(schema).validate(data)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_examples(path: Path) -> None:
    rule = parse_rule(path, builtin=True)
    results = run_examples(rule)
    assert results, "a rule without examples"
    assert any(r.kind == "match" for r in results)
    assert any(r.kind == "no_match" for r in results)
    failures = [f"{r.kind} {r.name!r}: {r.detail}" for r in results if not r.ok]
    assert not failures, failures


# rule id -> (capture, connection id it must fire on)
FIRES: dict[str, tuple[Path, str]] = {
    "origin-missing": (LOOP / "no-origin-1008.pcapng", "no-origin-1008#0"),
    "origin-stripped-by-proxy": (
        DATA / "hops" / "httpproxy-strip" / "server-leg.pcapng",
        "server-leg#0",
    ),
    "close-1008-after-first-message": (LOOP / "no-origin-1008.pcapng", "no-origin-1008#0"),
    "policy-violation-close": (LOOP / "foreign-origin-1008.pcapng", "foreign-origin-1008#0"),
    "handshake-rejected": (
        DATA / "hops" / "nginx-dead-upstream" / "client-leg.pcapng",
        "client-leg#2",
    ),
    "abnormal-closure": (LOOP / "abnormal-rst.pcapng", "abnormal-rst#0"),
    "close-not-echoed": (LOOP / "raw-violations.pcapng", "raw-violations#6"),
    "invalid-close-code": (LOOP / "raw-violations.pcapng", "raw-violations#5"),
    "unmasked-client-frame": (LOOP / "raw-violations.pcapng", "raw-violations#0"),
    "masked-server-frame": (LOOP / "masked-server.pcapng", "masked-server#0"),
    "wrong-accept-header": (
        DATA / "pcap" / "zeek" / "wrong-accept-header.pcap",
        "wrong-accept-header#0",
    ),
    "reserved-bits-without-extension": (LOOP / "raw-violations.pcapng", "raw-violations#1"),
    "control-frame-too-long": (LOOP / "raw-violations.pcapng", "raw-violations#2"),
    "fragmented-control-frame": (LOOP / "raw-violations.pcapng", "raw-violations#3"),
    "invalid-utf8": (LOOP / "raw-violations.pcapng", "raw-violations#4"),
    "subprotocol-not-offered": (LOOP / "subprotocol-wrong.pcapng", "subprotocol-wrong#0"),
    "subprotocol-not-selected": (LOOP / "subprotocol-none.pcapng", "subprotocol-none#0"),
    "deflate-failure": (LOOP / "deflate-garbage.pcapng", "deflate-garbage#0"),
    "origin-host-mismatch": (LOOP / "foreign-origin-1008.pcapng", "foreign-origin-1008#0"),
    "token-in-url": (LOOP / "token-in-url.pcapng", "token-in-url#0"),
    "idle-timeout-close": (LOOP / "idle-timeout.pcapng", "idle-timeout#0"),
    "close-going-away-1001": (LOOP / "going-away-1001.pcapng", "going-away-1001#0"),
    "close-protocol-error-1002": (LOOP / "raw-violations.pcapng", "raw-violations#0"),
    "close-invalid-payload-1007": (LOOP / "raw-violations.pcapng", "raw-violations#4"),
    "close-message-too-big-1009": (
        DATA / "pcap" / "zeek" / "message-too-big-status.pcap",
        "message-too-big-status#0",
    ),
    "close-internal-error-1011": (LOOP / "internal-error-1011.pcapng", "internal-error-1011#0"),
    "close-service-restart-1012": (LOOP / "close-codes.pcapng", "close-codes#0"),
    "close-try-again-later-1013": (LOOP / "close-codes.pcapng", "close-codes#1"),
    "close-bad-gateway-1014": (LOOP / "close-codes.pcapng", "close-codes#2"),
    "close-application-code-4xxx": (LOOP / "close-codes.pcapng", "close-codes#3"),
}

CONNECTION_RULES = sorted(
    p.stem for p in RULE_FILES if yaml.safe_load(p.read_text())["scope"] == "connection"
)


def test_every_connection_rule_has_a_real_capture() -> None:
    assert sorted(FIRES) == CONNECTION_RULES


@pytest.mark.parametrize("rule", sorted(FIRES))
def test_rule_fires_on_a_real_capture(rule: str) -> None:
    path, connection = FIRES[rule]
    assert connection in fired(path, rule)


@pytest.mark.parametrize("rule", sorted(FIRES))
def test_rule_is_quiet_on_a_clean_session(rule: str) -> None:
    assert fired(LOOP / "clean.pcapng", rule) == []


CLEAN = [
    LOOP / "clean.pcapng",  # Chrome User-Agent, same-origin Origin, 3 echoes, close 1000
    DATA / "hops" / "nginx-pass" / "client-leg.pcapng",  # through nginx, Origin allowed
    DATA / "pcap" / "zeek" / "websocket_baseline.pcap",  # websockets 16, close 1000
]


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name)
def test_clean_sessions_have_no_finding_at_medium_or_above(path: Path) -> None:
    analysis = analysis_of(path)
    assert analysis.captures[0].connections
    serious = [(f.rule, f.message) for f in analysis.findings if f.severity >= Severity.MEDIUM]
    assert serious == []


def test_loopback_clean_session_has_no_finding_at_all() -> None:
    assert analysis_of(LOOP / "clean.pcapng").findings == ()


def test_motivating_case_headline() -> None:
    """No Origin, first message, 1008: the top finding says why, from the handshake."""
    top = analysis_of(LOOP / "no-origin-1008.pcapng").findings[0]
    assert top.rule == "close-1008-after-first-message"
    assert top.severity == Severity.CRITICAL
    assert top.message == (
        'The server closed the connection with 1008 Policy Violation ("origin not allowed") '
        "right after the client's first message. The upgrade request carried no Origin "
        "header: the server's origin check most likely rejected it."
    )


def test_origin_missing_follows_the_evidence() -> None:
    """Low on a session that works, high beside a 1008."""

    def levels(path: Path) -> set[Severity]:
        return {f.severity for f in analysis_of(path).findings if f.rule == "origin-missing"}

    # websockets 16 client without Origin, normal 1000 close
    assert levels(DATA / "pcap" / "zeek" / "websocket_baseline.pcap") == {Severity.LOW}
    assert levels(LOOP / "no-origin-1008.pcapng") == {Severity.HIGH}
    assert levels(LOOP / "clean.pcapng") == set()


def test_foreign_origin_is_named_as_the_cause() -> None:
    f = next(
        f
        for f in analysis_of(LOOP / "foreign-origin-1008.pcapng").findings
        if f.rule == "close-1008-after-first-message"
    )
    assert "Its Origin https://evil.example is foreign to the host 127.0.0.1:9103" in f.message


def test_handshake_rejected_names_the_status_and_the_missing_origin() -> None:
    """websockets' process_request answering 403 to a client without Origin."""
    found = [
        f
        for f in analysis_of(LOOP / "rejected-403.pcapng").findings
        if f.rule == "handshake-rejected"
    ]
    assert [f.message for f in found] == [
        "The upgrade was answered with HTTP 403 Forbidden instead of 101 Switching Protocols: "
        "refused by policy, most often an origin check (Origin absent or not allowed) or "
        "missing credentials; note the request carried no Origin header."
    ]
    assert found[0].evidence[0].label == "the server answered the upgrade with 403 Forbidden"
    assert found[0].evidence[0].location is not None
    assert found[0].evidence[0].location.packet == 6  # as tshark numbers it


def test_token_in_url_evidence_does_not_copy_the_token() -> None:
    found = next(
        f for f in analysis_of(LOOP / "token-in-url.pcapng").findings if f.rule == "token-in-url"
    )
    assert [e.label for e in found.evidence] == [
        "request-target /chat?access_token=... (query values not shown)",
        "severity medium: the parameter is named as a token or password, or its value is a JWT",
    ]
    assert found.severity == Severity.MEDIUM
    jupyter = analysis_of(DATA / "pcap" / "zeek" / "jupyter-websocket.pcap")
    assert [f.severity for f in jupyter.findings if f.rule == "token-in-url"] == [Severity.LOW]
    assert "eyJ" not in found.message


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_every_builtin_rule_is_documented(path: Path) -> None:
    """What, why, fix, and references a reader can follow (an RFC, MDN or vendor page)."""
    data = yaml.safe_load(path.read_text())
    assert len(data["why"].split()) >= 20
    assert len(data["fix"].split()) >= 10
    assert all("https://" in ref for ref in data["references"])
    assert any(
        "rfc-editor.org" in ref or "developer.mozilla.org" in ref for ref in data["references"]
    )
