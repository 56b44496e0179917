"""Reports: HTML, JSON, Markdown, SARIF and JUnit XML, redacted on the way out.

``render(analysis, fmt, options)`` returns one report as text; ``write_reports`` writes
several. Every format is drawn from one redacted document
(``analyzer.render.document.build_document``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from analyzer.engine.analysis import Analysis
from analyzer.errors import OutputError
from analyzer.render.document import Doc, build_document
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions

FORMATS = ("html", "json", "md", "sarif", "junit")
EXTENSIONS = {"html": "html", "json": "json", "md": "md", "sarif": "sarif", "junit": "xml"}

__all__ = ["EXTENSIONS", "FORMATS", "RenderOptions", "render", "write_reports"]


def _renderer(fmt: str) -> Callable[[Doc], str]:
    """The function drawing ``fmt`` from the report document."""
    if fmt == "html":
        from analyzer.render.html import html_text

        return html_text
    if fmt == "json":
        from analyzer.render.json_report import json_text

        return json_text
    if fmt == "md":
        from analyzer.render.markdown import markdown_text

        return markdown_text
    if fmt == "sarif":
        from analyzer.render.sarif import sarif_text

        return sarif_text
    if fmt == "junit":
        from analyzer.render.junit import junit_text

        return junit_text
    raise OutputError(f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})")


def render(analysis: Analysis, fmt: str, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """One report as text. Raises ``OutputError`` for an unknown format."""
    draw = _renderer(fmt)
    return draw(build_document(analysis, options))


def _targets(formats: Sequence[str], output: Path | None) -> list[tuple[str, Path]]:
    if not formats:
        raise OutputError("no report format asked for")
    for fmt in formats:
        _renderer(fmt)  # unknown formats fail before anything is written
    unique = list(dict.fromkeys(formats))
    if output is None:
        return [(f, Path(f"report.{EXTENSIONS[f]}")) for f in unique]
    if output.is_dir() or (len(unique) > 1 and not output.suffix):
        return [(f, output / f"report.{EXTENSIONS[f]}") for f in unique]
    if len(unique) > 1:
        raise OutputError("several formats need a folder for -o, not a file name", output)
    return [(unique[0], output)]


def write_reports(
    analysis: Analysis,
    formats: Sequence[str],
    output: Path | None,
    options: RenderOptions = DEFAULT_OPTIONS,
) -> list[Path]:
    """Write each format; returns the paths written. Raises ``OutputError``.

    ``output`` None: ``report.<ext>`` in the current folder; a folder (existing, or a
    name without a suffix when several formats are asked): one file per format inside
    it; a file path with one format: that file.
    """
    targets = _targets(formats, output)
    doc = build_document(analysis, options)  # once: every format draws from it
    written: list[Path] = []
    for fmt, path in targets:
        text = _renderer(fmt)(doc)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="replace")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OutputError(f"cannot write the report ({reason})", path) from None
        written.append(path)
    return written
