"""One capture of a batch: read it, run the rules, write its reports and its state record.

This is what runs in a worker (a process of the local pool, or a Dask worker). It returns
a small picklable ``CaptureResult`` (summary rows), never the session model. It imports
neither pandas nor the summary code, so a worker starts light.

State records
-------------
``OUTDIR/.state/<name>.json`` holds a capture's ``CaptureResult``. It is written last
(after the reports), atomically (a temporary file, then ``os.replace``), so a record that
exists means the capture is finished; the summary is rebuilt from these records alone.
A worker killed half-way leaves at most a partial report and no record: a re-run redoes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from analyzer import __version__
from analyzer.batch.inputs import Task
from analyzer.engine.findings import Finding
from analyzer.errors import AnalyzerError
from analyzer.pipeline import Analysis, Options, evaluate, load_capture
from analyzer.render import RenderOptions, write_reports
from analyzer.render.redact import redact_text, redact_url
from analyzer.session.model import Capture, Close, Connection, Fact

STATE_VERSION = 1
STATE_DIR = ".state"
REPORTS_DIR = "reports"

Status = Literal["done", "failed"]
Cell = str | int | float | bool | None
Row = dict[str, Cell]


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """Everything a worker needs besides the task: picklable, the same for every task."""

    outdir: str  # absolute: workers on other machines see the same shared path
    formats: tuple[str, ...]
    options: Options
    redact: bool = True
    redact_headers: tuple[str, ...] = ()
    redact_params: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """Changes when a re-run would give different outputs for the same capture."""
        parts: list[str] = [
            __version__,
            repr(self.formats),
            repr(self.options.limits),
            repr((self.options.select, self.options.ignore, self.options.builtin_rules)),
            repr((self.redact, self.redact_headers, self.redact_params)),
            str(self.options.keylog or ""),
        ]
        for folder in self.options.rule_dirs:
            parts.append(str(folder))
            if folder.is_dir():
                for f in sorted(folder.rglob("*")):
                    if f.is_file():
                        st = f.stat()
                        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """A finished capture, as the summary sees it. JSON-able; small."""

    name: str
    input: str  # the path as the user reached it
    path: str  # resolved absolute path
    size: int
    mtime_ns: int
    fingerprint: str
    status: Status
    error: str | None = None  # one line, for failed captures
    retry: bool = False  # the failure was ours (internal error, worker died): redo on re-run
    format: str | None = None
    creator: str | None = None
    connections: tuple[Row, ...] = ()
    findings: tuple[Row, ...] = ()
    reports: tuple[str, ...] = ()  # written files, relative to OUTDIR, "/"-separated
    worst: int = -1  # highest finding severity (Severity value), -1 when none
    not_evaluable: int = 0  # rule x connection pairs the capture cannot show
    seconds: float = 0.0  # time spent on this capture in the worker

    def to_json(self) -> dict[str, object]:
        # Not dataclasses.asdict: it deep-copies every row (a millisecond per capture).
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["state_version"] = STATE_VERSION
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CaptureResult:
        if data.get("state_version") != STATE_VERSION:
            raise ValueError("state record of another version")
        values = {k: v for k, v in data.items() if k != "state_version"}
        for key in ("connections", "findings", "reports"):
            value = values.get(key, ())
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)  # type: ignore[arg-type]

    @property
    def report(self) -> str | None:
        """The report to link to from the index: HTML when there is one."""
        for r in self.reports:
            if r.endswith(".html"):
                return r
        return self.reports[0] if self.reports else None


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _creator(capture: Capture) -> str | None:
    if capture.creator is None:
        return None
    if capture.creator_version:
        return f"{capture.creator} {capture.creator_version}"
    return capture.creator


def _path_of(conn: Connection, url: str | None) -> str | None:
    if url:
        try:
            return urlsplit(url).path or "/"
        except ValueError:
            return None
    if conn.request is not None:
        return conn.request.target.split("?", 1)[0]
    return None


def _host_of(conn: Connection, url: str | None) -> str | None:
    if conn.host:
        return conn.host
    if url:
        try:
            return urlsplit(url).netloc.rsplit("@", 1)[-1] or None
        except ValueError:
            return None
    return None


def _close_from(close: Close | None) -> str | None:
    """Who sent the first close: "client", "server", "unknown" (recorded without its
    sender, as HTTP Toolkit HARs do), or None when there was no close."""
    if close is None:
        return None
    return close.side if close.side_known else "unknown"


def connection_row(
    task: Task,
    capture: Capture,
    conn: Connection,
    report: str | None,
    rules: Sequence[str],
    config: BatchConfig,
) -> Row:
    url = conn.url
    if url is not None and config.redact:
        url = redact_url(url, config.redact_params)
    close = conn.close
    knows_messages = Fact.MESSAGES in conn.can_show or Fact.MESSAGES in capture.can_show
    duration = None
    if conn.start is not None and conn.end_time is not None:
        duration = max(0.0, conn.end_time - conn.start)
    reason = close.reason if close is not None else None
    if reason is not None and config.redact:
        reason = redact_text(reason)
    return {
        "capture": task.display,
        "name": task.name,
        "report": report,
        "format": capture.format,
        "connection": conn.id,
        "url": url,
        "host": _host_of(conn, url),
        "path": _path_of(conn, url),
        "origin": conn.origin,
        "user_agent": conn.user_agent,
        "creator": _creator(capture),
        "client": conn.client,
        "server": conn.server,
        "status": conn.status,
        "close_known": conn.close_known,
        "close_code": close.code if close is not None else None,
        "close_from": _close_from(close),
        "close_reason": reason,
        "end": conn.end,
        "messages_client": conn.messages_from("client") if knows_messages else None,
        "messages_server": conn.messages_from("server") if knows_messages else None,
        "start": conn.start,
        "duration": duration,
        "findings": ";".join(rules),
    }


def finding_row(task: Task, finding: Finding, report: str | None, redact: bool) -> Row:
    message = redact_text(finding.message) if redact else finding.message
    evidence = "; ".join(
        e.location.describe() if e.location is not None else e.label for e in finding.evidence[:3]
    )
    if redact:  # a label may quote a header value
        evidence = redact_text(evidence)
    return {
        "capture": task.display,
        "name": task.name,
        "report": report,
        "connection": finding.connection,
        "rule": finding.rule,
        "severity": finding.severity.label,
        "severity_rank": int(finding.severity),
        "title": finding.title,
        "message": message,
        "time": finding.time,
        "evidence": evidence or None,
    }


def result_from_analysis(
    task: Task,
    analysis: Analysis,
    reports: tuple[str, ...],
    config: BatchConfig,
    fingerprint: str,
    seconds: float,
) -> CaptureResult:
    capture = analysis.captures[0]
    report = next((r for r in reports if r.endswith(".html")), reports[0] if reports else None)
    by_conn: dict[str | None, list[str]] = {}
    for f in analysis.findings:
        by_conn.setdefault(f.connection, []).append(f.rule)
    conn_rows = tuple(
        connection_row(task, capture, c, report, by_conn.get(c.id, ()), config)
        for c in capture.connections
    )
    finding_rows = tuple(finding_row(task, f, report, config.redact) for f in analysis.findings)
    worst = max((int(f.severity) for f in analysis.findings), default=-1)
    return CaptureResult(
        name=task.name,
        input=task.display,
        path=task.path,
        size=task.size,
        mtime_ns=task.mtime_ns,
        fingerprint=fingerprint,
        status="done",
        format=capture.format,
        creator=_creator(capture),
        connections=conn_rows,
        findings=finding_rows,
        reports=reports,
        worst=worst,
        not_evaluable=len(analysis.not_evaluable),
        seconds=seconds,
    )


def state_path(outdir: Path, name: str) -> Path:
    """``OUTDIR/.state/<last two hex digits of the name>/<name>.json``.

    Shards, because creating files in one folder from several processes serializes on
    that folder's lock (measured here: 2 processes creating files in one folder, 0.70 ms
    a file; in two folders, 0.26 ms).
    """
    return outdir / STATE_DIR / name[-2:] / f"{name}.json"


def state_files(outdir: Path) -> Iterator[Path]:
    """Every state record file in OUTDIR (temporary files included: they end in .tmp)."""
    root = outdir / STATE_DIR
    if not root.is_dir():
        return
    for shard in sorted(os.scandir(root), key=lambda e: e.name):
        if shard.is_dir(follow_symlinks=False):
            for entry in os.scandir(shard.path):
                yield Path(entry.path)


def write_state(outdir: Path, result: CaptureResult) -> None:
    final = state_path(outdir, result.name)
    tmp = final.with_name(f".{result.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    text = json.dumps(result.to_json(), ensure_ascii=False)
    try:
        tmp.write_text(text, encoding="utf-8")
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)


def read_state(path: Path) -> CaptureResult | None:
    """The record in ``path``, or None when it is unreadable or of another version."""
    try:
        return CaptureResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


_warmed: set[str] = set()
_warm_lock = threading.Lock()


def warm_up(config: BatchConfig) -> None:
    """Load the rules once in this process (the engine caches them per process)."""
    key = config.fingerprint()
    with _warm_lock:
        if key in _warmed:
            return
        _warmed.add(key)
    evaluate((), config.options)


def process(task: Task, config: BatchConfig, fingerprint: str) -> CaptureResult:
    """Analyze one capture and write its reports and state record. Never raises."""
    start = time.perf_counter()
    outdir = Path(config.outdir)
    try:
        capture = load_capture(Path(task.path), config.options)
        analysis = evaluate((capture,), config.options)
        folder = outdir / REPORTS_DIR / task.name
        folder.mkdir(parents=True, exist_ok=True)
        render_options = RenderOptions(
            redact=config.redact,
            redact_headers=config.redact_headers,
            redact_params=config.redact_params,
        )
        written = write_reports(analysis, config.formats, folder, render_options)
        reports = tuple(Path(p).resolve().relative_to(outdir).as_posix() for p in written)
        result = result_from_analysis(
            task, analysis, reports, config, fingerprint, time.perf_counter() - start
        )
    except AnalyzerError as exc:
        result = _failed(task, fingerprint, exc.message, retry=False, start=start)
    except Exception as exc:  # noqa: BLE001 - one bad capture must not stop a batch
        text = f"internal error ({type(exc).__name__}: {exc})"
        result = _failed(task, fingerprint, text, retry=True, start=start)
    write_state(outdir, result)
    return result


def _failed(
    task: Task, fingerprint: str, error: str, retry: bool, start: float | None
) -> CaptureResult:
    return CaptureResult(
        name=task.name,
        input=task.display,
        path=task.path,
        size=task.size,
        mtime_ns=task.mtime_ns,
        fingerprint=fingerprint,
        status="failed",
        error=one_line(error),
        retry=retry,
        seconds=0.0 if start is None else time.perf_counter() - start,
    )


def failed_unrun(task: Task, fingerprint: str, error: str) -> CaptureResult:
    """A task whose worker never answered (it died): recorded, and retried on re-run."""
    return _failed(task, fingerprint, error, retry=True, start=None)
