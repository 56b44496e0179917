"""The sequence diagram and long tables on a real capture with many frames
(wstunnel tunnelling SSH: 2 connections, 144 binary messages, pings, closes 1000), whose
Sec-WebSocket-Protocol carries a real JWT bearer token."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from render_captures import ROOT

from analyzer.pipeline import Analysis, load_capture
from analyzer.render import FORMATS, RenderOptions, render
from analyzer.render.document import build_document
from analyzer.render.svg import MAX_ROWS, events, fold, sequence_svg

SSH = Path("tests/data/render/wstunnel-ssh.pcap")


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_long_run_is_folded_keeping_closes_and_pinned_rows() -> None:
    analysis = Analysis(captures=(load_capture(SSH),))
    doc = build_document(analysis, RenderOptions())
    conn = max(doc["connections"], key=lambda c: len(c["messages"]))
    assert len(conn["messages"]) > MAX_ROWS
    pinned = conn["messages"][len(conn["messages"]) // 2]["index"]
    rows = events(conn, 0, {pinned}, set())
    folded = fold(rows)
    assert len(folded) < len(rows) and len(folded) <= MAX_ROWS + 8
    kinds = [e.kind for e in folded]
    assert kinds[:2] == ["handshake", "handshake"] and kinds[-1] == "end"
    assert kinds.count("close") == 2 and "fold" in kinds
    assert any(e.anchor == f"#c0-m{pinned}" for e in folded)
    # what was folded is counted: folded rows + shown rows == all rows
    counts = [re.search(r"(\d+) more", e.label) for e in folded if e.kind == "fold"]
    folded_n = sum(int(m.group(1)) for m in counts if m is not None)
    assert folded_n + sum(1 for e in folded if e.kind != "fold") == len(rows)
    svg = str(sequence_svg(conn, 0, {pinned}, set()))
    assert svg.count("<line") < 3 * (MAX_ROWS + 8)
    assert "close 1000 Normal Closure" in svg and "ping" in svg


def test_long_tables_are_cut_with_every_anchor_resolving() -> None:
    capture = load_capture(SSH)
    conn = max(capture.connections, key=lambda c: len(c.messages))
    # 600 messages: the real ones repeated with fresh indexes (a long session)
    many = tuple(m._replace(index=i) for i, m in enumerate((conn.messages * 10)[:600]))
    long_conn = replace(conn, messages=many, message_count={"client": 300, "server": 300})
    analysis = Analysis(captures=(replace(capture, connections=(long_conn,)),))
    html = render(analysis, "html")
    rows = re.findall(r'<tr id="c0-m(\d+)"', html)
    assert 200 < len(rows) < 600 and "rows not shown here" in html
    ids = set(re.findall(r'id="([^"]+)"', html))
    for href in re.findall(r'href="#([^"]+)"', html):
        assert href in ids


@pytest.mark.parametrize("fmt", FORMATS)
def test_real_jwt_in_subprotocol_is_hidden(fmt: str) -> None:
    analysis = Analysis(captures=(load_capture(SSH),))
    text = render(analysis, fmt)
    assert "eyJ0eXAiOiJKV1Q" not in text
    if fmt == "json":
        assert '"subprotocol-token": 2' in text or '"subprotocol-token": 4' in text
    raw = render(analysis, fmt, RenderOptions(redact=False))
    if fmt in ("html", "json"):
        assert "eyJ0eXAiOiJKV1Q" in raw
