"""Loading rule files: every broken file names file:line:column and what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analyzer.engine.findings import Severity
from analyzer.engine.loader import load_rules, parse_rule, select_rules
from analyzer.errors import AnalyzerError, RuleError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "rules"


def edited(tmp_path: Path, rule: str, old: str, new: str, name: str | None = None) -> Path:
    text = (BUILTIN / f"{rule}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{name or rule}.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(RuleError) as info:
        parse_rule(path)
    return str(info.value)


def test_misspelt_field_in_the_condition(tmp_path: Path) -> None:
    path = edited(
        tmp_path, "origin-missing", "connection.origin == null", "connection.orign == null"
    )
    # line 7 is "  connection.request_seen && connection.orign == null"
    assert error_of(path) == f"{path}:7:41: no field 'orign' in connection (did you mean 'origin'?)"


def test_misspelt_nested_field(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "policy-violation-close",
        "connection.close.code == 1008 ||",
        "connection.close.cod == 1008 ||",
    )
    lines = path.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "close.cod ==" in t)
    col = lines[line - 1].index("cod ==") + 1
    assert error_of(path) == (
        f"{path}:{line}:{col}: no field 'cod' in connection.close (did you mean 'code'?)"
    )


def test_misspelt_field_inside_a_comprehension(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "unmasked-client-frame",
        '"frame.unmasked_client_frame" in connection.anomaly_codes',
        'connection.anomalies.exists(a, a.kode == "frame.unmasked_client_frame")',
    )
    # "  connection.anomalies.exists(a, a.kode": the field name starts at column 36
    assert error_of(path) == f"{path}:7:36: no field 'kode' in a (did you mean 'code'?)"


def test_cel_syntax_error(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "origin-missing",
        "connection.request_seen &&",
        "connection.request_seen &&&",
    )
    assert error_of(path).startswith(f"{path}:7:")
    assert "Syntax error" in error_of(path)


def test_condition_must_be_boolean(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "origin-missing",
        "connection.request_seen && connection.origin == null",
        "connection.id",
    )
    assert error_of(path) == f"{path}:7:3: the condition must be true or false, not string"


def test_bad_field_in_the_message_template(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "origin-missing",
        "{connection.user_agent == null",
        "{connection.user_agnt == null",
    )
    lines = path.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "user_agnt" in t)
    assert error_of(path) == (
        f"{path}:{line}:{lines[line - 1].index('user_agnt') + 1}: "
        "no field 'user_agnt' in connection (did you mean 'user_agent'?)"
    )


def test_unbalanced_brace_in_the_message(tmp_path: Path) -> None:
    path = edited(tmp_path, "origin-missing", "(User-Agent: {", "(User-Agent: ")
    assert "'}' without '{' (write '}}' for a literal brace)" in error_of(path)


def test_schema_violation_points_at_the_value(tmp_path: Path) -> None:
    path = edited(tmp_path, "origin-missing", "severity: low", "severity: lowish")
    assert error_of(path) == (
        f"{path}:3:11: severity: 'lowish' is not one of info, low, medium, high, critical"
    )


def test_unknown_requires_value(tmp_path: Path) -> None:
    path = edited(
        tmp_path, "origin-missing", "requires: [handshake_request]", "requires: [close_frame]"
    )
    assert error_of(path).startswith(f"{path}:5:12: requires.0: 'close_frame' is not one of ")


def test_missing_field(tmp_path: Path) -> None:
    text = (BUILTIN / "origin-missing.yaml").read_text()
    path = tmp_path / "origin-missing.yaml"
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("title:")))
    assert error_of(path) == f"{path}:1:1: the rule: 'title' is a required property"


def test_id_must_match_the_file_name(tmp_path: Path) -> None:
    path = edited(
        tmp_path, "origin-missing", "id: origin-missing", "id: origin-missing", "no-origin"
    )
    assert error_of(path) == (
        f"{path}:1:5: id 'origin-missing' does not match the file name (expected 'no-origin')"
    )


def test_yaml_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\ntitle: [unclosed\nseverity: low\n")
    assert error_of(path).startswith(f"{path}:3:")
    assert "invalid YAML" in error_of(path)


def test_unknown_scope(tmp_path: Path) -> None:
    path = edited(tmp_path, "origin-missing", "scope: connection", "scope: galaxy")
    assert error_of(path).startswith(f"{path}:4:8: scope 'galaxy' is not known here (known: ")


def test_user_rule_overrides_builtin(tmp_path: Path) -> None:
    edited(tmp_path, "origin-missing", "severity: low", "severity: medium")
    ruleset = load_rules((tmp_path,))
    rule = ruleset.get("origin-missing")
    assert rule is not None
    assert rule.severity == Severity.MEDIUM
    assert not rule.builtin
    assert ruleset.overridden == ("origin-missing",)
    assert len(ruleset.rules) == len(load_rules().rules)


def test_same_id_in_two_user_folders_is_an_error(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(BUILTIN / "token-in-url.yaml", a)
    shutil.copy(BUILTIN / "token-in-url.yaml", b)
    with pytest.raises(RuleError, match="rule id 'token-in-url' is also defined in"):
        load_rules((a, b))


def test_rules_are_cached_until_a_file_changes(tmp_path: Path) -> None:
    path = edited(tmp_path, "token-in-url", "severity: low", "severity: high", "my-token")
    path.write_text(path.read_text().replace("id: token-in-url", "id: my-token"))
    first = load_rules((tmp_path,))
    assert load_rules((tmp_path,)) is first
    path.write_text(path.read_text().replace("severity: high", "severity: critical"))
    second = load_rules((tmp_path,))
    assert second is not first
    rule = second.get("my-token")
    assert rule is not None and rule.severity == Severity.CRITICAL


def test_select_and_ignore_by_id_and_tag() -> None:
    rules = load_rules().rules
    origin = {r.id for r in select_rules(rules, select=("origin",))}
    assert {"origin-missing", "origin-stripped-by-proxy", "origin-host-mismatch"} <= origin
    assert "token-in-url" not in origin
    picked = {r.id for r in select_rules(rules, select=("origin",), ignore=("origin-missing",))}
    assert picked == origin - {"origin-missing"}
    everything_but = {r.id for r in select_rules(rules, ignore=("close",))}
    assert "policy-violation-close" not in everything_but and "token-in-url" in everything_but


def test_unknown_select_name_is_an_error() -> None:
    with pytest.raises(AnalyzerError, match="--select: no rule or tag is named 'orign-missing'"):
        select_rules(load_rules().rules, select=("orign-missing",))


def test_heavy_fields_are_known_per_rule(tmp_path: Path) -> None:
    path = tmp_path / "many-messages.yaml"
    text = (BUILTIN / "token-in-url.yaml").read_text()
    start = text.index("when: |")
    end = text.index("message: >-")
    text = text[:start] + "when: connection.messages.size() > 100\n" + text[end:]
    path.write_text(text.replace("id: token-in-url", "id: many-messages"))
    rule = parse_rule(path)
    assert rule.heavy == frozenset({"messages"})
    assert parse_rule(BUILTIN / "token-in-url.yaml").heavy == frozenset()
