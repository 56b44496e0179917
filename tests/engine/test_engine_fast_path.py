"""The evaluator's fast path gives exactly what evaluating rule by rule gives.

``evaluate_item`` builds the connection view lazily (``LazyConnectionView``), evaluates the
pack's conditions as one CEL list over the fields they read, reuses that activation for
messages when it holds their fields, and evaluates every fired rule's placeholders and
escalations as one list. The reference here does none of that: the eager
``connection_view`` with the heavy fields, one activation holding everything, each
condition, escalation and message evaluated on its own. Findings and not-evaluable
records must be identical (their ``repr``, every field) on every connection of the test
captures and the chat-1008 example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analyzer.engine.evaluate import (
    _finding,
    _not_evaluable,
    activation_for,
    evaluate_item,
    sort_findings,
    truth,
)
from analyzer.engine.findings import Finding, NotEvaluable
from analyzer.engine.loader import Rule, load_rules
from analyzer.engine.scopes import SCOPES
from analyzer.engine.view import (
    HEAVY_FIELDS,
    LazyConnectionView,
    connection_view,
    heavy_field,
)
from analyzer.pipeline import load_capture
from analyzer.session.model import Capture

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _captures() -> list[Capture]:
    paths = [
        p
        for sub in ("loopback", "hops", "pcap", "har")
        for p in sorted((DATA / sub).rglob("*"))
        if p.suffix in (".pcap", ".pcapng", ".har") and p.stat().st_size < 3_000_000
    ]
    paths += sorted((ROOT / "examples" / "chat-1008").glob("*.*"))
    out = []
    for p in paths:
        if p.suffix not in (".pcap", ".pcapng", ".har"):
            continue
        cap = load_capture(p)
        if cap.connections:
            out.append(cap)
    return out


CAPTURES = _captures()

# Rules that exercise what the built-in pack does not: a heavy field, a placeholder and an
# escalation that fail on connections without a close (the one-by-one fallback), a
# message reading fields the condition does not.
PROBES = {
    "probe-heavy-and-errors": """
id: probe-heavy-and-errors
title: probe
severity: low
scope: connection
when: connection.message_count.client > 0
message: >-
  close {connection.close.code}, {connection.messages.size()} messages,
  {connection.origin}
escalate:
  - when: connection.close.code == 1000
    severity: medium
    because: normal close
why: test
fix: test
references: [RFC 6455]
tags: [test]
examples:
  match:
    - name: a client message
      connection: {message_count: {client: 1, server: 0}}
  no_match:
    - name: no client message
      connection: {message_count: {client: 0, server: 0}}
""",
    "probe-message-fields": """
id: probe-message-fields
title: probe
severity: info
scope: connection
when: connection.upgraded == true
message: "{connection.host} answered {connection.response.status} ({connection.anomalies})"
escalate:
  - when: connection.status == 101 && connection.request.method == "GET"
    severity: low
    because: upgraded
why: test
fix: test
references: [RFC 6455]
tags: [test]
examples:
  match:
    - name: upgraded
      connection: {upgraded: true}
  no_match:
    - name: refused
      connection: {upgraded: false}
""",
}


def _reference(
    rules: list[Rule], cap: Capture, cap_view: dict[str, Any]
) -> tuple[list[Finding], list[NotEvaluable]]:
    """Rule by rule over the whole eager view."""
    findings: list[Finding] = []
    skipped: list[NotEvaluable] = []
    items = {i.connection.id: i for i in SCOPES["connection"].items((cap,)) if i.connection}
    for conn in cap.connections:
        item = items[conn.id]
        view = connection_view(conn, cap)
        for name in HEAVY_FIELDS:
            view[name] = heavy_field(conn, name)
        act = activation_for("connection", {"connection": view, "capture": cap_view})
        for rule in rules:
            missing = tuple(f for f in rule.requires if f not in conn.can_show)
            if missing:
                skipped.append(_not_evaluable(rule, item, missing))
                continue
            ok, error = truth(rule.when.program.eval(act))
            assert error is None, (rule.id, error)
            if ok:
                findings.append(_finding(rule, item, act))
    return findings, skipped


def _fast(rules: list[Rule], cap: Capture) -> tuple[list[Finding], list[NotEvaluable]]:
    findings: list[Finding] = []
    skipped: list[NotEvaluable] = []
    for item in SCOPES["connection"].items((cap,)):
        f, s = evaluate_item(rules, item, "connection")
        findings.extend(f)
        skipped.extend(s)
    return findings, skipped


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Rule]:
    folder = tmp_path_factory.mktemp("probes")
    for name, text in PROBES.items():
        (folder / f"{name}.yaml").write_text(text.lstrip())
    loaded = load_rules((folder,)).rules
    return [r for r in loaded if r.scope == "connection"]


def test_inputs_cover_findings_and_probes(rules: list[Rule]) -> None:
    assert len(CAPTURES) >= 20
    assert sum(len(c.connections) for c in CAPTURES) >= 80
    assert {"probe-heavy-and-errors", "probe-message-fields"} <= {r.id for r in rules}


@pytest.mark.parametrize("cap", CAPTURES, ids=lambda c: Path(c.path).name)
def test_fast_path_is_byte_identical(cap: Capture, rules: list[Rule]) -> None:
    from analyzer.engine.view import capture_view

    expected_f, expected_s = _reference(rules, cap, capture_view(cap))
    got_f, got_s = _fast(rules, cap)
    assert [repr(f) for f in sort_findings(got_f)] == [repr(f) for f in sort_findings(expected_f)]
    assert sorted(map(repr, got_s)) == sorted(map(repr, expected_s))
    # the lazy view, read whole, is the eager one, in the same order
    for conn in cap.connections:
        lazy = LazyConnectionView(conn, cap)
        assert list(dict(lazy).items()) == list(connection_view(conn, cap).items())


def test_probes_fire_and_take_both_paths(rules: list[Rule]) -> None:
    """The probes fire on connections with and without a close (error fallback)."""
    messages = []
    for cap in CAPTURES:
        messages += [f.message for f in _fast(rules, cap)[0] if f.rule == "probe-heavy-and-errors"]
    assert any(m.startswith("close ?,") for m in messages)  # placeholder error: fallback
    assert any(m.startswith("close 1000,") for m in messages)  # one evaluation for all
