"""The batch summary: pandas tables (CSV and Parquet) and a self-contained HTML index.

Everything here is computed from ``CaptureResult`` records (the state records in
``OUTDIR/.state``), so the summary can be rebuilt at any time from the captures done.

Files written in OUTDIR (each atomically: a temporary file, then ``os.replace``):

- ``summary.csv`` / ``summary.parquet``: one row per connection (``SUMMARY_COLUMNS``);
- ``findings.csv`` / ``findings.parquet``: one row per finding (``FINDING_COLUMNS``);
- ``captures.csv`` / ``captures.parquet``: one row per capture, failed ones with their error;
- ``index.html``: counts, close codes, ends and rule hits as inline SVG charts, the same
  broken down by host, origin, user agent and creator, the captures worst first with
  links to their reports, and the captures that could not be read.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pandas as pd
from jinja2 import Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

from analyzer import __version__
from analyzer.batch.work import CaptureResult
from analyzer.engine.findings import Severity
from analyzer.resources import reports_dir
from analyzer.session.model import CloseCode

SUMMARY_COLUMNS: dict[str, str] = {
    "capture": "string",
    "name": "string",
    "report": "string",
    "format": "string",
    "connection": "string",
    "url": "string",
    "host": "string",
    "path": "string",
    "origin": "string",
    "user_agent": "string",
    "creator": "string",
    "client": "string",
    "server": "string",
    "status": "Int64",
    "close_known": "boolean",
    "close_code": "Int64",
    "close_from": "string",
    "close_reason": "string",
    "end": "string",
    "messages_client": "Int64",
    "messages_server": "Int64",
    "start": "float64",
    "duration": "float64",
    "findings": "string",
}
FINDING_COLUMNS: dict[str, str] = {
    "capture": "string",
    "name": "string",
    "report": "string",
    "connection": "string",
    "rule": "string",
    "severity": "string",
    "severity_rank": "Int64",
    "title": "string",
    "message": "string",
    "time": "float64",
    "evidence": "string",
}
CAPTURE_COLUMNS: dict[str, str] = {
    "capture": "string",
    "name": "string",
    "status": "string",
    "error": "string",
    "format": "string",
    "creator": "string",
    "connections": "Int64",
    "findings": "Int64",
    "worst": "string",
    "report": "string",
    "seconds": "float64",
}

TOP = 20  # groups shown per breakdown table
MAX_CAPTURE_ROWS = 2000  # captures listed in the index (all of them are in captures.csv)
PALETTE = 8  # colour classes c0..c7 in index.css; c8 is "other"


def _frame(rows: Sequence[Mapping[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(list(rows), columns=list(columns))
    return df.astype(columns)


def _order(results: Iterable[CaptureResult]) -> list[CaptureResult]:
    return sorted(results, key=lambda r: (r.input, r.name))


def summary_table(results: Iterable[CaptureResult]) -> pd.DataFrame:
    rows = [row for r in _order(results) for row in r.connections]
    return _frame(rows, SUMMARY_COLUMNS)


def findings_table(results: Iterable[CaptureResult]) -> pd.DataFrame:
    rows = [row for r in _order(results) for row in r.findings]
    return _frame(rows, FINDING_COLUMNS)


def _severity_label(rank: int) -> str | None:
    return Severity(rank).label if rank >= 0 else None


def captures_table(results: Iterable[CaptureResult]) -> pd.DataFrame:
    rows = [
        {
            "capture": r.input,
            "name": r.name,
            "status": r.status,
            "error": r.error,
            "format": r.format,
            "creator": r.creator,
            "connections": len(r.connections),
            "findings": len(r.findings),
            "worst": _severity_label(r.worst),
            "report": r.report,
            "seconds": r.seconds,
        }
        for r in _order(results)
    ]
    return _frame(rows, CAPTURE_COLUMNS)


def _replace_write(path: Path, write: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    assert callable(write)
    write(tmp)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Tables:
    summary: pd.DataFrame  # one row per connection
    findings: pd.DataFrame  # one row per finding
    captures: pd.DataFrame  # one row per capture

    @classmethod
    def of(cls, results: Sequence[CaptureResult]) -> Tables:
        return cls(summary_table(results), findings_table(results), captures_table(results))


def write_tables(outdir: Path, tables: Tables) -> list[Path]:
    written: list[Path] = []
    for stem, df in (
        ("summary", tables.summary),
        ("findings", tables.findings),
        ("captures", tables.captures),
    ):
        csv_path = outdir / f"{stem}.csv"
        pq_path = outdir / f"{stem}.parquet"
        _replace_write(csv_path, lambda p, df=df: df.to_csv(p, index=False))
        _replace_write(pq_path, lambda p, df=df: df.to_parquet(p, index=False, engine="pyarrow"))
        written += [csv_path, pq_path]
    return written


# --- the index ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    width: int  # pixels, of BAR_WIDTH
    share: str  # "12.5%"
    css: str  # colour class


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    total: int
    note: str = ""

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * BAR_STEP + 4


@dataclass(frozen=True, slots=True)
class Segment:
    label: str
    count: int
    x: int
    width: int
    css: str


@dataclass(frozen=True, slots=True)
class Group:
    value: str
    captures: int
    connections: int
    mix: tuple[Segment, ...]  # close outcomes as a stacked bar
    mix_text: str  # "1008 Policy Violation x3, 1000 Normal Closure x2"
    rules: str  # "origin-missing x3, ..."


@dataclass(frozen=True, slots=True)
class Breakdown:
    title: str
    column: str
    groups: tuple[Group, ...]
    more: int  # groups not shown


@dataclass(frozen=True, slots=True)
class CaptureLine:
    input: str
    report: str | None
    format: str | None
    creator: str | None
    connections: int
    findings: int
    worst: str | None
    rules: str


BAR_WIDTH = 360
BAR_STEP = 22
MIX_WIDTH = 160


def _missing(value: object) -> bool:
    return value is None or bool(pd.isna(value))  # type: ignore[call-overload]


def close_label(close_known: object, code: object, side: object) -> str:
    """How a connection's close reads in the charts."""
    if _missing(close_known) or not close_known:
        return "not recorded"
    if not _missing(code):
        number = int(code)  # type: ignore[call-overload]
        try:
            return f"{number} {CloseCode(number).name.replace('_', ' ').title()}"
        except ValueError:
            return str(number)
    if not _missing(side):
        return "close without code"
    return "no close frame"


