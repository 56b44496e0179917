"""The HTML report in a real browser (Debian's chromium, headless): injected script in a
hostile capture never runs, our own script does, and the text is shown."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from render_captures import ROOT, TITLE_SCRIPT, hostile_analysis, hostile_finding

from analyzer.pipeline import Analysis, analyze
from analyzer.render import RenderOptions, render

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def hostile_report(tmp_path: Path) -> Path:
    analysis = hostile_analysis(tmp_path)
    analysis = Analysis(
        captures=analysis.captures,
        findings=(*analysis.findings, hostile_finding(analysis.captures[0])),
        not_evaluable=analysis.not_evaluable,
        rules_run=analysis.rules_run,
    )
    out = tmp_path / "hostile.html"
    out.write_text(render(analysis, "html", RenderOptions(now=1795506300.0)), encoding="utf-8")
    return out


def test_injected_script_does_not_run(tmp_path: Path) -> None:
    report = hostile_report(tmp_path)
    result = chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", report.as_uri())
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<title>ws-analyzer: " in dom and "PWNED</title>" not in dom
    assert 'class="js"' in dom.split(">", 2)[1]  # our script ran under the CSP
    # no element was injected: no <img>, no <b>, no extra script, style or meta...
    elements = Elements()
    elements.feed(dom)
    assert "img" not in elements.tags and "b" not in elements.tags
    assert elements.tags.count("script") == 1 and elements.tags.count("style") == 1
    assert elements.tags.count("meta") == 5  # charset, CSP, referrer, viewport, generator
    assert "pwned-img" not in elements.ids
    assert elements.handlers == []
    # ... and the attacks are on the page as text
    text = "".join(elements.text)
    assert f"<script>{TITLE_SCRIPT}</script>" in text
    assert f"javascript:{TITLE_SCRIPT}" in text
    assert '"><img src=x onerror=' in text


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.handlers: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids += [str(v) for k, v in attrs if k == "id"]
        self.handlers += [k for k, _ in attrs if k.startswith("on")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_screenshot_of_a_real_capture(tmp_path: Path) -> None:
    """A screenshot of the motivating case's report (looked at by a person once; see the
    note on issue 5). Here: chromium renders it to a PNG of a plausible size."""
    analysis = analyze([ROOT / "examples" / "chat-1008" / "server-side.pcapng"])
    report = tmp_path / "report.html"
    report.write_text(render(analysis, "html"), encoding="utf-8")
    png = tmp_path / "report.png"
    result = chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={png}", report.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
