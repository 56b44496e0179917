"""Every capture the project holds (tests/data, examples) renders in every format: JSON
valid against the schema, HTML structurally sound (anchors resolve, CSP, nothing loaded
from outside), SARIF valid, JUnit well-formed. Renderers alone (no rule engine), so a
rule change cannot hide a renderer failure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from render_captures import ROOT
from test_render_ci import sarif_validate
from test_render_html import check_structure

from analyzer.errors import InputError
from analyzer.pipeline import Analysis, Options, load_capture
from analyzer.render import RenderOptions, render
from analyzer.render.json_report import load_schema

CAPTURES = sorted(
    p.relative_to(ROOT)
    for folder in (ROOT / "tests" / "data", ROOT / "examples")
    for p in folder.rglob("*")
    if p.suffix in (".pcap", ".pcapng", ".har", ".gz") and p.is_file()
)


def test_there_are_many() -> None:
    assert len(CAPTURES) > 40


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p) for p in CAPTURES])
def test_renders_everywhere(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    keys = path.with_suffix(".keys")
    try:
        capture = load_capture(path, Options(keylog=keys if keys.exists() else None))
    except InputError:
        pytest.skip("deliberately broken input (its reader's tests cover it)")
    analysis = Analysis(captures=(capture,))
    for redact in (True, False):
        options = RenderOptions(redact=redact)
        doc = json.loads(render(analysis, "json", options))
        jsonschema.Draft202012Validator(load_schema()).validate(doc)
        check_structure(render(analysis, "html", options))
        sarif_validate(render(analysis, "sarif", options))
        ET.fromstring(render(analysis, "junit", options))
        assert render(analysis, "md", options).startswith("# ")
