#!/usr/bin/env python3
"""Throughput and memory of the packet-capture path, against tshark, on the same file.

    python benchmarks/bench_capture.py [FILE] [--no-tshark]

FILE defaults to the largest capture in benchmarks/data/ (make one with
make_large_capture.py). Runs, one after the other, each in its own process:

- ws-analyzer, the measured run: every connection of the file as the session model
  (reader, TCP reassembly, HTTP upgrade, frames, messages with previews, deflate, closes,
  anomalies), each frame record read (opcode, close code) as a consumer would;
- ws-analyzer again, writing each frame's packet, opcode and close code as text for the
  comparison (its time is printed too: formatting 370k lines in Python is not analysis,
  but it is what the same output as tshark's costs us);
- tshark: ``tshark -r FILE -Y websocket -T fields -e frame.number -e websocket.opcode
  -e websocket.payload.close.status_code``;

then prints packets/s, MB/s and peak RSS (``os.wait4`` rusage of each process) for each,
the ratio, and whether ws-analyzer and tshark agree frame for frame (packet number, opcode,
close code).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TSHARK_FIELDS = ["frame.number", "websocket.opcode", "websocket.payload.close.status_code"]


def worker(path: Path, out: Path | None) -> None:
    """The measured ws-analyzer run (in a child process); ``out``: also write the frames."""
    from analyzer.session.build_pcap import PcapSession

    start = time.perf_counter()
    cpu = time.process_time()
    session = PcapSession(path)
    connections = frames = closes = 0
    if out is None:
        for conn in session.connections():
            connections += 1
            for fr in conn.frames or ():
                frames += 1
                if fr.opcode == 8 and fr.close_code is not None:
                    closes += 1
    else:
        with out.open("w", buffering=1 << 20) as f:
            write = f.write
            for conn in session.connections():
                connections += 1
                for fr in conn.frames or ():
                    frames += 1
                    code = "" if fr.close_code is None else fr.close_code
                    write(f"{fr.last_packet or fr.packet}\t{fr.opcode}\t{code}\n")
    elapsed = time.perf_counter() - start
    result = {
        "elapsed": elapsed,
        "cpu": time.process_time() - cpu,
        "packets": session.reader.packets,
        "connections": connections,
        "frames": frames,
    }
    print(json.dumps(result))


def stage_worker(path: Path, stage: str) -> None:
    """Time one stage alone: the reader ("reader") or reader + TCP reassembly with a sink
    that drops the bytes ("tcp"), to show where the time of the full run goes."""
    from analyzer.inputs.pcap import PacketReader
    from analyzer.limits import DEFAULT_LIMITS
    from analyzer.streams.tcp import TcpFlow, TcpTracker

    class Discard:
        interested = True

        def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
            pass

        def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
            pass

    def discard(flow: TcpFlow) -> Discard:
        return Discard()

    start = time.perf_counter()
    reader = PacketReader(path)
    if stage == "reader":
        for _ in reader:
            pass
    else:
        for _ in TcpTracker(str(path), DEFAULT_LIMITS, discard).run(reader):
            pass
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "packets": reader.packets}))


def run(cmd: list[str], stdout: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in bytes and exit status of ``cmd``."""
    with stdout.open("w") as f:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode


def tshark_frames(path: Path) -> list[tuple[int, int, int | None]]:
    out = []
    for line in path.read_text().splitlines():
        number, opcodes, codes = (line.split("\t") + ["", ""])[:3]
        pending = [int(c) for c in codes.split(",") if c]
        for op in opcodes.split(","):
            if not op:
                continue
            opcode = int(op, 0)
            code = pending.pop(0) if opcode == 8 and pending else None
            out.append((int(number), opcode, code))
    return out


