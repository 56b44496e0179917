"""Hop chains in the reports (HTML, JSON, Markdown), on the real proxy captures in
tests/data/hops: a browser HAR with the server-side pcap of the same session, and single
pcaps that hold both legs of a proxy (captured on the proxy host)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from analyzer.engine.findings import Finding
from analyzer.pipeline import Analysis, Options, analyze, evaluate, load_capture
from analyzer.render import RenderOptions, render
from analyzer.render.json_report import load_schema
from analyzer.session.hops import link_sessions
from analyzer.session.model import Capture, Header, Headers

ROOT = Path(__file__).resolve().parents[2]
HOPS = Path("tests/data/hops")
BROWSER = (HOPS / "browser/browser.har", HOPS / "browser/server-leg.pcapng")
BOTH_LEGS = HOPS / "browser/both-legs.pcapng"
OPTS = RenderOptions(now=1795506300.0)
SECRET = "sid=planted-secret-4f1c9a77"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # capture paths in reports are relative to the repo root


def _json(analysis: Analysis, options: RenderOptions = OPTS) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render(analysis, "json", options))
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    return doc


def _finding(analysis: Analysis, rule: str) -> Finding:
    return next(f for f in analysis.findings if f.rule == rule)


@pytest.mark.parametrize(
    ("paths", "client_lane", "legs"),
    [
        (BROWSER, "browser", ("browser.har", "server-leg.pcapng")),
        ((BOTH_LEGS,), "client", ("both-legs.pcapng", "both-legs.pcapng")),
    ],
    ids=["har+server-pcap", "one-pcap-both-legs"],
)
def test_hop_section_in_every_format(
    paths: tuple[Path, ...], client_lane: str, legs: tuple[str, str]
) -> None:
    analysis = analyze(list(paths))
    chains = analysis.extra["hops"]
    assert isinstance(chains, tuple)
    (chain,) = chains

    doc = _json(analysis)
    (h,) = doc["hops"]
    assert h["id"] == chain.id == "session-1"
    assert [Path(leg["capture"]).name for leg in h["legs"]] == list(legs)
    assert h["legs"][1]["server"] == "127.0.0.1:8080"
    (hop,) = h["hops"]
    assert hop["proxy"] == "127.0.0.1:3000"
    assert hop["request_diff"]["removed"] == [
        {"name": "origin", "before": ["http://127.0.0.1:3000"], "after": []}
    ]
    assert {c["name"] for c in hop["request_diff"]["added"]} >= {"x-forwarded-for"}
    assert h["legs"][1]["close"] == {"from": "server", "code": 1008, "reason": "origin not allowed"}
    # The verdict names the hop's session and the proxy.
    sentence = doc["verdict"]["sentence"]
    assert doc["findings"][0]["rule"] == "origin-stripped-by-hop"
    assert "the proxy at 127.0.0.1:3000" in sentence
    assert "session-1 (" in sentence and "proxy 127.0.0.1:3000" in sentence

    html = render(analysis, "html", OPTS)
    section = html[html.index('<section class="hops" id="h0">') :]
    section = section[: section.index("</section>")]
    assert "Hops: session-1" in section
    assert 'href="#h0"' in html  # table of contents
    # Legs client-most first, each with its capture and a link to its connection.
    assert section.index(legs[0]) < section.rindex(legs[1])
    assert section.count('<tr id="h0-leg') == 2
    # The sequence diagram has one lane per point: client, proxy, server.
    svg = section[section.index("<svg") : section.index("</svg>")]
    lanes = re.findall(r'class="sd-lane-name">([^<]*)<', svg)
    assert lanes == [client_lane, "proxy", "server"]
    assert svg.count("GET /ws/chat?room=support") == 2  # one upgrade per leg
    assert "close 1008" in svg
    # The header diff table: Origin removed, with the value it had on the way in.
    diff = section[section.index('class="rows hopdiff"') :]
    row = re.search(r'<tr class="diff-removed hl">(.*?)</tr>', diff, re.S)
    assert row is not None
    assert "origin" in row.group(1) and "http://127.0.0.1:3000" in row.group(1)
    assert "<em>absent</em>" in row.group(1)
    assert "server closed 1008 (origin not allowed)" in section

    md = render(analysis, "md", OPTS)
    assert "## Hops" in md
    assert "session-1: " in md and "proxy 127.0.0.1:3000 → server 127.0.0.1:8080" in md
    assert "request header origin removed (http://127.0.0.1:3000 -> absent)" in md


def test_evidence_names_the_header_on_each_leg() -> None:
    analysis = analyze(list(BROWSER))
    finding = _finding(analysis, "origin-stripped-by-hop")
    header = [e for e in finding.evidence if e.header == "Origin"]
    assert [e.label.split(")")[0] for e in header] == [
        "leg 1 (between the browser and 127.0.0.1:3000",
        "leg 2 (between 127.0.0.1:37600 and 127.0.0.1:8080",
    ]
    present, absent = header
    assert "request header Origin: http://127.0.0.1:3000" in present.label
    assert present.location is not None and present.location.entry == 1
    assert present.location.capture.endswith("browser.har")
    assert "no Origin header" in absent.label
    assert absent.location is not None and absent.location.packet == 4
    assert absent.location.capture.endswith("server-leg.pcapng")
    # In the HTML each leg's evidence links to its own connection's request.
    html = render(analysis, "html", OPTS)
    article = html[html.index('id="f0"') :]
    article = article[: article.index("</article>")]
    assert 'href="#c0-rq-' in article  # Origin row of the HAR leg's request
    assert 'href="#c1-absent-0"' in article  # the "ABSENT" row of the server leg
    assert 'id="c1-absent-0"' in html


def _plant_cookie(captures: tuple[Capture, ...]) -> tuple[Capture, ...]:
    """The browser leg's upgrade request with a Cookie the proxy does not forward."""
    har, pcap = captures
    conn = har.connections[0]
    assert conn.request is not None
    headers = Headers((*conn.request.headers.items, Header("Cookie", SECRET)))
    planted = replace(conn, request=replace(conn.request, headers=headers))
    return (replace(har, connections=(planted,)), pcap)


