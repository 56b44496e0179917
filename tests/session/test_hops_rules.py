"""The four hop rules (rules/*-by-hop.yaml, rules/upgrade-not-forwarded.yaml) on the real
proxy captures, and their examples, evaluated over the ``session`` scope."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_hops import Reader, _analyzer_reader, _tshark_reader
from test_hops_tshark import HOPS, needs_tshark

from analyzer.engine.cel import compile_expression, compile_template, environment
from analyzer.engine.examples import merge
from analyzer.engine.hops_scope import SESSION, session_example_defaults, session_items

RULES = Path(__file__).resolve().parents[2] / "rules"
HOP_RULES = (
    "origin-stripped-by-hop",
    "header-stripped-by-hop",
    "close-code-changed-by-hop",
    "upgrade-not-forwarded",
)
VARIABLES = {"session": SESSION}
ENDPOINT = r"127\.0\.0\.1:\d+"


class HopRule:
    """A rule file compiled against the session scope's declared variables."""

    def __init__(self, rule_id: str) -> None:
        self.data: dict[str, Any] = yaml.safe_load((RULES / f"{rule_id}.yaml").read_text())
        assert self.data["id"] == rule_id and self.data["scope"] == "session"
        self.when = compile_expression(self.data["when"], VARIABLES, want_bool=True)
        self.message = compile_template(self.data["message"], VARIABLES)
        self.escalate = [
            (compile_expression(e["when"], VARIABLES, want_bool=True), e["severity"])
            for e in self.data.get("escalate", ())
        ]

    def fires(self, variables: dict[str, Any]) -> tuple[bool, str, str]:
        act = environment(VARIABLES).Activation(variables)
        value = self.when.program.eval(act)
        assert value.type().name().upper() == "BOOL", value.value()
        if not value.value():
            return False, "", ""
        severity = self.data["severity"]
        for cond, sev in self.escalate:
            if cond.program.eval(act).value() is True:
                severity = sev
        return True, self.message.render(act), severity


@pytest.fixture(scope="module")
def rules() -> dict[str, HopRule]:
    return {rule_id: HopRule(rule_id) for rule_id in HOP_RULES}


@pytest.mark.parametrize("rule_id", HOP_RULES)
def test_examples(rules: dict[str, HopRule], rule_id: str) -> None:
    rule = rules[rule_id]
    examples = rule.data["examples"]
    for kind, expected in (("match", True), ("no_match", False)):
        for ex in examples[kind]:
            variables = {"session": merge(session_example_defaults()["session"], ex["session"])}
            fired, text, _ = rule.fires(variables)
            assert fired is expected, f"{rule_id}: {ex['name']}"
            if expected and "message" in ex:
                assert text == ex["message"].strip(), ex["name"]


@pytest.fixture(params=["tshark", "analyzer"])
def read(request: pytest.FixtureRequest) -> Reader:
    return _tshark_reader if request.param == "tshark" else _analyzer_reader


def _run(rules: dict[str, HopRule], read: Reader, *paths: Path) -> dict[str, tuple[str, str] | str]:
    """rule id -> (message, severity) when it fires, "not evaluable" when the session
    cannot show what the rule requires; quiet rules are absent."""
    out: dict[str, tuple[str, str] | str] = {}
    for item in session_items(tuple(read(p) for p in paths)):
        for rule_id, rule in rules.items():
            if any(f not in item.can_show for f in rule.data.get("requires", ())):
                out[rule_id] = "not evaluable"
                continue
            fired, text, severity = rule.fires(item.variables)
            if fired:
                out[rule_id] = (text, severity)
    return out


@needs_tshark
@pytest.mark.parametrize("scenario", ["httpproxy-strip", "nginx-strip"])
def test_origin_stripping_proxy_is_named(
    rules: dict[str, HopRule], read: Reader, scenario: str
) -> None:
    found = _run(rules, read, HOPS / scenario / "both-legs.pcapng")
    assert set(found) == {"origin-stripped-by-hop"}
    text, severity = found["origin-stripped-by-hop"]
    assert re.fullmatch(
        f"Origin was present between {ENDPOINT} and 127\\.0\\.0\\.1:3000 and absent between "
        f"{ENDPOINT} and 127\\.0\\.0\\.1:8080: the proxy at 127\\.0\\.0\\.1:3000 dropped it, "
        'and the server then closed with 1008 Policy Violation \\("origin not allowed"\\)\\.',
        text,
    ), text
    assert severity == "critical"


