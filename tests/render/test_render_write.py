"""write_reports: where the files go, and the one-line errors when they cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_captures import ROOT, chat_analysis

from analyzer.errors import OutputError
from analyzer.render import FORMATS, RenderOptions, render, write_reports


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_default_is_report_files_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = chat_analysis()
    monkeypatch.chdir(tmp_path)
    written = write_reports(analysis, ["html", "json"], None)
    assert written == [Path("report.html"), Path("report.json")]
    assert (tmp_path / "report.json").read_text(encoding="utf-8").startswith("{")


def test_folder_gets_one_file_per_format(tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_reports(chat_analysis(), FORMATS, out)
    names = sorted(p.name for p in written)
    assert names == ["report.html", "report.json", "report.md", "report.sarif", "report.xml"]
    assert all(p.parent == out and p.stat().st_size > 0 for p in written)


def test_file_with_one_format(tmp_path: Path) -> None:
    target = tmp_path / "ticket.md"
    opts = RenderOptions(now=1795506300.0)
    assert write_reports(chat_analysis(), ["md"], target, opts) == [target]
    assert target.read_text(encoding="utf-8") == render(chat_analysis(), "md", opts)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown report format 'pdf'"):
        write_reports(chat_analysis(), ["pdf"], tmp_path)
    with pytest.raises(OutputError, match="several formats need a folder"):
        write_reports(chat_analysis(), ["md", "json"], tmp_path / "x.md")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write the report") as info:
        write_reports(chat_analysis(), ["md"], blocker / "sub" / "r.md")
    assert "\n" not in str(info.value)