def _close_labels(df: pd.DataFrame) -> pd.Series:
    return pd.Series(
        [
            close_label(k, c, s)
            for k, c, s in zip(df["close_known"], df["close_code"], df["close_from"], strict=True)
        ],
        index=df.index,
        dtype="string",
    )


Counts = list[tuple[str, int]]  # (label, count), most frequent first, ties by label


def _ranked(counts: Mapping[Any, int], limit: int = TOP) -> Counts:
    items = sorted(((str(k), int(n)) for k, n in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > limit:
        rest = sum(n for _, n in items[limit:])
        items = [*items[:limit], ("(other)", rest)]
    return items


def _counts(values: pd.Series, limit: int = TOP) -> Counts:
    return _ranked(values.value_counts(dropna=False).to_dict(), limit)


def _chart(title: str, counts: Counts, colours: dict[str, str], note: str = "") -> Chart:
    total = sum(n for _, n in counts)
    top = max((n for _, n in counts), default=0)
    bars = tuple(
        Bar(
            label=label,
            count=n,
            width=max(1, round(BAR_WIDTH * n / top)) if top else 0,
            share=f"{100 * n / total:.1f}%" if total else "",
            css=colours.get(label, "c0"),
        )
        for label, n in counts
    )
    return Chart(title=title, bars=bars, total=total, note=note)


def _colours(labels: Iterable[str]) -> dict[str, str]:
    return {label: f"c{i}" if i < PALETTE else "c8" for i, label in enumerate(labels)}


def _rules_per_connection(df: pd.DataFrame) -> pd.Series:
    """One entry per (connection, rule hit), indexed like ``df``."""
    rules = df["findings"].fillna("").astype(str).str.split(";").explode()
    return rules[rules != ""]


def _top_text(counts: Counts, n: int = 3) -> str:
    return ", ".join(f"{label} \u00d7{c}" for label, c in counts[:n])


def _nested(series: pd.Series) -> dict[str, dict[str, int]]:
    """A two-level groupby count (key, value) -> n, as {key: {value: n}}."""
    out: dict[str, dict[str, int]] = {}
    for pair, n in series.items():
        key, value = cast(tuple[object, object], pair)
        out.setdefault(str(key), {})[str(value)] = int(n)
    return out


def _breakdowns(df: pd.DataFrame, colours: dict[str, str]) -> list[Breakdown]:
    out: list[Breakdown] = []
    specs = (
        ("By host", "host", "(unknown host)"),
        ("By origin", "origin", "(no Origin header)"),
        ("By user agent", "user_agent", "(no User-Agent)"),
        ("By creator", "creator", "(unknown creator)"),
    )
    rules_all = _rules_per_connection(df)
    for title, column, missing in specs:
        keys = df[column].fillna(missing).astype(str)
        sizes = _ranked(keys.value_counts().to_dict(), limit=len(keys) + 1)
        shown = [k for k, _ in sizes[:TOP]]
        picked = keys.isin(shown)
        sub = df[picked].assign(_key=keys[picked])
        mixes = _nested(sub.groupby(["_key", "close_label"]).size())
        captures = sub.groupby("_key")["name"].nunique().to_dict()
        rule_keys = keys.loc[rules_all.index]
        rule_hits = _nested(
            pd.DataFrame({"_key": rule_keys.to_numpy(), "rule": rules_all.to_numpy()})
            .groupby(["_key", "rule"])
            .size()
        )
        groups: list[Group] = []
        for value, n in sizes[:TOP]:
            mix = _ranked(mixes.get(value, {}), PALETTE)
            x = 0
            segs: list[Segment] = []
            for label, c in mix:
                w = round(MIX_WIDTH * c / n) if n else 0
                segs.append(Segment(label, c, x, w, colours.get(label, "c8")))
                x += w
            groups.append(
                Group(
                    value=value,
                    captures=int(captures.get(value, 0)),
                    connections=n,
                    mix=tuple(segs),
                    mix_text=_top_text(mix, PALETTE),
                    rules=_top_text(_ranked(rule_hits.get(value, {}))),
                )
            )
        out.append(Breakdown(title, column, tuple(groups), max(0, len(sizes) - TOP)))
    return out


def _worst_first(done: Sequence[CaptureResult]) -> list[CaptureLine]:
    ranked = sorted(done, key=lambda r: (-r.worst, -len(r.findings), r.input, r.name))
    lines = []
    for r in ranked[:MAX_CAPTURE_ROWS]:
        rules: dict[str, int] = {}
        for f in r.findings:
            rules[str(f["rule"])] = rules.get(str(f["rule"]), 0) + 1
        text = ", ".join(f"{k} \u00d7{v}" if v > 1 else k for k, v in rules.items())
        lines.append(
            CaptureLine(
                input=r.input,
                report=quote(r.report, safe="/") if r.report else None,
                format=r.format,
                creator=r.creator,
                connections=len(r.connections),
                findings=len(r.findings),
                worst=_severity_label(r.worst),
                rules=text,
            )
        )
    return lines


@dataclass(frozen=True, slots=True)
class IndexFacts:
    """What the run knows beyond the state records."""

    missing: tuple[tuple[str, str], ...] = ()  # inputs that named nothing: (input, error)
    skipped: int = 0  # non-captures found in folders
    interrupted: bool = False
    redact: bool = True


def _css() -> str:
    return (reports_dir() / "batch" / "index.css").read_text(encoding="utf-8")


def render_index(
    results: Sequence[CaptureResult],
    facts: IndexFacts = IndexFacts(),
    tables: Tables | None = None,
) -> str:
    """The index page. ``tables`` (of the same ``results``) saves building them again."""
    done = [r for r in results if r.status == "done"]
    failed = sorted((r for r in results if r.status == "failed"), key=lambda r: r.input)
    if tables is None:
        tables = Tables.of(results)
    # Failed captures have no connection and no finding rows: the tables are the done ones'.
    df = tables.summary.copy()
    df["close_label"] = _close_labels(df)
    fdf = tables.findings

    close_counts = _counts(df["close_label"])
    colours = _colours(label for label, _ in close_counts)
    charts = [
        _chart("Close codes (connections)", close_counts, colours),
        _chart("How connections ended", _counts(df["end"].fillna("unknown")), {}),
        _chart(
            "Rule hits (connections)",
            _counts(_rules_per_connection(df)),
            {},
            note="capture-scope findings are counted in the findings table",
        ),
        _chart("Handshake status", _counts(df["status"].astype("string").fillna("none")), {}),
    ]
    by_label = dict(_counts(fdf["severity"]))
    severities = [
        (s.label, by_label[s.label]) for s in sorted(Severity, reverse=True) if s.label in by_label
    ]
    failed_lines = [(r.input, r.error or "") for r in failed] + list(facts.missing)
    totals = {
        "captures": len(results) + len(facts.missing),
        "analyzed": len(done),
        "failed": len(failed_lines),
        "skipped": facts.skipped,
        "connections": len(df),
        "findings": len(fdf),
        "with_findings": sum(1 for r in done if r.findings),
    }
    css = _css()
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    env = Environment(
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template_text = (reports_dir() / "batch_index.html.j2").read_text(encoding="utf-8")
    template = env.from_string(template_text)
    return template.render(
        version=__version__,
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        css=Markup(css),  # our own stylesheet, not captured text
        csp=f"default-src 'none'; style-src 'sha256-{digest}'",
        totals=totals,
        severities=severities,
        charts=charts,
        bar_width=BAR_WIDTH,
        bar_step=BAR_STEP,
        mix_width=MIX_WIDTH,
        breakdowns=_breakdowns(df, colours),
        captures=_worst_first(done),
        more_captures=max(0, len(done) - MAX_CAPTURE_ROWS),
        failed=failed_lines[:MAX_CAPTURE_ROWS],
        more_failed=max(0, len(failed_lines) - MAX_CAPTURE_ROWS),
        facts=facts,
    )


def write_summary(
    outdir: Path, results: Sequence[CaptureResult], facts: IndexFacts = IndexFacts()
) -> list[Path]:
    """Write every summary file from ``results``; returns the paths written."""
    tables = Tables.of(results)
    written = write_tables(outdir, tables)
    index = outdir / "index.html"
    html = render_index(results, facts, tables)
    _replace_write(index, lambda p: Path(p).write_text(html, encoding="utf-8"))
    return [*written, index]
