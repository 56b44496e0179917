"""What the commands share: one-line errors, comma lists, the rule and redaction options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from analyzer.errors import EXIT_USAGE, AnalyzerError
from analyzer.options import Options

F = TypeVar("F", bound=Callable[..., Any])


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