def test_diff_values_are_redacted_like_other_headers() -> None:
    captures = _plant_cookie(tuple(load_capture(p) for p in BROWSER))
    analysis = evaluate(captures, Options())
    chains = analysis.extra["hops"]
    assert isinstance(chains, tuple)
    (chain,) = chains
    assert "cookie" in chain.hops[0].request.names("removed")
    for fmt in ("html", "json", "md"):
        assert "planted-secret-4f1c9a77" not in render(analysis, fmt, OPTS), fmt
    doc = _json(analysis)
    (change,) = [
        c for c in doc["hops"][0]["hops"][0]["request_diff"]["removed"] if c["name"] == "cookie"
    ]
    assert change == {"name": "cookie", "before": ["sid=[REDACTED]"], "after": []}
    assert doc["hops"][0]["legs"][0]["request_headers"]["cookie"] == ["sid=[REDACTED]"]
    # With redaction off the value is there: the check above can fail.
    raw = _json(analysis, RenderOptions(redact=False, now=1795506300.0))
    assert SECRET in json.dumps(raw["hops"])


def test_real_cookie_dropped_by_a_relay_is_redacted() -> None:
    analysis = analyze([HOPS / "relay-1011/both-legs.pcapng"])
    doc = _json(analysis)
    removed = doc["hops"][0]["hops"][0]["request_diff"]["removed"]
    cookie = next(c for c in removed if c["name"] == "cookie")
    assert cookie["before"] and all("[REDACTED]" in v for v in cookie["before"])
    assert doc["redaction"]["counts"].get("header:cookie", 0) >= 2  # connection + hop diff


