"""``ws-analyzer batch``: the click command over ``analyzer.batch``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analyzer.batch import BatchOutcome, run_batch
from analyzer.batch.run import EXIT_FAILED, EXIT_INTERRUPTED
from analyzer.cli.common import fail, make_options, redaction_options, rule_options, split_csv


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the reports and the summary (made if missing; re-runs resume).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Captures analyzed at once on this machine. Default: the number of CPUs.",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Run on a Dask distributed cluster instead (pip install 'ws-analyzer[dask]'). "
    "The workers must see the inputs and OUTDIR at the same paths.",
)
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    metavar="FORMAT",
    help="Report format(s) per capture: html (default), json, md, sarif, junit.",
)
@click.option("--force", is_flag=True, help="Analyze again captures already done in OUTDIR.")
@click.option(
    "--keylog",
    type=click.Path(path_type=Path),
    help="TLS key log (NSS format) for wss:// in packet captures.",
)
@rule_options
@redaction_options
def batch(
    inputs: tuple[str, ...],
    outdir: Path,
    jobs: int | None,
    scheduler: str | None,
    formats: tuple[str, ...],
    force: bool,
    keylog: Path | None,
    rule_dirs: tuple[Path, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    no_redact: bool,
    redact_header: tuple[str, ...],
    redact_param: tuple[str, ...],
) -> None:
    """Analyze many captures: one report each, and a summary of them all.

    INPUT is a capture file, a folder (searched recursively; files are recognised by
    content, and what is not a capture is skipped and counted) or a glob pattern
    ("exports/**/*.har"). OUTDIR receives reports/<name>/ per capture, and
    summary.csv (one row per connection), findings.csv (one row per finding),
    captures.csv (one row per capture, with the error of those that failed), each
    also as .parquet, and index.html: charts of close codes and rule hits, the same
    by host, origin, user agent and creator, the captures worst first, and those
    that could not be read.

    Running again over the same OUTDIR skips the captures already done (same file,
    same options; recorded in OUTDIR/.state/) unless --force: an interrupted batch
    resumes where it stopped, and the summary covers every capture done in OUTDIR.

    Exit codes: 0 every capture was analyzed, 1 some could not be read (listed in
    index.html and captures.csv), 2 bad usage, 130 interrupted.
    """
    from analyzer.render import FORMATS

    fmts = split_csv(formats) or ("html",)
    for fmt in fmts:
        if fmt not in FORMATS:
            fail(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    options = make_options(rule_dirs, select, ignore, keylog)
    outcome = run_batch(
        inputs,
        outdir,
        formats=fmts,
        options=options,
        jobs=jobs,
        scheduler=scheduler,
        force=force,
        redact=not no_redact,
        redact_headers=redact_header,
        redact_params=redact_param,
    )
    report_outcome(outcome, outdir)
    if outcome.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if outcome.failed:
        sys.exit(EXIT_FAILED)


def report_outcome(outcome: BatchOutcome, outdir: Path, limit: int = 10) -> None:
    """The end-of-run lines on stderr."""

    def echo(text: str) -> None:
        click.echo(text, err=True)

    for folder in outcome.empty:
        echo(f"ws-analyzer: warning: {folder}: no capture found in this folder")
    for name, error in outcome.failed[:limit]:
        echo(f"ws-analyzer: failed: {name}: {error}")
    if len(outcome.failed) > limit:
        echo(f"ws-analyzer: ... and {len(outcome.failed) - limit} more (see captures.csv)")
    echo(
        f"batch: {outcome.tasks} captures ({outcome.reused} already done, {outcome.ran} "
        f"analyzed now), {len(outcome.failed)} could not be read, {outcome.skipped} "
        f"non-capture files skipped; {outcome.connections} connections, "
        f"{outcome.findings} findings"
    )
    echo(f"wrote {outdir / 'index.html'}")
    if outcome.interrupted:
        echo(
            "ws-analyzer: interrupted: the captures finished so far are kept and summarized; "
            "run the same command again to resume"
        )
