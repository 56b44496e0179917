"""The HTML renderer keeps its jinja2 environment (compiled templates) and its inline
stylesheet, script and CSP for the whole process: a report drawn after others, with
other captures and redaction settings in between, is the same text as one drawn by a
fresh environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_captures import chat_analysis, hostile_analysis, mitm_analysis, secrets_analysis

from analyzer.pipeline import Analysis
from analyzer.render import RenderOptions, render
from analyzer.render import html as html_mod

NOW = 1795506300.0


def _fresh(analysis: Analysis, options: RenderOptions, monkeypatch: pytest.MonkeyPatch) -> str:
    """The report drawn with empty caches (what the first report of a process gets)."""
    with monkeypatch.context() as m:
        m.setattr(html_mod, "_ENVIRONMENTS", {})
        m.setattr(html_mod, "_ASSETS", {})
        return render(analysis, "html", options)


def test_reused_environment_draws_the_same_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyses = [
        chat_analysis(),
        mitm_analysis(),
        hostile_analysis(tmp_path),
        secrets_analysis(tmp_path),
    ]
    settings = [RenderOptions(now=NOW), RenderOptions(redact=False, now=NOW)]
    expected = {
        (i, j): _fresh(a, o, monkeypatch)
        for i, a in enumerate(analyses)
        for j, o in enumerate(settings)
    }
    # Interleaved and repeated, all through the one cached environment.
    for _ in range(2):
        for j, o in enumerate(settings):
            for i, a in enumerate(analyses):
                assert render(a, "html", o) == expected[(i, j)], (i, j)
    assert len(html_mod._ENVIRONMENTS) == 1
    # Redaction on and off really differ for the capture with secrets: the comparison
    # above is between different pages, not one page every time.
    assert expected[(3, 0)] != expected[(3, 1)]
