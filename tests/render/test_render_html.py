"""The HTML report, checked structurally (html.parser): verdict first, CSP, anchors that
resolve, nothing loaded from outside, absent Origin shown as absent."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from render_captures import ROOT, chat_analysis, hostile_analysis, mitm_analysis

from analyzer.pipeline import Analysis, analyze, load_capture
from analyzer.render import RenderOptions, render
from analyzer.render.html import csp_hash

OPTS = RenderOptions(now=1795506300.0)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.metas: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self.h1: list[str] = []
        self.handlers: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if "href" in a:
            self.hrefs.append(str(a["href"]))
        if "src" in a:
            self.srcs.append(str(a["src"]))
        if tag == "meta":
            self.metas.append(a)
        self.handlers += [k for k in a if k.startswith("on")]
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        current = self._in[-1] if self._in else ""
        if current == "script":
            self.scripts.append(data)
        elif current == "style":
            self.styles.append(data)
        else:
            self.text.append(data)
        if "h1" in self._in:
            self.h1.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def check_structure(html: str) -> Page:
    page = parse(html)
    # one CSP, forbidding everything but our own style and script, by hash
    csp = [
        m for m in page.metas if (m.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(csp) == 1
    policy = str(csp[0]["content"])
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
    assert len(page.scripts) == 1 and len(page.styles) == 1
    assert f"script-src {csp_hash(page.scripts[0])}" in policy
    assert f"style-src {csp_hash(page.styles[0])}" in policy
    # nothing from outside: every link is a fragment of this page, and it resolves
    assert page.srcs == []
    ids = set(page.ids)
    assert len(ids) == len(page.ids), "duplicate ids"
    for href in page.hrefs:
        assert href.startswith("#"), href
        assert href[1:] in ids, f"anchor {href} does not resolve"
    assert page.handlers == []
    assert not re.search(r"(?i)\b(?:src|href)\s*=\s*[\"']?(?:https?:|//|javascript:)", html)
    return page


def test_motivating_case_page() -> None:
    html = render(chat_analysis(), "html", OPTS)
    page = check_structure(html)
    headline = " ".join("".join(page.h1).split())
    assert headline.startswith(
        "The server closed the connection with 1008 Policy Violation ('origin not allowed') "
        "right after the client's first message, on connection server-side#0"
    )
    assert "+0.022 s after the upgrade request" in headline
    assert page.tags.index("h1") < page.tags.index("section")  # the verdict comes first
    text = " ".join("".join(page.text).split())
    assert "Wireshark: go to packet 9" in text
    assert "ABSENT: the request carried no Origin header" in text
    assert "Origin" in text and "redaction on" in text
    assert "ws-analyzer 0.1.0" in text and "pcapng" in text
    # evidence points at the close frame, the message, the absent Origin row, User-Agent
    for anchor in ('href="#c0-f1"', 'href="#c0-m0"', 'href="#c0-absent-0"'):
        assert anchor in html
    ua = re.search(r'<tr id="(c0-rq-\d+)" class="hl"><td class="mono">user-agent<', html)
    assert ua is not None and f'href="#{ua.group(1)}"' in html
    # the sequence diagram: lanes, the close with its code, who sent it
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert ">client<" in svg and ">server<" in svg
    assert "close 1008 Policy Violation" in svg and 'href="#c0-f1"' in svg


def test_har_page_and_what_it_cannot_show() -> None:
    html = render(mitm_analysis(), "html", OPTS)
    page = check_structure(html)
    text = " ".join("".join(page.text).split())
    assert "No problem found: 1 rule found nothing in 3 WebSocket connections" in text
    assert "What this capture cannot show" in text
    assert "HAR files record no frames" in text  # Capture.notes
    assert "capture with tcpdump or HTTP Toolkit" in text  # NotEvaluable advice
    assert "unknown: this capture cannot record close frames" in text
    assert "api_key=[REDACTED]" in text and "VCXCEuvhGc" not in html


def test_no_connection_verdict(tmp_path: Path) -> None:
    capture = load_capture(Path("examples/chat-1008/browser.har"))
    from dataclasses import replace

    empty = replace(capture, connections=())
    html = render(Analysis(captures=(empty,)), "html", OPTS)
    page = check_structure(html)
    assert "".join(page.h1).strip() == (
        "No WebSocket connection was found in examples/chat-1008/browser.har (har)."
    )


def test_long_runs_are_cut_but_evidence_rows_stay() -> None:
    path = Path("tests/data/hops/nginx-pass/both-legs.pcapng")
    analysis = analyze([path])
    html = render(analysis, "html", OPTS)
    check_structure(html)


def test_hostile_page_structure(tmp_path: Path) -> None:
    from render_captures import hostile_finding

    analysis = hostile_analysis(tmp_path)
    analysis = Analysis(
        captures=analysis.captures,
        findings=(*analysis.findings, hostile_finding(analysis.captures[0])),
        not_evaluable=analysis.not_evaluable,
        rules_run=analysis.rules_run,
    )
    html = render(analysis, "html", OPTS)
    page = check_structure(html)
    assert "img" not in page.tags and "b" not in page.tags and "meta" not in page.tags[10:]
    assert page.tags.count("script") == 1 and page.tags.count("style") == 1
    assert page.tags.count("svg") == len(analysis.captures[0].connections)
    assert "\x00" not in html and "\x1b" not in html and "\u202e" not in html
    assert len(html) < 1_500_000  # 4 MB of capture text, cut to size
    text = "".join(page.text)
    assert "<script>document.title='PWNED'</script>" in text  # shown, as text
    assert "\\x1b[31mred" in text and "\\u202eevil" in text


def test_readme_command_headline_names_1008_first_message_and_origin() -> None:
    """Issue 5's check, with the real rules: the report of the motivating case says in its
    first line that the server closed with 1008 after the first message and that Origin
    was absent."""
    analysis = analyze([Path("examples/chat-1008/server-side.pcapng")])
    page = check_structure(render(analysis, "html"))
    headline = " ".join("".join(page.h1).split())
    assert "closed the connection with 1008" in headline
    assert "first message" in headline
    assert "no Origin header" in headline
