"""The ``ws-analyzer`` command: thin click commands over ``analyzer.pipeline``.

Every error the user can cause (``AnalyzerError``) becomes one line on stderr,
``ws-analyzer: error: <file>: <what is wrong>``, and exit code 2: never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from analyzer import __version__
from analyzer.cli.batch import batch
from analyzer.cli.common import fail, make_options, redaction_options, rule_options, split_csv
from analyzer.cli.rules import rules
from analyzer.errors import AnalyzerError
from analyzer.pipeline import Analysis, analyze

SEVERITIES = ("info", "low", "medium", "high", "critical")


class _Group(click.Group):
    """Runs a command and turns AnalyzerError into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnalyzerError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("ws-analyzer: interrupted", err=True)
            sys.exit(130)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"ws-analyzer {__version__}")
    ctx.exit()


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version, and whether the compiled packet-capture loops are in use.",
)
def main() -> None:
    """Find out why a WebSocket connection failed, from a capture alone.

    Reads HAR exports (Chrome, Edge, Firefox, Safari, mitmproxy, HTTP Toolkit,
    Playwright) and packet captures (pcap, pcapng, gzip-compressed or not), finds every
    WebSocket connection, its upgrade handshake, its frames and its close, runs rules
    over them and writes a report to attach to a bug ticket.

    \b
    Start here:
      ws-analyzer analyze session.har                  # report.html in this folder
      ws-analyzer analyze capture.pcapng -f md          # a summary to paste in a ticket
      ws-analyzer analyze a.har b.pcap -o out/ -f html,json
      ws-analyzer rules list                           # what the rules look for
      ws-analyzer batch exports/ -o summary/           # thousands of sessions at once
    """


@main.command("analyze")
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write: a file (one format) or a folder (one file per format). "
    "Default: report.<ext> in the current folder. '-' writes to standard output.",
)
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    metavar="FORMAT",
    help="html (default), json, md, sarif or junit; comma-separated or repeated.",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    help="Exit with code 1 when a finding reaches this severity (for CI pipelines).",
)
@click.option(
    "--keylog",
    type=click.Path(path_type=Path),
    help="TLS key log (NSS format, as SSLKEYLOGFILE writes) to decrypt wss:// in packet "
    "captures. Default: $SSLKEYLOGFILE when set.",
)
@rule_options
@redaction_options
def analyze_command(
    captures: tuple[Path, ...],
    output: Path | None,
    formats: tuple[str, ...],
    fail_on: str | None,
    keylog: Path | None,
    rule_dirs: tuple[Path, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    no_redact: bool,
    redact_header: tuple[str, ...],
    redact_param: tuple[str, ...],
) -> None:
    """Analyze one or more captures of one incident and write a report.

    CAPTURE is a HAR (.har, .har.gz), pcap or pcapng file; the format is found from the
    content. Several captures of the same incident (a browser HAR and a server-side pcap,
    say) are analyzed together, and legs of the same session are linked.

    Exit codes: 0 done, 1 a finding reached --fail-on, 2 bad input or usage.
    """
    from analyzer.render import FORMATS, RenderOptions, render, write_reports

    fmts = split_csv(formats) or ("html",)
    for fmt in fmts:
        if fmt not in FORMATS:
            fail(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    options = make_options(rule_dirs, select, ignore, keylog)
    analysis = analyze(captures, options)
    render_options = RenderOptions(
        redact=not no_redact,
        redact_headers=tuple(redact_header),
        redact_params=tuple(redact_param),
    )
    _say_what_was_found(analysis)
    if output is not None and str(output) == "-":
        if len(fmts) != 1:
            fail("-o - writes one format to standard output; pick one with --format")
        click.echo(render(analysis, fmts[0], render_options), nl=False)
    else:
        for path in write_reports(analysis, fmts, output, render_options):
            click.echo(f"wrote {path}", err=True)
    if fail_on is not None:
        from analyzer.engine.findings import Severity

        threshold = Severity.parse(fail_on)
        if any(f.severity >= threshold for f in analysis.findings):
            sys.exit(1)


def _say_what_was_found(analysis: Analysis) -> None:
    """One line per capture on stderr, so a terminal user sees the gist at once."""
    for capture in analysis.captures:
        encrypted = sum(1 for c in capture.connections if c.tls is not None and c.request is None)
        n = len(capture.connections) - encrypted
        parts = []
        if n or not encrypted:
            word = "connection" if n == 1 else "connections"
            parts.append(f"{n} WebSocket {word}" if n else "no WebSocket connection found")
        if encrypted:
            word = "connection" if encrypted == 1 else "connections"
            parts.append(f"{encrypted} TLS {word} not decrypted (see --keylog)")
        click.echo(f"{capture.path}: {', '.join(parts)}", err=True)
    if analysis.findings:
        top = analysis.findings[0]
        click.echo(f"[{top.severity.label}] {top.message}", err=True)


main.add_command(rules)
main.add_command(batch)


if __name__ == "__main__":  # pragma: no cover
    main()
