"""The scenario lab (issue 18): does the diagnosis hold for sessions real software made?

Each folder beside this file holds captures recorded on loopback and ``expect.yaml``: the
verdict the analysis should reach. This test runs ``ws-analyzer analyze CAPTURES -f json``
on each and compares. Where today's engine lacks what the expectation needs (a status, a
rule id, a grouping), ``expect.yaml`` lists the gap under ``xfail:`` and the test is a
strict xfail: it fails the day the engine is fixed, so the xfail gets removed. The
expectations are what is right, never what the engine happens to say (README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from analyzer.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CAPTURE_SUFFIXES = {".pcapng", ".pcap", ".har"}
AT_LEAST_MEDIUM = {"medium", "high", "critical"}
KEYS = {
    "status",
    "headline",
    "must",
    "must_not",
    "must_say",
    "must_not_say",
    "max_findings",
    "connections",
    "servers",
    "captures",
    "notes",
    "xfail",
}


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/expect.yaml"))


def expectation(name: str) -> dict[str, Any]:
    expect: dict[str, Any] = yaml.safe_load((HERE / name / "expect.yaml").read_text())
    unknown = set(expect) - KEYS
    assert not unknown, f"{name}/expect.yaml: unknown keys {sorted(unknown)}"
    assert expect["status"] in {"problem", "inconclusive", "clean"}
    assert expect.get("notes"), f"{name}/expect.yaml: say why in notes"
    assert all(isinstance(g, str) for g in expect.get("xfail") or []), f"{name}: xfail: strings"
    return expect


def captures(name: str, folder: Path | None = None) -> list[Path]:
    """The files to analyze: ``captures:`` (relative to the folder; may name a sibling
    scenario's file), or every capture file in the folder."""
    folder = folder or HERE / name
    listed = expectation(name).get("captures")
    if listed:
        return [(folder / c).resolve() for c in listed]
    return sorted(p for p in folder.iterdir() if p.suffix in CAPTURE_SUFFIXES)


def analyze(paths: list[Path]) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["analyze", *map(str, paths), "-f", "json", "-o", "-"])
    assert result.exit_code in (0, 1), result.output
    out = result.stdout
    report: dict[str, Any] = json.loads(out[out.index("{") :])
    return report


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    """status, headline and rule hits as the expectation names them.

    A report with ``verdict.status`` says its status; before the engine has one it is
    derived as the issue defines it: a finding at medium or above is a problem, otherwise
    clean (today's engine has no "inconclusive"). The headline is the rule of the finding
    the verdict sentence is about, when that finding is at medium or above."""
    verdict = report["verdict"]
    findings = report["findings"]
    status = verdict.get("status")
    if status is None:
        status = "problem" if any(f["severity"] in AT_LEAST_MEDIUM for f in findings) else "clean"
    top = verdict.get("finding")
    headline = verdict.get("headline")
    if headline is None and top is not None and findings[top]["severity"] in AT_LEAST_MEDIUM:
        headline = findings[top]["rule"]
    text = " ".join(
        [verdict["sentence"], *verdict.get("also", [])]
        + [f"{f['title']} {f['message']}" for f in findings]
    ).lower()
    return {
        "status": status,
        "headline": headline,
        "rules": Counter(f["rule"] for f in findings),
        "text": text,
        "connections": len(report["connections"]),
        "servers": sorted({c["server"] for c in report["connections"] if c.get("server")}),
    }


def problems(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every way the analysis differs from the expectation (empty when it holds)."""
    out = []
    if got["status"] != expect["status"]:
        out.append(f"status {got['status']!r}, expected {expect['status']!r}")
    if "headline" in expect and got["headline"] != expect["headline"]:
        out.append(f"headline {got['headline']!r}, expected {expect['headline']!r}")
    for rule in expect.get("must", []):
        if not got["rules"][rule]:
            out.append(f"no {rule} finding")
    for rule in expect.get("must_not", []):
        if got["rules"][rule]:
            out.append(f"{rule} found ({got['rules'][rule]}x), must not be")
    for rule, most in (expect.get("max_findings") or {}).items():
        for hit in got["rules"] if rule == "*" else [rule]:  # "*": every rule
            if got["rules"][hit] > most:
                out.append(f"{hit} found {got['rules'][hit]}x, at most {most}")
    for words in expect.get("must_say", []):
        if words.lower() not in got["text"]:
            out.append(f"the report never says {words!r}")
    for words in expect.get("must_not_say", []):
        if words.lower() in got["text"]:
            out.append(f"the report says {words!r}")
    if "connections" in expect and got["connections"] != expect["connections"]:
        out.append(f"{got['connections']} connections, expected {expect['connections']}")
    if "servers" in expect and got["servers"] != sorted(expect["servers"]):
        out.append(f"servers {got['servers']}, expected {expect['servers']}")
    return out


def params() -> list[Any]:
    out = []
    for name in scenarios():
        gaps = expectation(name).get("xfail") or []
        marks = [pytest.mark.xfail(strict=True, reason="; ".join(gaps))] if gaps else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.mark.parametrize("name", params())
def test_scenario(name: str) -> None:
    expect = expectation(name)
    paths = captures(name)
    assert paths and all(p.is_file() for p in paths), f"{name}: captures missing: {paths}"
    wrong = problems(expect, outcome(analyze(paths)))
    assert not wrong, f"{name}: " + "; ".join(wrong)


def test_there_are_enough_scenarios() -> None:
    assert len(scenarios()) >= 30


def test_every_recorded_scenario_says_how_it_was_made() -> None:
    readme = (HERE / "README.md").read_text()
    for name in scenarios():
        assert f"`{name}`" in readme, f"README.md does not describe {name}"


# -- live: record again and compare --------------------------------------------------------

# Quick, self-contained scenarios (Python only, a second or two each).
LIVE = ["clean-echo", "rate-limit-1008"]


@pytest.mark.parametrize("name", LIVE)
def test_a_fresh_recording_gets_the_committed_verdict(name: str, tmp_path: Path) -> None:
    if shutil.which("dumpcap") is None or os.geteuid() != 0:
        pytest.skip("needs dumpcap and root to capture on lo")
    subprocess.run(
        [sys.executable, "-m", "tests.scenarios.record", name, "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = outcome(analyze(captures(name, tmp_path / name)))
    committed = outcome(analyze(captures(name)))
    for key in ("status", "headline", "rules", "connections", "servers"):
        assert fresh[key] == committed[key], key
