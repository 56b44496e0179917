"""``ws-analyzer rules list|show|validate|test``, through the real command group."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.cli.rules import rules
from analyzer.engine.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "rules"


@pytest.fixture
def run() -> CliRunner:
    if "rules" not in main.commands:  # the lead registers it in analyzer/cli.py
        main.add_command(rules)
    return CliRunner()


def test_list(run: CliRunner) -> None:
    result = run.invoke(main, ["rules", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(load_rules().rules)
    width = max(len(r.id) for r in load_rules().rules)
    title = "Upgrade request without an Origin header"
    assert f"{'origin-missing':<{width}}  low       connection  {title}" in lines
    assert any(line.startswith("close-1008-after-first-message ") for line in lines)


def test_list_marks_user_rules(run: CliRunner, tmp_path: Path) -> None:
    text = (BUILTIN / "token-in-url.yaml").read_text().replace("id: token-in-url", "id: my-rule")
    (tmp_path / "my-rule.yaml").write_text(text)
    result = run.invoke(main, ["rules", "list", "--rules", str(tmp_path)])
    assert result.exit_code == 0
    mine = [line for line in result.output.splitlines() if line.startswith("my-rule ")]
    assert len(mine) == 1 and mine[0].endswith("(user)")


def test_show(run: CliRunner) -> None:
    result = run.invoke(main, ["rules", "show", "origin-missing"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "origin-missing: Upgrade request without an Origin header"
    assert lines[1] == "severity: low    scope: connection    tags: handshake, origin"
    assert lines[2] == "requires: handshake_request"
    for heading in (
        "What it finds:",
        "Why it matters:",
        "Example that matches (node ws client, no Origin):",
        "Example that does not match (browser with Origin):",
        "What to do:",
        "False positives:",
        "References:",
    ):
        assert heading in lines
    assert "    connection.request_seen && connection.origin == null" in lines
    assert "    a clean session (the examples' defaults, unchanged)" in lines
    assert (
        "  - RFC 6455 section 4.1 (client requirements, Origin), "
        "https://www.rfc-editor.org/rfc/rfc6455#section-4.1" in lines
    )


def test_show_unknown_rule(run: CliRunner) -> None:
    result = run.invoke(main, ["rules", "show", "nope"])
    assert result.exit_code == 2
    assert result.stderr == (
        "ws-analyzer: error: no rule has the id 'nope' (see `ws-analyzer rules list`)\n"
    )


def test_validate_builtin(run: CliRunner) -> None:
    result = run.invoke(main, ["rules", "validate"])
    assert result.exit_code == 0
    assert f"ok {BUILTIN / 'origin-missing.yaml'}" in result.output.splitlines()


def test_validate_broken_file_exits_2_with_position(run: CliRunner, tmp_path: Path) -> None:
    text = (BUILTIN / "origin-missing.yaml").read_text()
    path = tmp_path / "origin-missing.yaml"
    path.write_text(text.replace("connection.origin == null", "connection.orign == null"))
    result = run.invoke(main, ["rules", "validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"ws-analyzer: error: {path}:7:41: no field 'orign' in connection "
        "(did you mean 'origin'?)\n"
    )


def test_test_builtin_passes(run: CliRunner) -> None:
    result = run.invoke(main, ["rules", "test"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "PASS origin-missing match: node ws client, no Origin" in lines
    assert "PASS origin-missing no_match: browser with Origin" in lines
    assert lines[-1].endswith(" passed, 0 failed")


def test_test_reports_a_failing_example(run: CliRunner, tmp_path: Path) -> None:
    text = (BUILTIN / "origin-missing.yaml").read_text()
    path = tmp_path / "origin-missing.yaml"
    # The rule now fires on every request: its no_match example must fail.
    path.write_text(
        text.replace(
            "connection.request_seen && connection.origin == null",
            "connection.request_seen",
        )
    )
    result = run.invoke(main, ["rules", "test", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "FAIL origin-missing no_match: browser with Origin: expected to not match" in lines
    assert "PASS origin-missing no_match: no request in the capture" in lines
    assert lines[-1] == "2 passed, 1 failed"
