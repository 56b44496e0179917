"""Many captures at once, one report each, and a summary (``ws-analyzer batch`` is the
command over it, in ``analyzer.cli.batch``).

Theory of operation
-------------------
1. ``discover`` (``analyzer.batch.inputs``) turns files, folders and globs into ``Task``s,
   each with a collision-free name inside OUTDIR.
2. Tasks whose state record (``OUTDIR/.state/<name>.json``) says they were finished, for
   the same file (size and modification time) and the same options, are skipped unless
   ``--force``; a failure that was ours (internal error, worker died) is always retried.
3. The others run one capture per task: in this process for ``--jobs 1``, on a local
   ``ProcessPoolExecutor`` otherwise, or on a Dask cluster with ``--scheduler``. A worker
   (``analyzer.batch.work.process``) writes the capture's reports and state record and
   returns a small ``CaptureResult``; it never raises for a bad capture.
4. The summary (``analyzer.batch.summary``) is rebuilt from every state record in
   OUTDIR: the captures done now and those done by earlier runs.

Ctrl-C: the pool is terminated (workers ignore SIGINT; the parent ends them), finished
captures keep their records, the summary is written for what is done, and the command
says how to resume. Exit codes: 0 every capture was analyzed; 1 at least one could not
be (it is listed with its error); 2 bad usage; 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, TextIO

from analyzer.batch.inputs import Discovery, Task, check_inside, discover
from analyzer.batch.work import (
    REPORTS_DIR,
    STATE_DIR,
    BatchConfig,
    CaptureResult,
    failed_unrun,
    process,
    read_state,
    state_files,
    warm_up,
    write_state,
)
from analyzer.errors import AnalyzerError
from analyzer.options import Options

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
NON_TTY_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal
TTY_INTERVAL = 0.2
DASK_CONNECT_TIMEOUT = "15s"

OnResult = Callable[[CaptureResult], None]


# --- progress ------------------------------------------------------------------------------


class Progress:
    """Counts and rate: a redrawn bar on a terminal, a plain line now and then otherwise."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
        skipped: int = 0,
    ) -> None:
        self.total = total
        self.stream = stream
        self.tty = tty
        self.clock = clock
        self.interval = (
            interval if interval is not None else (TTY_INTERVAL if tty else NON_TTY_INTERVAL)
        )
        self.done = 0
        self.failed = 0
        self.connections = 0
        self.already = skipped
        self.start = clock()
        self.last = self.start

    def advance(self, result: CaptureResult) -> None:
        self.done += 1
        if result.status == "failed":
            self.failed += 1
        self.connections += len(result.connections)
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._show(now, final=False)

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = (
            f"{self.done}/{self.total} captures ({pct:.0f}%), {rate:.1f} captures/s, "
            f"{self.connections / elapsed:.1f} connections/s, {self.failed} failed"
        )
        if self.already:
            text += f", {self.already} already done"
        if 0 < self.done < self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text

    def _show(self, now: float, final: bool) -> None:
        if self.tty:
            width = 24
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if final else ""
            self.stream.write(f"\r\x1b[K[{bar}] {self.line(now)}{end}")
        else:
            self.stream.write(f"batch: {self.line(now)}\n")
        self.stream.flush()

    def finish(self) -> None:
        self._show(self.clock(), final=True)


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}:{s % 60:02d}"


# --- running the tasks ---------------------------------------------------------------------


def _run_serial(tasks: Iterable[Task], config: BatchConfig, fp: str, on_result: OnResult) -> None:
    for task in tasks:
        on_result(process(task, config, fp))


def _pool_init() -> None:
    # The parent decides what Ctrl-C means: it terminates the pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """End the pool now: no waiting for running captures (they have no record yet)."""
    processes = list(getattr(executor, "_processes", None) or {})
    procs = [executor._processes[pid] for pid in processes]  # noqa: SLF001
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)


DIED = "the worker process died while analyzing this capture (out of memory?); run again to retry"


def _run_alone(task: Task, config: BatchConfig, fp: str) -> CaptureResult:
    """One capture in a pool of its own: if its worker dies, we know which capture did it."""
    executor = ProcessPoolExecutor(max_workers=1, initializer=_pool_init)
    try:
        result = executor.submit(process, task, config, fp).result()
    except BrokenProcessPool:
        result = failed_unrun(task, fp, DIED)
        write_state(Path(config.outdir), result)
    except BaseException:
        _terminate(executor)
        raise
    executor.shutdown(wait=True)
    return result


