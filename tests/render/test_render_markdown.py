"""The Markdown report: short, escaped, verdict first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from render_captures import ROOT, chat_analysis, hostile_analysis, mitm_analysis

from analyzer.pipeline import Analysis, analyze, load_capture
from analyzer.render import RenderOptions, render

OPTS = RenderOptions(now=1795506300.0)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", ["chat", "mitm"])
def test_markdown_golden(name: str, golden: Callable[[str, str], None]) -> None:
    analysis = chat_analysis() if name == "chat" else mitm_analysis()
    golden(f"{name}.md", render(analysis, "md", OPTS))


def test_verdict_first_and_short() -> None:
    text = render(chat_analysis(), "md", OPTS)
    lines = text.splitlines()
    assert lines[0].startswith("# The server closed the connection with 1008 Policy Violation")
    assert "server-side#0" in lines[0] and "+0.022 s after the upgrade request" in lines[0]
    assert len(lines) < 60
    assert "| Origin | **absent** |" in lines


def test_real_rules_single_connection_under_60_lines() -> None:
    analysis = analyze([Path("examples/chat-1008/server-side.pcapng")])
    lines = render(analysis, "md", OPTS).splitlines()
    assert len(lines) < 60
    assert "1008" in lines[0] and "Origin" in lines[0]


def test_no_findings_says_so_and_what_was_analyzed() -> None:
    capture = load_capture(Path("examples/chat-1008/browser.har"))
    text = render(Analysis(captures=(capture,), rules_run=("origin-missing",)), "md", OPTS)
    first = text.splitlines()[0]
    assert first == (
        "# No problem found: 1 rule found nothing in 1 WebSocket connection and 1 message "
        "in examples/chat-1008/browser.har (har)."
    )


def test_captured_text_is_inert(tmp_path: Path) -> None:
    analysis = hostile_analysis(tmp_path)
    text = render(analysis, "md", OPTS)
    assert "<script" not in text and "<img" not in text and "<svg" not in text
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert "&lt;script&gt;" in text or "&lt;script>" in text or "&lt;script\\>" in text
    assert len(text) < 100_000  # megabytes in, a ticket-sized text out
