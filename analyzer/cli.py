"""The ``ws-analyzer`` command: thin click commands over ``analyzer.pipeline``.

Every error the user can cause (``AnalyzerError``) becomes one line on stderr,
``ws-analyzer: error: <file>: <what is wrong>``, and exit code 2: never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from analyzer import __version__
from analyzer.errors import EXIT_USAGE, AnalyzerError
from analyzer.pipeline import Analysis, Options, analyze

F = TypeVar("F", bound=Callable[..., Any])

SEVERITIES = ("info", "low", "medium", "high", "critical")


def fail(error: AnalyzerError | str) -> None:
    """Print one line and exit 2."""
    click.echo(f"ws-analyzer: error: {error}", err=True)
    sys.exit(EXIT_USAGE)


def split_csv(values: Sequence[str]) -> tuple[str, ...]:
    """``--format html,json --format md`` -> ("html", "json", "md")."""
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)


def rule_options(func: F) -> F:
    """Options shared by ``analyze`` and ``batch``: which rules run."""
    func = click.option(
        "--rules",
        "rule_dirs",
        multiple=True,
        type=click.Path(path_type=Path),
        help="A folder of your own rule files (<id>.yaml), used beside the built-in ones. "
        "Repeatable.",
    )(func)
    func = click.option(
        "--select",
        multiple=True,
        metavar="ID|TAG",
        help="Run only these rules (ids or tags, comma-separated or repeated).",
    )(func)
    func = click.option(
        "--ignore",
        multiple=True,
        metavar="ID|TAG",
        help="Skip these rules (ids or tags, comma-separated or repeated).",
    )(func)
    return func


def redaction_options(func: F) -> F:
    func = click.option(
        "--no-redact",
        is_flag=True,
        help="Keep secrets (Authorization, Cookie, tokens in URLs and payloads) in the "
        "output. Redaction is on by default; the report says which it was.",
    )(func)
    func = click.option(
        "--redact-header",
        multiple=True,
        metavar="NAME",
        help="Also redact this header's value. Repeatable.",
    )(func)
    func = click.option(
        "--redact-param",
        multiple=True,
        metavar="NAME",
        help="Also redact this query parameter's value. Repeatable.",
    )(func)
    return func


def make_options(
    rule_dirs: Sequence[Path],
    select: Sequence[str],
    ignore: Sequence[str],
    keylog: Path | None = None,
) -> Options:
    for d in rule_dirs:
        if not d.is_dir():
            fail(AnalyzerError("--rules takes a folder of rule files; this is not one", d))
    if keylog is None and os.environ.get("SSLKEYLOGFILE"):
        # Browsers and curl append to this file; a stale variable naming a file that is
        # gone must not stop the analysis of a capture that needs no keys.
        env_keylog = Path(os.environ["SSLKEYLOGFILE"])
        if env_keylog.is_file():
            keylog = env_keylog
    return Options(
        rule_dirs=tuple(rule_dirs),
        select=split_csv(select),
        ignore=split_csv(ignore),
        keylog=keylog,
    )


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


# Subcommands that live beside the code they drive.
from analyzer.batch import batch  # noqa: E402
from analyzer.engine.cli import rules  # noqa: E402

main.add_command(rules)
main.add_command(batch)


if __name__ == "__main__":  # pragma: no cover
    main()
