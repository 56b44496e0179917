"""Batch throughput: captures/s and connections/s with --jobs 1 and 2, per-capture overhead.

    python benchmarks/bench_batch.py [--har 10000] [--pcap 1000] [--corpus DIR]
                                     [--jobs 1,2] [--format html] [--sample 200]

Makes the corpus with ``make_batch_corpus.py`` (copies of real captures with rewritten
addresses and times) unless ``--corpus`` names one, then runs ``run_batch`` over it into
a fresh OUTDIR per ``--jobs`` value and prints:

- captures/s and connections/s (wall clock, discovery and summary included);
- the speed-up of each ``--jobs`` value over the first;
- the per-capture *analysis* time (``load_capture`` + ``evaluate`` in this process, warm,
  over ``--sample`` captures), the per-capture time writing the reports, and the
  *overhead*: batch wall time per capture at --jobs 1 minus the analysis time. That is
  everything the batch adds around the analysis: discovery, state records, report
  writing, progress, the summary tables and index; printed also without the report
  writing (the renderer's cost), which leaves the batch machinery alone.
- the phases of each run: discovery, the captures (with the parent process's CPU time,
  what it takes from the workers), the summary;
- the CPU time of the run, this process and its workers together, per capture: when it
  is the same with 1 and 2 jobs, the pool adds no work, and its wall-clock speed-up is
  bounded by the cores the rest of the machine leaves free (the load average printed).

Goal (issue 6): 2 jobs >= 1.8 x 1 job on a 2-core machine; overhead < 20 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_batch_corpus import CORPUS, make  # noqa: E402

from analyzer.batch import run_batch  # noqa: E402
from analyzer.batch.inputs import discover  # noqa: E402
from analyzer.pipeline import Options, evaluate, load_capture  # noqa: E402


def measure_analysis(
    paths: list[Path], fmt: str, scratch: Path, options: Options
) -> tuple[float, float]:
    """Mean seconds per capture: load + rules, and writing its report(s)."""
    from analyzer.render import RenderOptions, write_reports

    evaluate((load_capture(paths[0], options),), options)  # warm: rules loaded, modules imported
    analysis_t: list[float] = []
    report_t: list[float] = []
    for i, p in enumerate(paths):
        t0 = time.perf_counter()
        try:
            analysis = evaluate((load_capture(p, options),), options)
        except Exception:  # noqa: BLE001 - a capture the batch would record as failed
            continue
        t1 = time.perf_counter()
        folder = scratch / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        write_reports(analysis, (fmt,), folder, RenderOptions())
        t2 = time.perf_counter()
        analysis_t.append(t1 - t0)
        report_t.append(t2 - t1)
    return statistics.fmean(analysis_t), statistics.fmean(report_t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--har", type=int, default=10_000)
    parser.add_argument("--pcap", type=int, default=1_000)
    parser.add_argument("--corpus", type=Path, help="an existing batch corpus folder")
    parser.add_argument("--seed-dir", type=Path, default=CORPUS)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--format", default="html")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument(
        "--no-builtin-rules",
        action="store_true",
        help="measure without the built-in rules (to separate their cost)",
    )
    args = parser.parse_args(argv)

    options = Options(builtin_rules=not args.no_builtin_rules)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        corpus = args.corpus
        if corpus is None:
            corpus = work / "corpus"
            t0 = time.perf_counter()
            n = make(corpus, args.har, args.pcap, args.seed_dir, 200_000)
            print(f"corpus: {n} captures made in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        found = discover([str(corpus)])
        t_discover = time.perf_counter() - t0
        tasks = found.tasks
        print(
            f"corpus: {len(tasks)} captures ({sum(t.size for t in tasks) / 1e6:.1f} MB), "
            f"discovery {1000 * t_discover / max(1, len(tasks)):.3f} ms/capture; "
            f"{os.cpu_count()} CPUs; format {args.format}",
            flush=True,
        )
        step = max(1, len(tasks) // args.sample)
        sample = [Path(t.path) for t in tasks[::step]][: args.sample]
        analysis_s, report_s = measure_analysis(sample, args.format, work / "sample", options)
        print(
            f"in-process, per capture (mean of {len(sample)}): analysis "
            f"{1000 * analysis_s:.2f} ms, writing the {args.format} report "
            f"{1000 * report_s:.2f} ms",
            flush=True,
        )

        rates: dict[int, float] = {}
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = work / f"out-{jobs}"
            before = (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
            t0 = time.perf_counter()
            outcome = run_batch(
                [str(corpus)],
                out,
                jobs=jobs,
                formats=(args.format,),
                options=options,
                progress_stream=io.StringIO(),
            )
            wall = time.perf_counter() - t0
            after = (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
            cpu = sum(
                (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime)
                for a, b in zip(after, before, strict=True)
            )
            n = outcome.tasks
            rates[jobs] = n / wall
            first = rates[min(rates)]
            print(
                f"--jobs {jobs}: {n} captures in {wall:.2f} s: {n / wall:.1f} captures/s, "
                f"{outcome.connections / wall:.1f} connections/s, "
                f"{len(outcome.failed)} failed; speed-up {rates[jobs] / first:.2f}x; "
                f"wall per capture {1000 * wall / n:.2f} ms"
                + (
                    f", overhead {1000 * (wall / n - analysis_s):.2f} ms/capture "
                    f"(of which the batch machinery, report writing apart: "
                    f"{1000 * (wall / n - analysis_s - report_s):.2f} ms)"
                    if jobs == 1
                    else ""
                ),
                flush=True,
            )
            t = outcome.timings
            print(
                f"  CPU (this process and its workers) {cpu:.2f} s = "
                f"{1000 * cpu / n:.2f} ms/capture; load average {os.getloadavg()[0]:.2f} "
                "(other work on the machine takes cores from the pool)",
                flush=True,
            )
            print(
                f"  phases: discover {t['discover']:.2f} s, prepare {t['prepare']:.2f} s, "
                f"captures {t['run']:.2f} s (parent CPU {t['run_cpu']:.2f} s), "
                f"summary {t['summary']:.2f} s",
                flush=True,
            )
            errors: dict[str, int] = {}
            for _, error in outcome.failed:
                errors[error] = errors.get(error, 0) + 1
            for error, count in sorted(errors.items(), key=lambda kv: -kv[1])[:3]:
                print(f"  failed x{count}: {error}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