@needs_tshark
@pytest.mark.parametrize("scenario", ["httpproxy-pass", "nginx-pass"])
def test_quiet_when_the_proxy_passes_origin(
    rules: dict[str, HopRule], read: Reader, scenario: str
) -> None:
    assert _run(rules, read, HOPS / scenario / "both-legs.pcapng") == {}


@needs_tshark
def test_second_proxy_of_a_chain_is_named(rules: dict[str, HopRule], read: Reader) -> None:
    found = _run(rules, read, HOPS / "chain" / "both-legs.pcapng")
    assert set(found) == {"origin-stripped-by-hop"}
    text, _ = found["origin-stripped-by-hop"]
    assert "and 127.0.0.1:3001 and absent between" in text
    assert "the proxy at 127.0.0.1:3001 dropped it" in text


@needs_tshark
def test_relay_that_rebuilds_the_session(rules: dict[str, HopRule], read: Reader) -> None:
    found = _run(rules, read, HOPS / "relay-1011" / "both-legs.pcapng")
    assert set(found) == {
        "origin-stripped-by-hop",
        "header-stripped-by-hop",
        "close-code-changed-by-hop",
    }
    header, _ = found["header-stripped-by-hop"]
    assert re.fullmatch(
        f"cookie present between {ENDPOINT} and 127\\.0\\.0\\.1:3000 and absent between "
        f"{ENDPOINT} and 127\\.0\\.0\\.1:8080: the proxy at 127\\.0\\.0\\.1:3000 dropped it\\.",
        header,
    ), header
    close, severity = found["close-code-changed-by-hop"]
    assert re.fullmatch(
        f"the proxy at 127\\.0\\.0\\.1:3000 changed the close: between {ENDPOINT} and "
        "127\\.0\\.0\\.1:8080: server closed 1008 \\(origin not allowed\\); between "
        f"{ENDPOINT} and 127\\.0\\.0\\.1:3000: server closed 1011 \\(upstream error\\)\\.",
        close,
    ), close
    assert severity == "medium"


@needs_tshark
def test_gateway_answered_502(rules: dict[str, HopRule], read: Reader) -> None:
    found = _run(rules, read, HOPS / "nginx-dead-upstream" / "both-legs.pcapng")
    assert set(found) == {"upgrade-not-forwarded"}
    text, _ = found["upgrade-not-forwarded"]
    assert re.match(
        f"The upgrade request between {ENDPOINT} and 127\\.0\\.0\\.1:3000 was answered 502 by "
        "the proxy at 127\\.0\\.0\\.1:3000 itself",
        text,
    ), text


@needs_tshark
def test_upgrade_headers_not_forwarded(rules: dict[str, HopRule], read: Reader) -> None:
    path = HOPS / "nginx-no-upgrade" / "both-legs.pcapng"
    found = _run(rules, read, path)
    assert set(found) == {"upgrade-not-forwarded"}
    text, _ = found["upgrade-not-forwarded"]
    assert re.fullmatch(
        "the proxy at 127\\.0\\.0\\.1:3000 forwarded the upgrade request between "
        f'{ENDPOINT} and 127\\.0\\.0\\.1:8080 without "Upgrade: websocket": the server saw a '
        "plain HTTP request and answered 505, which reached the client as 505\\.",
        text,
    ), text


@needs_tshark
def test_browser_har_with_server_pcap(rules: dict[str, HopRule], read: Reader) -> None:
    found = _run(
        rules, read, HOPS / "browser" / "browser.har", HOPS / "browser" / "server-leg.pcapng"
    )
    text, _ = found.pop("origin-stripped-by-hop")  # type: ignore[misc]
    assert text.startswith("Origin was present between the browser and 127.0.0.1:3000 and absent")
    # A HAR records no close frames: the close cannot be compared across the hop.
    assert found == {"close-code-changed-by-hop": "not evaluable"}
