#!/usr/bin/env python3
"""End to end: the CLI as a user runs it, against tshark (or json.load), on the same file.

    python benchmarks/bench_cli.py [FILE...] [--formats json,md,html] [--repeat 3]
                                   [--timeout 600] [--ws-analyzer PATH] [--chromium]
                                   [--json OUT] [--keep DIR]

Run it with the project's venv (``.venv/bin/python benchmarks/bench_cli.py``): the
``ws-analyzer`` beside ``sys.executable`` is the one measured (or ``--ws-analyzer PATH``).

FILE defaults to examples/chat-1008/server-side.pcapng and every ``large-*`` pcap, pcapng
and HAR in benchmarks/data/, smallest first. Make them with::

    python benchmarks/make_large_capture.py --size-mb 14 --out benchmarks/data/large-14mb.pcap
    python benchmarks/make_large_capture.py --size-mb 140 --out benchmarks/data/large-140mb.pcap
    python benchmarks/make_large_capture.py --size-mb 1400 --out benchmarks/data/large-1400mb.pcap
    python benchmarks/make_large_har.py --size-mb 7 --out benchmarks/data/large-7mb.har
    python benchmarks/make_large_har.py --size-mb 70 --out benchmarks/data/large-70mb.har

(make_large_capture.py writes whole batches of seed copies: pass ``--seed-file`` of one seed
for all three sizes so that they hold the same traffic; a seed of 22 sessions,
``--sessions 22``, gives 14.9, 149 and 1412 MB.)

For each file, ``--repeat`` rounds; in each round, one after the other, each a fresh
process:

- the comparator: for a pcap or pcapng, ``tshark -n -r FILE -Y websocket -T fields
  -e frame.number -e websocket.opcode -e websocket.payload.close.status_code`` with its
  output written to a file (the same fields as bench_capture.py); for a HAR,
  ``python -c 'import json; json.load(open(FILE))'`` with this interpreter;
- ``ws-analyzer analyze FILE -f FMT -o OUT`` for each format.

Printed per file and format: the median wall time of the runs (all runs listed), the peak
RSS (``ru_maxrss`` of the child from ``os.wait4``; the highest of the runs), the output's
size (and lines, for Markdown), and the ratio comparator time / ours ("4.2x faster", or
"3.1x slower"). Then each goal of issue 17 as "met" or "NOT met" with its figure. A run
that takes longer than ``--timeout`` seconds is killed and reported as a timeout; a
ws-analyzer run may take ``--memory-limit`` GiB of address space (default 12: the machine
is not run out of memory by a 1.4 GB capture), beyond which it fails and says so.

Before measuring, ws-analyzer runs once on small captures (a pcapng and a HAR, every
format), so that the measured runs find their bytecode cached, as an installed package
has it (pip compiles it); PYTHONDONTWRITEBYTECODE is removed from the children's
environment.

``--chromium``: each HTML report of the last round is opened in headless Chromium
(``--screenshot``, the same flags as tests/render/test_render_browser.py) and the seconds
it took are printed, beside Chromium's time on an empty page (its own start-up); a render
longer than ``--render-timeout`` seconds (default 120) is killed and reported as a timeout.
Skipped, with a message, when chromium is not installed.

``--json OUT``: also write every figure (each run) as JSON. The machine may be shared:
the load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "chat-1008" / "server-side.pcapng"
WARMUP = (EXAMPLE, ROOT / "examples" / "chat-1008" / "browser.har")
FORMATS = ("json", "md", "html")
EXT = {"json": "json", "md": "md", "html": "html"}
TSHARK_FIELDS = ("frame.number", "websocket.opcode", "websocket.payload.close.status_code")
JSON_LOAD = "import json, sys; json.load(open(sys.argv[1], encoding='utf-8'))"
MIB = 2**20

# Issue 17's goals.
TSHARK_RATIO = {"json": 10.0, "md": 10.0, "html": 8.0}  # tshark's time / ours, large captures
LARGE_CAPTURE = 100e6  # the ratio goals hold for captures of at least this size (140 MB, 1.4 GB)
RSS_LIMIT = 150 * MIB
RSS_FLAT = 1.2  # largest capture's peak RSS / smallest large capture's
HTML_LIMIT = 10e6
MD_LINES = 150
LARGE_HAR = 50e6  # the HAR goals hold for HARs of at least this size (the 70 MB one)
HAR_TIME = 4.0  # ours / json.load's
HAR_RSS = 2.0
RENDER_LIMIT = 5.0


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss: int  # bytes
    status: int  # exit status; -9 when killed
    timed_out: bool = False


@dataclass
class Result:
    """Figures of one command (ours in one format, or the comparator) on one file."""

    file: str
    kind: str  # pcap or har
    size: int
    tool: str  # json, md, html, tshark, json.load
    runs: list[Run] = field(default_factory=list)
    output_bytes: int | None = None
    output_lines: int | None = None
    error: str | None = None
    render: Run | None = None  # chromium's run on the HTML report

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.status == 0 and not r.timed_out for r in self.runs)

    @property
    def timed_out(self) -> bool:
        return any(r.timed_out for r in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss(self) -> int:
        return max(r.rss for r in self.runs)


def run(cmd: list[str], stdout: Path, stderr: Path, timeout: float, memory_limit: int = 0) -> Run:
    """Wall seconds, CPU seconds, peak RSS and exit status of ``cmd``, killed at ``timeout``;
    ``memory_limit``: bytes of address space the child may take (0: no limit)."""

    def limit() -> None:
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, start_new_session=True, preexec_fn=limit
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss=usage.ru_maxrss * 1024,
        status=proc.returncode,
        timed_out=killed.is_set(),
    )


def kind_of(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    if head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return "pcap"
    if head == b"\x0a\x0d\x0d\x0a":
        return "pcap"
    return "har"


def default_files() -> list[Path]:
    data = HERE / "data"
    found = [
        p for p in data.glob("large-*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".har")
    ]
    found.sort(key=lambda p: (kind_of(p), p.stat().st_size))
    return [EXAMPLE, *found]


def last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def warm_up(ws: str, formats: list[str], tmp: Path) -> None:
    for capture in WARMUP:
        if not capture.exists():
            continue
        out = tmp / "warm-up"
        out.mkdir(exist_ok=True)
        cmd = [ws, "analyze", str(capture), "-f", ",".join(formats), "-o", str(out)]
        r = run(cmd, tmp / "warm-up.out", tmp / "warm-up.err", 120)
        if r.status:
            sys.exit(f"warm-up failed (exit {r.status}): {last_line(tmp / 'warm-up.err')}")


def comparator(path: Path, kind: str) -> tuple[str, list[str]]:
    if kind == "har":
        return "json.load", [sys.executable, "-c", JSON_LOAD, str(path)]
    cmd = ["tshark", "-n", "-r", str(path), "-Y", "websocket", "-T", "fields"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    return "tshark", cmd


def bench_file(
    path: Path,
    ws: str,
    formats: list[str],
    repeat: int,
    timeout: float,
    memory_limit: int,
    tmp: Path,
) -> list[Result]:
    kind = kind_of(path)
    size = path.stat().st_size
    tool, ccmd = comparator(path, kind)
    have_tshark = kind == "har" or shutil.which("tshark") is not None
    comp = Result(str(path), kind, size, tool)
    if not have_tshark:
        comp.error = "tshark not installed"
    ours = {fmt: Result(str(path), kind, size, fmt) for fmt in formats}
    for i in range(repeat):
        if have_tshark and not comp.timed_out:
            out, err = tmp / "comparator.out", tmp / "comparator.err"
            r = run(ccmd, out, err, timeout)
            comp.runs.append(r)
            if r.status and not r.timed_out:
                comp.error = f"exit {r.status}: {last_line(err)}"
            comp.output_bytes = out.stat().st_size
            print(f"  round {i + 1}: {tool} {describe(r)}", flush=True)
        for fmt, res in ours.items():
            if res.timed_out or res.error:
                continue  # a timeout once is a timeout: do not spend it again
            out = tmp / f"{path.name}.{EXT[fmt]}"
            err = tmp / f"{fmt}.err"
            out.unlink(missing_ok=True)
            cmd = [ws, "analyze", str(path), "-f", fmt, "-o", str(out)]
            r = run(cmd, tmp / "ws.out", err, timeout, memory_limit)
            res.runs.append(r)
            if r.status and not r.timed_out:
                res.error = f"exit {r.status}: {last_line(err)}"
            if out.exists():
                res.output_bytes = out.stat().st_size
                if fmt == "md":
                    with out.open("rb") as f:
                        res.output_lines = sum(1 for _ in f)
            print(f"  round {i + 1}: {fmt} {describe(r)}", flush=True)
    return [comp, *ours.values()]


def describe(r: Run) -> str:
    if r.timed_out:
        return f"TIMEOUT after {r.wall:.0f} s (peak RSS {r.rss / MIB:.0f} MiB)"
    tail = "" if r.status == 0 else f", exit {r.status}"
    return f"{r.wall:.2f} s, {r.rss / MIB:.0f} MiB{tail}"


# -- chromium --------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render(chromium: str, page: Path, tmp: Path, timeout: float) -> Run:
    profile = tmp / "chromium-profile"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        f"--screenshot={tmp / 'screenshot.png'}",
        page.resolve().as_uri(),
    ]
    return run(cmd, tmp / "chromium.out", tmp / "chromium.err", timeout)


# -- printing --------------------------------------------------------------------------------


def human(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def render_text(res: Result) -> str:
    r = res.render
    if r is None:
        return "-"
    if r.timed_out:
        return f"TIMEOUT after {r.wall:.1f} s"
    return f"{r.wall:.2f} s" + ("" if r.status == 0 else f" (exit {r.status})")


def ratio_text(theirs: float, ours: float) -> str:
    if ours <= 0 or theirs <= 0:
        return "-"
    r = theirs / ours
    return f"{r:.1f}x faster" if r >= 1 else f"{1 / r:.1f}x slower"


def time_text(res: Result) -> str:
    if not res.runs:
        return res.error or "-"
    if res.timed_out:
        return f"TIMEOUT (>{max(r.wall for r in res.runs):.0f} s)"
    if res.error:
        return res.error
    return f"{res.wall:.2f}"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'file':<22} {'size':>9} {'tool':<9} {'median s':>12} {'runs s':<22} "
        f"{'CPU s':>7} {'peak RSS':>10} {'output':>10} {'md lines':>8} {'vs comparator':>14}"
    )
    print(header)
    print("-" * len(header))
    by_file: dict[str, list[Result]] = {}
    for res in results:
        by_file.setdefault(res.file, []).append(res)
    for file, group in by_file.items():
        comp = group[0]
        for res in group:
            runs = ", ".join(f"{r.wall:.2f}" for r in res.runs)
            cpu = f"{statistics.median(r.cpu for r in res.runs):.2f}" if res.runs else "-"
            rss = f"{res.rss / MIB:.1f} MiB" if res.runs else "-"
            out = human(res.output_bytes) if res.output_bytes is not None else "-"
            lines = str(res.output_lines) if res.output_lines is not None else ""
            if res is comp:
                vs = ""
            elif res.ok and comp.ok:
                vs = ratio_text(comp.wall, res.wall)
            else:
                vs = "-"
            name = Path(file).name if res is comp else ""
            size = human(res.size) if res is comp else ""
            print(
                f"{name:<22} {size:>9} {res.tool:<9} {time_text(res):>12} {runs:<22} "
                f"{cpu:>7} {rss:>10} {out:>10} {lines:>8} {vs:>14}"
            )
            if res.render is not None:
                print(f"{'':<22} {'':>9} {'':<9} chromium render of the HTML: {render_text(res)}")
        print()


# -- goals -----------------------------------------------------------------------------------


def goals(results: list[Result], render_base: float | None) -> list[tuple[str, bool | None, str]]:
    """(goal, met (None: not measured), figures)."""
    comps = {r.file: r for r in results if r.tool in ("tshark", "json.load")}
    ours = [r for r in results if r.tool in FORMATS]
    out: list[tuple[str, bool | None, str]] = []

    def fig(r: Result) -> str:
        return f"{Path(r.file).name} {r.tool}"

    # 1. Speed against tshark on the large captures.
    for fmt, goal in TSHARK_RATIO.items():
        rows = [r for r in ours if r.tool == fmt and r.kind == "pcap" and r.size >= LARGE_CAPTURE]
        figs, met = [], True
        for r in rows:
            c = comps[r.file]
            if r.ok and c.ok:
                x = c.wall / r.wall
                figs.append(f"{fig(r)}: {x:.2f}x (tshark {c.wall:.2f} s, ours {r.wall:.2f} s)")
                met = met and x >= goal
            else:
                figs.append(f"{fig(r)}: {time_text(r)} (tshark {time_text(c)})")
                met = False
        out.append(
            (
                f"-f {fmt}: at least {goal:g}x tshark's speed on captures >= 100 MB",
                met if rows else None,
                "; ".join(figs)
                or (
                    f"-f {fmt} not run"
                    if all(r.tool != fmt for r in ours)
                    else "no capture >= 100 MB given"
                ),
            )
        )
    # 2. Peak RSS.
    figs, met = [], True
    for r in ours:
        if r.runs:
            figs.append(f"{fig(r)} {r.rss / MIB:.0f}")
            met = met and r.rss <= RSS_LIMIT and not r.timed_out
    out.append(
        (
            "peak RSS at most 150 MiB, every format and file",
            met if figs else None,
            "MiB: " + ", ".join(figs),
        )
    )
    large = sorted(
        {
            (r.size, r.file)
            for r in ours
            if r.kind == "pcap" and Path(r.file).name.startswith("large-")
        }
    )
    if len(large) >= 2:
        small_f, big_f = large[0][1], large[-1][1]
        figs, met = [], True
        for fmt in FORMATS:
            a = next((r for r in ours if r.file == small_f and r.tool == fmt and r.runs), None)
            b = next((r for r in ours if r.file == big_f and r.tool == fmt and r.runs), None)
            if a is None or b is None:
                continue
            x = b.rss / a.rss
            tail = " (timed out: a lower bound)" if b.timed_out else ""
            figs.append(f"{fmt} {x:.2f}x ({b.rss / MIB:.0f} / {a.rss / MIB:.0f} MiB){tail}")
            met = met and x <= RSS_FLAT and not b.timed_out
        out.append(
            (
                f"flat RSS: {Path(big_f).name} within {RSS_FLAT}x of {Path(small_f).name}",
                met if figs else None,
                "; ".join(figs),
            )
        )
    else:
        out.append(
            (
                "flat RSS: largest capture within 1.2x of the smallest",
                None,
                "needs two large-* captures",
            )
        )
    # 3. Bounded reports.
    for fmt, limit_text in (("html", "HTML at most 10 MB"), ("md", "Markdown at most 150 lines")):
        rows = [r for r in ours if r.tool == fmt]
        figs, met = [], True
        for r in rows:
            if fmt == "html":
                if r.output_bytes is None or not r.ok:
                    figs.append(f"{Path(r.file).name} {time_text(r)}")
                    met = False
                    continue
                figs.append(f"{Path(r.file).name} {human(r.output_bytes)}")
                met = met and r.output_bytes <= HTML_LIMIT
            else:
                if r.output_lines is None or not r.ok:
                    figs.append(f"{Path(r.file).name} {time_text(r)}")
                    met = False
                    continue
                figs.append(f"{Path(r.file).name} {r.output_lines}")
                met = met and r.output_lines <= MD_LINES
        out.append(
            (
                f"{limit_text} on every file",
                met if rows else None,
                ", ".join(figs) or f"-f {fmt} not run",
            )
        )
    # 4. HAR against json.load.
    rows = [r for r in ours if r.kind == "har" and r.size >= LARGE_HAR]
    figs, met_t, met_m = [], True, True
    figs_m = []
    for r in rows:
        c = comps[r.file]
        if r.ok and c.ok:
            t, m = r.wall / c.wall, r.rss / c.rss
            figs.append(f"{fig(r)}: {t:.2f}x ({r.wall:.2f} s / {c.wall:.2f} s)")
            figs_m.append(f"{fig(r)}: {m:.2f}x ({r.rss / MIB:.0f} / {c.rss / MIB:.0f} MiB)")
            met_t = met_t and t <= HAR_TIME
            met_m = met_m and m <= HAR_RSS
        else:
            figs.append(f"{fig(r)}: {time_text(r)}")
            met_t = met_m = False
    out.append(
        (
            "HAR >= 50 MB: time at most 4x json.load's",
            met_t if rows else None,
            "; ".join(figs) or "no HAR >= 50 MB given",
        )
    )
    out.append(
        (
            "HAR >= 50 MB: peak RSS at most 2x json.load's",
            met_m if rows else None,
            "; ".join(figs_m) or "no HAR >= 50 MB given",
        )
    )
    # 5. The bundled example.
    rows = [r for r in ours if Path(r.file).resolve() == EXAMPLE]
    figs, met = [], True
    for r in rows:
        c = comps[r.file]
        if r.ok and c.ok:
            figs.append(f"{r.tool} {ratio_text(c.wall, r.wall)} ({r.wall:.2f} s / {c.wall:.2f} s)")
            met = met and r.wall <= c.wall
        else:
            figs.append(f"{r.tool} {time_text(r)}")
            met = False
    out.append(
        (
            "bundled example no slower than tshark",
            met if rows else None,
            "; ".join(figs) or f"{EXAMPLE.name} not given",
        )
    )
    # 6. Rendering.
    rows = [r for r in ours if r.render is not None]
    if rows:
        base = f" (chromium on an empty page: {render_base:.2f} s)" if render_base else ""
        out.append(
            (
                "HTML renders in headless Chromium in under 5 s",
                all(
                    r.render is not None
                    and r.render.status == 0
                    and not r.render.timed_out
                    and r.render.wall < RENDER_LIMIT
                    for r in rows
                ),
                ", ".join(f"{Path(r.file).name} {render_text(r)}" for r in rows) + base,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", type=Path, nargs="*")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: json,md,html")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (median)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    ap.add_argument("--ws-analyzer", help="the ws-analyzer to run (default: beside python)")
    ap.add_argument("--chromium", action="store_true", help="time each HTML report's render")
    ap.add_argument(
        "--render-timeout", type=float, default=120, help="seconds chromium may take a page"
    )
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--keep", type=Path, help="keep the reports in this folder")
    ap.add_argument(
        "--memory-limit",
        type=float,
        default=12,
        help="GiB of address space a ws-analyzer run may take (RLIMIT_AS; 0: none)",
    )
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        sys.exit(f"unknown format(s) {', '.join(bad)}: choose from {', '.join(FORMATS)}")
    ws = args.ws_analyzer or str(Path(sys.executable).parent / "ws-analyzer")
    if not Path(ws).exists():
        sys.exit(f"{ws}: not found (run with the venv's python, or give --ws-analyzer)")
    files: list[Path] = args.files or default_files()
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        sys.exit(f"not found: {', '.join(missing)}")
    chromium = find_chromium() if args.chromium else None
    if args.chromium and chromium is None:
        print("chromium not installed: the HTML reports will not be rendered")
    if shutil.which("tshark") is None:
        print("tshark not installed: no comparison on packet captures")
    # Children cache bytecode as an installed package has it compiled.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"ws-analyzer: {ws}")
    print(f"python: {sys.version.split()[0]}; {os.cpu_count()} CPUs; repeat {args.repeat}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    results: list[Result] = []
    render_base: float | None = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm_up(ws, formats, tmp)
        if chromium:
            blank = tmp / "blank.html"
            blank.write_text("<!doctype html><title>blank</title>")
            render(chromium, blank, tmp, 120)  # its own first start-up
            render_base = render(chromium, blank, tmp, 120).wall
        for path in files:
            print(f"{path} ({human(path.stat().st_size)})", flush=True)
            group = bench_file(
                path, ws, formats, args.repeat, args.timeout, int(args.memory_limit * 2**30), tmp
            )
            if chromium:
                for res in group:
                    page = tmp / f"{path.name}.html"
                    if res.tool == "html" and res.ok and page.exists():
                        r = render(chromium, page, tmp, args.render_timeout)
                        res.render = r
                        print(f"  chromium: {describe(r)}", flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for fmt in formats:
                    report = tmp / f"{path.name}.{EXT[fmt]}"
                    if report.exists():
                        shutil.copy(report, args.keep / report.name)
            results.extend(group)
    print()
    print_table(results)
    print("Goals (issue 17):")
    checked = goals(results, render_base)
    for name, met, figures in checked:
        state = "not measured" if met is None else ("met" if met else "NOT met")
        print(f"  [{state}] {name}: {figures}")
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        raw: dict[str, Any] = {
            "ws_analyzer": ws,
            "repeat": args.repeat,
            "results": [{**asdict(r), "median_wall": r.wall if r.runs else None} for r in results],
            "goals": [{"goal": n, "met": m, "figures": f} for n, m, f in checked],
            "chromium_blank_page": render_base,
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