def _run_pool(
    tasks: Sequence[Task], config: BatchConfig, fp: str, jobs: int, on_result: OnResult
) -> None:
    """Up to ``4 * jobs`` captures in flight. When a worker dies (the OS killed it, say),
    the pool is broken and every capture in flight fails with it: those are then run one
    at a time, each in a pool of its own, so that only the culprit is recorded as failed;
    the rest of the queue goes on in a fresh pool."""
    queue: Iterator[Task] = iter(tasks)
    window = jobs * 4
    suspects: list[Task] = []
    while True:
        for task in suspects:
            on_result(_run_alone(task, config, fp))
        suspects = []
        executor = ProcessPoolExecutor(max_workers=jobs, initializer=_pool_init)
        pending: dict[Future[CaptureResult], Task] = {}
        # Finished futures arrive here (callbacks): lighter than wait() on every answer.
        finished: SimpleQueue[Future[CaptureResult]] = SimpleQueue()

        def fill(
            executor: ProcessPoolExecutor = executor,
            pending: dict[Future[CaptureResult], Task] = pending,
            finished: SimpleQueue[Future[CaptureResult]] = finished,
        ) -> None:
            for task in queue:
                future = executor.submit(process, task, config, fp)
                pending[future] = task
                future.add_done_callback(finished.put)
                if len(pending) >= window:
                    break

        try:
            fill()
            while pending:
                try:
                    future = finished.get(timeout=1.0)
                except Empty:
                    continue  # a timeout lets Ctrl-C through on every platform
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    suspects.append(task)
                    suspects.extend(pending.values())
                    pending.clear()
                    break
                on_result(result)
                fill()
        except BaseException:
            _terminate(executor)
            raise
        if suspects:
            _terminate(executor)
            continue
        executor.shutdown(wait=True)
        return


def _run_dask(
    tasks: Sequence[Task], config: BatchConfig, fp: str, address: str, on_result: OnResult
) -> None:
    try:
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise AnalyzerError(
            "--scheduler needs Dask, an optional extra: pip install 'ws-analyzer[dask]'"
        ) from None
    try:
        client = distributed.Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise AnalyzerError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
    run = uuid.uuid4().hex[:8]
    futures: dict[str, Task] = {}
    live: list[Any] = []
    try:
        threads = sum(client.nthreads().values()) or 1
        queue = iter(tasks)
        completed = distributed.as_completed(loop=client.loop)

        def submit(task: Task) -> None:
            key = f"ws-analyzer-batch-{run}-{task.name}"
            future = client.submit(process, task, config, fp, key=key, pure=False, retries=0)
            futures[future.key] = task
            live.append(future)
            completed.add(future)

        for task in queue:
            submit(task)
            if len(futures) >= threads * 4:
                break
        for future in completed:
            task = futures.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails one capture
                result = failed_unrun(task, fp, f"Dask worker failed ({type(exc).__name__}: {exc})")
                write_state(Path(config.outdir), result)
            on_result(result)
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                submit(nxt)
    except BaseException:
        client.cancel([f for f in live if not f.done()], force=True)
        raise
    finally:
        client.close()


# --- the batch -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    tasks: int  # captures found in the inputs
    ran: int  # analyzed (or failed) in this run
    reused: int  # already done by an earlier run, skipped
    failed: tuple[tuple[str, str], ...]  # (input, error) for every capture of the inputs
    skipped: int  # non-capture files in folders
    empty: tuple[str, ...]  # folders with no capture
    interrupted: bool
    connections: int
    findings: int
    written: tuple[Path, ...] = ()
    results: tuple[CaptureResult, ...] = field(default=(), repr=False)
    # Wall-clock seconds per phase (discover, prepare, run, summary) and this process's
    # CPU seconds while the captures ran (``run_cpu``): what the parent costs a pool.
    timings: dict[str, float] = field(default_factory=dict)


def load_states(outdir: Path) -> dict[str, CaptureResult]:
    """Every readable state record in OUTDIR, by capture name. Leftover temp files go."""
    states: dict[str, CaptureResult] = {}
    for path in state_files(outdir):
        if path.name.endswith(".tmp"):
            try:
                path.unlink()
            except OSError:
                pass
            continue
        if not path.name.endswith(".json"):
            continue
        result = read_state(path)
        if result is not None:
            states[result.name] = result
    return states


