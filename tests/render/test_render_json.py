"""The JSON report: the v1 contract of issue 2, validated against the shipped schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from render_captures import (
    BOTH_PCAP,
    ROOT,
    chat_analysis,
    hostile_analysis,
    make_hostile_har,
    make_secrets_har,
    mitm_analysis,
)

from analyzer.pipeline import Analysis, analyze, load_capture
from analyzer.render import RenderOptions, render
from analyzer.render.json_report import load_schema

FIXED_NOW = 1795506300.0  # golden files print this as the time of analysis
OPTS = RenderOptions(now=FIXED_NOW)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # capture paths in reports are relative to the repo root


def validate(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    return doc


def test_schema_is_valid_and_shipped_in_the_package() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == "ws-analyzer/report/v1"


def test_motivating_case_contract_fields() -> None:
    doc = validate(render(chat_analysis(), "json", OPTS))
    assert doc["schema"] == "ws-analyzer/report/v1"
    assert doc["captures"] == [
        {**doc["captures"][0], "path": "examples/chat-1008/server-side.pcapng", "format": "pcapng"}
    ]
    (conn,) = doc["connections"]
    assert conn["client"].startswith("127.0.0.1:") and conn["server"] == "127.0.0.1:8080"
    assert conn["origin"] is None
    assert conn["request"]["method"] == "GET"
    assert conn["request"]["target"] == "/ws/chat?room=support"
    assert {"name": "Upgrade", "value": "websocket"} in conn["response"]["headers"]
    assert conn["response"]["status"] == 101
    (msg,) = conn["messages"]
    # size is the application payload after inflating: the wire frame is 52 bytes
    assert msg["from"] == "client" and msg["opcode"] == 1 and msg["size"] == 51
    assert conn["frames"][0]["length"] == 52 and conn["frames"][0]["rsv"] == 4
    assert msg["preview"]["kind"] == "json"
    assert conn["close"]["from"] == "server" and conn["close"]["code"] == 1008
    assert conn["close"]["reason"] == "origin not allowed" and conn["close"]["echoed"] is True
    assert conn["close_known"] is True and conn["end"] == "close-handshake"
    assert [f["rule"] for f in doc["findings"]] == [
        "close-1008-after-first-message",
        "origin-missing",
    ]
    assert doc["findings"][0]["severity"] == "critical"
    assert doc["not_evaluable"][0] == {
        "rule": "close-not-echoed",
        "title": "Close not answered",
        "connection": conn["id"],
        "reason": "this capture does not show the transport end",
        "advice": "capture on both hosts",
        "missing": ["transport_end"],
    }
    assert isinstance(msg["time"], float) and msg["time"] > 1.7e9  # Unix seconds
    assert doc["tool"]["version"] and doc["generated"] == FIXED_NOW


def test_har_connections_have_no_frames_and_unknown_close() -> None:
    doc = validate(render(mitm_analysis(), "json", OPTS))
    assert len(doc["connections"]) == 3
    for conn in doc["connections"]:
        assert "frames" not in conn
        assert conn["close"] is None and conn["close_known"] is False
        assert conn["client"] is None and conn["server"] == "143.244.202.177:443"
    counts = [
        (c["message_count"]["client"], c["message_count"]["server"]) for c in doc["connections"]
    ]
    assert counts == [(0, 1), (0, 1), (2, 1)]


@pytest.mark.parametrize("name", ["chat", "mitm"])
def test_json_golden(name: str, golden: Callable[[str, str], None]) -> None:
    analysis = chat_analysis() if name == "chat" else mitm_analysis()
    text = render(analysis, "json", OPTS)
    validate(text)
    golden(f"{name}.json", text)


def test_every_real_capture_validates(tmp_path: Path) -> None:
    """Reports of real captures through the whole pipeline (rules included)."""
    paths = [
        BOTH_PCAP,
        ROOT / "examples" / "chat-1008" / "browser.har",
        ROOT / "tests" / "data" / "render" / "mitmproxy-websocket.har",
        make_hostile_har(tmp_path / "hostile.har"),
        make_secrets_har(tmp_path / "secrets.har"),
    ]
    for path in paths:
        analysis = analyze([path])
        for redact in (True, False):
            validate(render(analysis, "json", RenderOptions(redact=redact)))


def test_ipv6_endpoints_keep_their_brackets() -> None:
    capture = load_capture(BOTH_PCAP.relative_to(ROOT))
    conn = capture.connections[0]
    from dataclasses import replace

    v6 = replace(conn, client="[::1]:51234", server="[2001:db8::1]:8080")
    analysis = Analysis(captures=(replace(capture, connections=(v6,)),))
    doc = validate(render(analysis, "json", OPTS))
    assert doc["connections"][0]["client"] == "[::1]:51234"
    assert doc["connections"][0]["server"] == "[2001:db8::1]:8080"
    bad = json.loads(render(analysis, "json", OPTS))
    bad["connections"][0]["client"] = "::1:51234"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(load_schema()).validate(bad)


def test_hostile_capture_json_is_valid_utf8(tmp_path: Path) -> None:
    analysis = hostile_analysis(tmp_path)
    text = render(analysis, "json", OPTS)
    text.encode("utf-8")  # lone surrogates from the HAR became U+FFFD
    doc = validate(text)
    (conn,) = [c for c in doc["connections"] if c["close"] is not None]
    assert conn["close"]["code"] == 4000 and conn["close"]["from"] is None
    big = max(conn["messages"], key=lambda m: m["size"])
    assert big["size"] == 2 * 1024 * 1024 and big["preview"]["truncated"] is True
    assert len(big["preview"]["text"]) <= 1024