def our_frames(path: Path) -> list[tuple[int, int, int | None]]:
    out = []
    for line in path.read_text().splitlines():
        number, opcode, code = line.split("\t")
        out.append((int(number), int(opcode), int(code) if code else None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("file", type=Path, nargs="?")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=3, help="ws-analyzer runs (the median is compared)"
    )
    ap.add_argument(
        "--stages", action="store_true", help="also time the reader alone and reader + TCP"
    )
    args = ap.parse_args()
    path: Path | None = args.file
    if path is None:
        candidates = sorted(
            (p for p in (HERE / "data").glob("large-*") if p.is_file()),
            key=lambda p: p.stat().st_size,
        )
        if not candidates:
            sys.exit("no capture given and none in benchmarks/data/: run make_large_capture.py")
        path = candidates[-1]
    size = path.stat().st_size
    print(f"file: {path} ({size / 1e6:.1f} MB)")
    # The machine may be shared: the load average says how much the figures can be trusted
    # (ws-analyzer's CPU time, printed too, is less sensitive to it than wall time).
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        ours_out = Path(tmp) / "ours.tsv"
        report = Path(tmp) / "ours.json"
        cmd = [sys.executable, __file__, "--worker", str(path), "-"]
        env_root = str(HERE.parent)
        os.environ["PYTHONPATH"] = env_root + os.pathsep + os.environ.get("PYTHONPATH", "")
        # An installed package has its bytecode compiled (pip does it): let the runs cache it
        # too, so that "with start-up" is what a user's start-up costs.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        runs = []
        for _ in range(args.repeat):
            wall, rss, status = run(cmd, report)
            if status:
                sys.exit(f"ws-analyzer run failed (exit {status})")
            runs.append((json.loads(report.read_text()), wall, rss))
        # The median run (a shared machine's CPU speed wanders between runs); all printed.
        runs.sort(key=lambda r: r[0]["elapsed"])
        info, wall, rss = runs[len(runs) // 2]
        packets = info["packets"]
        print(
            f"ws-analyzer: {packets} packets, {info['connections']} connections, "
            f"{info['frames']} frames in {info['elapsed']:.2f} s ({wall:.2f} s wall with start-up, "
            f"{info['cpu']:.2f} s CPU); median of {len(runs)} runs: "
            + ", ".join(f"{r[0]['elapsed']:.2f}" for r in runs)
            + " s"
        )
        rss = max(r[2] for r in runs)
        ours_pps = packets / info["elapsed"]
        print(
            f"  {ours_pps / 1e3:.0f}k packets/s, {size / info['elapsed'] / 1e6:.1f} MB/s, "
            f"peak RSS {rss / 2**20:.1f} MB (the highest of the runs)"
        )
        cmd = [sys.executable, __file__, "--worker", str(path), str(ours_out)]
        d_wall, d_rss, status = run(cmd, report)
        if status:
            sys.exit(f"ws-analyzer run with the frame dump failed (exit {status})")
        dump = json.loads(report.read_text())
        print(
            f"  with the frames written as text for the comparison: {dump['elapsed']:.2f} s, "
            f"{packets / dump['elapsed'] / 1e3:.0f}k packets/s, peak RSS {d_rss / 2**20:.1f} MB"
        )
        if args.stages:
            for stage in ("reader", "tcp"):
                cmd = [sys.executable, __file__, "--stage", stage, str(path)]
                s_wall, s_rss, s_status = run(cmd, report)
                if s_status:
                    sys.exit(f"stage {stage} failed (exit {s_status})")
                s_info = json.loads(report.read_text())
                print(
                    f"  stage {stage:6}: {s_info['packets'] / s_info['elapsed'] / 1e3:.0f}k "
                    f"packets/s ({s_info['elapsed']:.2f} s), peak RSS {s_rss / 2**20:.1f} MB"
                )
        if args.no_tshark:
            return
        tshark_out = Path(tmp) / "tshark.tsv"
        cmd = ["tshark", "-n", "-r", str(path), "-Y", "websocket", "-T", "fields"]
        for field in TSHARK_FIELDS:
            cmd += ["-e", field]
        t_wall, t_rss, t_status = run(cmd, tshark_out)
        if t_status:
            sys.exit(f"tshark failed (exit {t_status})")
        theirs = tshark_frames(tshark_out)
        t_pps = packets / t_wall
        print(f"tshark: {len(theirs)} frames in {t_wall:.2f} s")
        print(
            f"  {t_pps / 1e3:.0f}k packets/s, {size / t_wall / 1e6:.1f} MB/s, "
            f"peak RSS {t_rss / 2**20:.1f} MB"
        )
        print(
            f"ratio: {ours_pps / t_pps:.1f}x tshark's packets/s "
            f"({wall and packets / wall / t_pps:.1f}x counting interpreter start-up; "
            f"{packets / dump['elapsed'] / t_pps:.1f}x writing the frames as text); "
            f"memory {rss / t_rss:.2f}x"
        )
        ours = sorted(our_frames(ours_out))
        theirs.sort()
        if ours == theirs:
            closes = sum(1 for f in ours if f[1] == 8)
            print(f"agreement: all {len(ours)} frames and {closes} close frames are the same")
            print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        else:
            a, b = set(ours), set(theirs)
            print(
                f"DISAGREEMENT: {len(ours)} frames ours, {len(theirs)} tshark's; "
                f"only ours {sorted(a - b)[:5]}, only tshark's {sorted(b - a)[:5]}"
            )
            sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), None if sys.argv[3] == "-" else Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--stage":
        stage_worker(Path(sys.argv[3]), sys.argv[2])
    else:
        main()