def still_valid(previous: CaptureResult | None, task: Task, fp: str) -> bool:
    return (
        previous is not None
        and not previous.retry
        and previous.size == task.size
        and previous.mtime_ns == task.mtime_ns
        and previous.fingerprint == fp
        and previous.path == task.path
    )


def run_batch(
    inputs: Sequence[str],
    outdir: Path,
    config: BatchConfig | None = None,
    *,
    formats: Sequence[str] = ("html",),
    options: Options | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    redact: bool = True,
    redact_headers: Sequence[str] = (),
    redact_params: Sequence[str] = (),
    progress_stream: TextIO | None = None,
    progress_tty: bool | None = None,
) -> BatchOutcome:
    """Analyze every capture named by ``inputs`` into ``outdir``; write the summary.

    Raises ``AnalyzerError`` for usage problems (nothing to analyze, OUTDIR unusable,
    broken rule files, Dask missing or unreachable). ``KeyboardInterrupt`` is handled:
    the outcome says ``interrupted``.
    """
    from analyzer.batch.summary import IndexFacts, write_summary

    outdir = outdir.resolve()
    if outdir.exists() and not outdir.is_dir():
        raise AnalyzerError("the output (-o) must be a folder; this is a file", outdir)
    clock = time.perf_counter
    timings: dict[str, float] = {}
    t0 = clock()
    found: Discovery = discover(inputs, exclude=outdir)
    timings["discover"] = clock() - t0
    if not found.tasks:
        if found.missing:
            name, error = found.missing[0]
            raise AnalyzerError(error, name)
        raise AnalyzerError("no capture found in the inputs (HAR, pcap or pcapng files)")
    try:
        for sub in (outdir, outdir / STATE_DIR, outdir / REPORTS_DIR):
            sub.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalyzerError(f"cannot create the output folder ({exc.strerror})", outdir) from None
    check_inside(outdir, [outdir / STATE_DIR, outdir / REPORTS_DIR])
    if config is None:
        config = BatchConfig(
            outdir=str(outdir),
            formats=tuple(formats),
            options=options if options is not None else Options(),
            redact=redact,
            redact_headers=tuple(redact_headers),
            redact_params=tuple(redact_params),
        )
    fp = config.fingerprint()
    t0 = clock()
    warm_up(config)  # broken rule files stop here, once, with their one line

    states = load_states(outdir)
    todo = [t for t in found.tasks if force or not still_valid(states.get(t.name), t, fp)]
    reused = len(found.tasks) - len(todo)

    stream = progress_stream if progress_stream is not None else sys.stderr
    tty = progress_tty if progress_tty is not None else stream.isatty()
    progress = Progress(len(todo), stream, tty, skipped=reused)
    new: dict[str, CaptureResult] = {}

    def on_result(result: CaptureResult) -> None:
        new[result.name] = result
        progress.advance(result)

    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    interrupted = False
    timings["prepare"] = clock() - t0
    t0, cpu0 = clock(), time.process_time()
    try:
        if not todo:
            pass
        elif scheduler:
            _run_dask(todo, config, fp, scheduler, on_result)
        elif workers <= 1 or len(todo) == 1:
            _run_serial(todo, config, fp, on_result)
        else:
            _run_pool(todo, config, fp, min(workers, len(todo)), on_result)
    except KeyboardInterrupt:
        interrupted = True
    if todo:
        progress.finish()

    if interrupted:
        # Workers may have finished captures whose answers never reached us: their
        # records are on disk, and the summary must agree with the records.
        states = load_states(outdir)
    states.update(new)
    results = tuple(states.values())
    facts = IndexFacts(
        missing=found.missing,
        skipped=len(found.skipped),
        interrupted=interrupted,
        redact=config.redact,
    )
    timings["run"], timings["run_cpu"] = clock() - t0, time.process_time() - cpu0
    t0 = clock()
    written = write_summary(outdir, results, facts)
    timings["summary"] = clock() - t0

    current = [states[t.name] for t in found.tasks if t.name in states]
    failed = [(r.input, r.error or "") for r in current if r.status == "failed"]
    failed += list(found.missing)
    return BatchOutcome(
        tasks=len(found.tasks),
        ran=len(new),
        reused=reused,
        failed=tuple(failed),
        skipped=len(found.skipped),
        empty=found.empty,
        interrupted=interrupted,
        connections=sum(len(r.connections) for r in current),
        findings=sum(len(r.findings) for r in current),
        written=tuple(written),
        results=results,
        timings=timings,
    )
