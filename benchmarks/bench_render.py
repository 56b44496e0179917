"""Report writing cost per capture: the redacted document, each format, the whole write.

Usage: PYTHONPATH=. python benchmarks/bench_render.py [--repeat 20] [CAPTURE...]

Without arguments: typical small captures (two corpus HARs, examples/chat-1008's
server-side.pcapng, every tests/data/loopback/*.pcapng). Each capture is loaded and
evaluated once (not timed), then, per capture, the median of ``--repeat`` runs of:

- ``doc``: ``build_document`` (the redacted document every format draws from);
- each format drawn from a ready document (``html``, ``json``, ``md``, ``sarif``,
  ``junit``);
- ``write html``: ``write_reports(analysis, ("html",), folder)``, what ``batch`` does
  per capture (document, drawing, file write).

Also printed, once: the first HTML report of the process (jinja2 compiles
``report.html.j2``, the stylesheet and script are read and hashed) against the next
ones, which reuse them. Goal (issue 6): writing one report of a small capture well
under 20 ms.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.pipeline import Analysis, Options, evaluate, load_capture  # noqa: E402
from analyzer.render import RenderOptions, write_reports  # noqa: E402
from analyzer.render.document import Doc, build_document  # noqa: E402
from analyzer.render.html import html_text  # noqa: E402
from analyzer.render.json_report import json_text  # noqa: E402
from analyzer.render.junit import junit_text  # noqa: E402
from analyzer.render.markdown import markdown_text  # noqa: E402
from analyzer.render.sarif import sarif_text  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
DRAW: dict[str, Callable[[Doc], str]] = {
    "html": html_text,
    "json": json_text,
    "md": markdown_text,
    "sarif": sarif_text,
    "junit": junit_text,
}


def default_captures() -> list[Path]:
    paths = [
        CORPUS / "har" / "gatling" / "play-chat.har",
        CORPUS / "har" / "mitmproxy" / "websocket.har",
        ROOT / "examples" / "chat-1008" / "server-side.pcapng",
    ]
    paths += sorted((ROOT / "tests" / "data" / "loopback").glob("*.pcapng"))
    return [p for p in paths if p.is_file()]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captures", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    paths = args.captures or default_captures()
    options = Options()
    analyses: list[tuple[Path, Analysis]] = []
    for p in paths:
        analyses.append((p, evaluate((load_capture(p, options),), options)))
    render_options = RenderOptions()
    scratch = Path(tempfile.mkdtemp(prefix="bench-render-"))

    first = analyses[0][1]
    t0 = time.perf_counter()
    write_reports(first, ("html",), scratch / "first", render_options)
    cold = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    write_reports(first, ("html",), scratch / "first", render_options)
    warm = 1000 * (time.perf_counter() - t0)
    print(f"first HTML report of the process {cold:.1f} ms, the same again {warm:.1f} ms")

    header = f"{'capture':32} {'conns':>5} {'doc':>6}"
    header += "".join(f" {fmt:>6}" for fmt in DRAW) + f" {'write html':>10}   (ms, median)"
    print(header)
    totals: list[float] = []
    for p, analysis in analyses:
        doc = build_document(analysis, render_options)
        conns = len(doc["connections"])
        row = f"{p.name[:32]:32} {conns:5d} "
        doc_ms = median_ms(functools.partial(build_document, analysis, render_options), args.repeat)
        row += f"{doc_ms:6.2f}"
        for draw in DRAW.values():
            row += f" {median_ms(functools.partial(draw, doc), args.repeat):6.2f}"
        folder = scratch / p.name
        write = median_ms(
            functools.partial(write_reports, analysis, ("html",), folder, render_options),
            args.repeat,
        )
        totals.append(write)
        print(f"{row} {write:10.2f}")
    print(
        f"write html over {len(totals)} captures: median {statistics.median(totals):.2f} ms, "
        f"max {max(totals):.2f} ms (goal: well under 20 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
