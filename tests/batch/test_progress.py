"""Progress: a redrawn bar on a terminal, plain periodic lines otherwise (a fake clock)."""

from __future__ import annotations

import io

from analyzer.batch import Progress
from analyzer.batch.work import CaptureResult


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _result(n: int, status: str = "done", connections: int = 2) -> CaptureResult:
    return CaptureResult(
        name=f"c{n}",
        input=f"c{n}.har",
        path=f"/x/c{n}.har",
        size=1,
        mtime_ns=1,
        fingerprint="f",
        status=status,  # type: ignore[arg-type]
        connections=tuple({"connection": f"c{n}#{i}"} for i in range(connections)),
    )


def test_plain_lines_every_interval_when_not_a_terminal() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(100, stream, tty=False, clock=clock, interval=10.0, skipped=7)
    for n in range(40):
        clock.now += 1.0  # one capture a second
        progress.advance(_result(n, "failed" if n % 10 == 0 else "done"))
    progress.finish()
    lines = stream.getvalue().splitlines()
    # A line at 10 s, 20 s, 30 s, 40 s, then the final one.
    assert len(lines) == 5
    assert lines[0] == (
        "batch: 10/100 captures (10%), 1.0 captures/s, 2.0 connections/s, 1 failed, "
        "7 already done, ETA 1:30"
    )
    assert lines[-1].startswith("batch: 40/100 captures (40%), 1.0 captures/s")
    assert "4 failed" in lines[-1]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_redrawn_bar_on_a_terminal() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(4, stream, tty=True, clock=clock, interval=0.2)
    for n in range(4):
        clock.now += 0.5
        progress.advance(_result(n))
    progress.finish()
    text = stream.getvalue()
    assert text.count("\r\x1b[K[") == 5  # four redraws and the final one
    assert text.endswith(
        "[########################] 4/4 captures (100%), 2.0 captures/s, "
        "4.0 connections/s, 0 failed\n"
    )
    assert text.count("\n") == 1
