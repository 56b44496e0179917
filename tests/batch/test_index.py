"""index.html: self-contained, escaped, and it shows where the failures cluster."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
from batch_helpers import DATA, EXAMPLES, needs_pcap, needs_render

from analyzer.batch import run_batch


class Page(HTMLParser):
    """Tags with attributes, the stylesheet, and table rows (cell texts) under each h2."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style = ""
        self.sections: dict[str, list[list[str]]] = {}
        self._in: list[str] = []
        self._h2 = ""
        self._heading = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)
        if tag == "h2":
            self._heading = ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "h2":
            self._h2 = self._heading.strip()
            self.sections.setdefault(self._h2, [])
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.sections.setdefault(self._h2, []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "style":
            self.style += data
        if self._in and self._in[-1] == "h2":
            self._heading += data
        if self._cell is not None and "title" not in self._in:
            self._cell.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def hostile_har(tmp_path: Path) -> Path:
    """A real HAR whose User-Agent and Origin carry markup, as a hostile page could send."""
    har = json.loads((DATA / "har" / "pcap2har-websocket-parse.har").read_text())
    headers = har["log"]["entries"][0]["request"]["headers"]
    for h in headers:
        if h["name"].lower() == "user-agent":
            h["value"] = "<img src=x onerror=alert(1)>"
        if h["name"].lower() == "origin":
            h["value"] = '"><script>alert(2)</script>'
    path = tmp_path / "in" / "hostile.har"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(har))
    return path


@needs_render
def test_index_is_self_contained_and_escaped(tmp_path: Path) -> None:
    hostile = hostile_har(tmp_path)
    for f in (DATA / "har").iterdir():
        shutil.copyfile(f, hostile.parent / f.name)
    out = tmp_path / "out"
    run_batch([str(hostile.parent)], out, progress_stream=io.StringIO())
    page = parse(out / "index.html")

    tags = [t for t, _ in page.tags]
    for forbidden in ("script", "img", "link", "iframe", "object", "embed", "base"):
        assert forbidden not in tags
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv"))
    assert csp is not None and csp.startswith("default-src 'none'")
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp  # the one stylesheet, and only it
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not (name.startswith("on")), (tag, name)
            if name in ("href", "src", "xlink:href") and value:
                assert not re.match(r"^[a-z]+:|^//", value), value  # relative links only
                assert (out / unquote(value)).is_file(), value
    # The hostile strings are there as text, not markup.
    agents = [row[0] for row in page.sections["By user agent"][1:]]
    assert "<img src=x onerror=alert(1)>" in agents
    origins = [row[0] for row in page.sections["By origin"][1:]]
    assert '"><script>alert(2)</script>' in origins


@needs_render
@needs_pcap
def test_index_shows_the_1008_closes_come_without_origin(tmp_path: Path) -> None:
    """The motivating case in a batch: every 1008 close is a connection without Origin."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in EXAMPLES.iterdir():
        if f.is_file():
            shutil.copyfile(f, inputs / f.name)
    for f in (DATA / "har").iterdir():
        shutil.copyfile(f, inputs / f.name)
    out = tmp_path / "out"
    run_batch([str(inputs)], out, progress_stream=io.StringIO())

    summary = pd.read_parquet(out / "summary.parquet")  # CSV readers turn "null" into NaN
    closes_1008 = summary[summary["close_code"] == 1008]
    assert len(closes_1008) >= 1
    page = parse(out / "index.html")
    assert any(
        t == "svg" and a.get("aria-label") == "Close codes (connections)" for t, a in page.tags
    )
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "1008 Policy Violation" in text
    rows = {row[0]: row for row in page.sections["By origin"][1:]}
    no_origin = rows["(no Origin header)"]
    without = summary[summary["origin"].isna()]
    assert int(no_origin[2]) == len(without)  # connections
    assert f"1008 Policy Violation \u00d7{(without['close_code'] == 1008).sum()}" in no_origin[3]


def test_a_batch_where_nothing_could_be_read(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "cut.har").write_bytes(b'{"log": {"entries": [')
    (inputs / "noise.pcap").write_bytes(bytes(range(200)))
    out = tmp_path / "out"
    outcome = run_batch([str(inputs)], out, progress_stream=io.StringIO())
    assert len(outcome.failed) == 2 and outcome.connections == 0
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 0 and "close_code" in summary.columns
    page = parse(out / "index.html")
    failed = page.sections["Captures that could not be read"][1:]
    assert sorted(row[0] for row in failed) == [str(inputs / "cut.har"), str(inputs / "noise.pcap")]
    assert all(row[1] for row in failed)