@pytest.mark.parametrize(
    "paths",
    [
        (HOPS / "nginx-pass/client-leg.pcapng",),
        (HOPS / "httpproxy-pass/client-leg.pcapng", HOPS / "nginx-strip/server-leg.pcapng"),
    ],
    ids=["one-leg", "unrelated-captures"],
)
def test_no_hops_section_without_linked_legs(paths: tuple[Path, ...]) -> None:
    analysis = analyze(list(paths))
    assert "hops" not in analysis.extra
    assert "hops" not in _json(analysis)
    html = render(analysis, "html", OPTS)
    assert 'class="hops"' not in html and "Hops:" not in html
    assert "## Hops" not in render(analysis, "md", OPTS)


def test_chains_are_linked_once_and_kept_without_session_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = link_sessions

    def counting(captures: Any) -> Any:
        calls.append(len(captures))
        return real(captures)

    monkeypatch.setattr("analyzer.engine.hops_scope.link_sessions", counting)
    captures = tuple(load_capture(p) for p in BROWSER)
    analysis = evaluate(captures, Options())
    assert calls == [2]
    assert analysis.extra["hops"][0].hops[0].proxy == "127.0.0.1:3000"  # type: ignore[index]
    # Only connection rules selected: no hop finding, but the chain is still reported.
    calls.clear()
    only = evaluate(captures, Options(select=("origin-missing",)))
    assert calls == [2] and {f.rule for f in only.findings} == {"origin-missing"}
    assert len(_json(only)["hops"]) == 1


def _hop_svg(html: str) -> str:
    section = html[html.index('<section class="hops" id="h0">') :]
    return section[section.index("<svg") : section.index("</svg>")]


def test_three_legs_draw_four_lanes_in_causal_order() -> None:
    analysis = analyze([HOPS / "chain/both-legs.pcapng"])
    svg = _hop_svg(render(analysis, "html", OPTS))
    lanes = re.findall(r'class="sd-lane-name">([^<]*)<', svg)
    assert lanes == ["client", "proxy", "proxy", "server"]
    handshake = re.findall(r'class="sd-label sd-handshake">([^<]*)<', svg)
    # Requests travel client-most first; answers come back server-most first.
    assert handshake == ["GET /ws/chat?room=support"] * 3 + ["101"] * 3
    assert svg.count("close 1008") == 6  # the server's close and its echo, on each leg


def test_sequence_applies_each_legs_clock_offset(tmp_path: Path) -> None:
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.fail("editcap is not installed (apt-get install -y tshark)")
    shifted = tmp_path / "server-leg-shifted.pcapng"
    subprocess.run([editcap, "-t", "-93.5", str(BROWSER[1]), str(shifted)], check=True)
    analysis = analyze([BROWSER[0], shifted])
    chains = analysis.extra["hops"]
    assert isinstance(chains, tuple)
    assert chains[0].legs[1].clock_offset == pytest.approx(93.5, abs=0.05)
    svg = _hop_svg(render(analysis, "html", OPTS))
    times = [float(t) for t in re.findall(r'class="sd-time">([-+][0-9.]+)<', svg)]
    assert len(times) >= 6
    assert all(0.0 <= t < 0.1 for t in times), times  # on the browser's clock


def test_hop_evidence_keeps_the_headers_that_differ_between_legs() -> None:
    # The relay dropped Cookie; the rule also names Sec-WebSocket-Protocol, -Extensions and
    # Authorization, which neither leg carried: "no ... header" on every leg is noise.
    analysis = analyze([HOPS / "relay-1011/both-legs.pcapng"])
    finding = _finding(analysis, "header-stripped-by-hop")
    assert [(e.header, e.label.split(" (")[0]) for e in finding.evidence] == [
        ("Cookie", "leg 1"),
        ("Cookie", "leg 2"),
    ]
    assert "no Cookie header" in finding.evidence[1].label
    doc = _json(analysis)
    (f,) = [f for f in doc["findings"] if f["rule"] == "header-stripped-by-hop"]
    assert f["evidence"][0]["label"].endswith("request header Cookie: sid=[REDACTED]")
    assert "c0ffee" not in json.dumps(doc)
