"""Re-runs skip what is done; Ctrl-C leaves consistent outputs and a batch that resumes."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_helpers import DATA, ROOT, Corpus, needs_render, variants

from analyzer.batch import Progress, run_batch
from analyzer.batch import run as batch_module
from analyzer.batch.work import read_state, state_files
from analyzer.pipeline import Options


def _states(out: Path) -> dict[str, int]:
    return {p: p.stat().st_mtime_ns for p in state_files(out)}


@needs_render
def test_rerun_skips_done_captures_until_forced(har_corpus: Corpus, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    stamps = _states(out)
    table = pd.read_csv(out / "summary.csv")
    assert first.ran == first.tasks

    again = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    assert (again.ran, again.reused) == (0, first.tasks)
    assert _states(out) == stamps  # not one record rewritten
    assert again.failed == first.failed  # earlier failures still count: exit code 1 again
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), table)

    # A capture that changed is redone; the others are not.
    changed = har_corpus.good[0]
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = run_batch([str(har_corpus.root)], out, jobs=1, progress_stream=io.StringIO())
    assert third.ran == 1 and third.reused == first.tasks - 1

    # Other options give other outputs: everything is redone. So does --force.
    some_rule = sorted((ROOT / "rules").glob("*.yaml"))[0].stem  # the id is the file name
    other = Options(ignore=(some_rule,))
    fourth = run_batch([str(har_corpus.root)], out, options=other, progress_stream=io.StringIO())
    assert fourth.ran == first.tasks
    forced = run_batch(
        [str(har_corpus.root)], out, options=other, force=True, progress_stream=io.StringIO()
    )
    assert forced.ran == first.tasks


@needs_render
def test_summary_is_rebuilt_from_all_done_captures(har_corpus: Corpus, tmp_path: Path) -> None:
    out = tmp_path / "out"
    half = [str(p) for p in har_corpus.good[:3]]
    rest = [str(p) for p in har_corpus.good[3:]]
    run_batch(half, out, progress_stream=io.StringIO())
    second = run_batch(rest, out, progress_stream=io.StringIO())
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["capture"]) == {str(p) for p in har_corpus.good}
    assert len(second.results) == len(har_corpus.good)


class _Interrupt(Exception):
    pass


@needs_render
def test_interrupt_in_the_middle_then_resume(
    har_corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    seen = {"n": 0}
    original = Progress.advance

    def advance(self: Progress, result: object) -> None:
        original(self, result)  # type: ignore[arg-type]
        seen["n"] += 1
        if seen["n"] == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    monkeypatch.setattr(batch_module.Progress, "advance", advance)
    stopped = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    assert stopped.interrupted
    assert multiprocessing.active_children() == []  # the pool is gone
    done = set(state_files(out))
    assert all(read_state(n) is not None for n in done)
    assert 3 <= len(done) < stopped.tasks
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "This batch was interrupted" in index
    assert len(pd.read_csv(out / "captures.csv")) == len(done)

    monkeypatch.setattr(batch_module.Progress, "advance", original)
    resumed = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    assert not resumed.interrupted
    assert resumed.reused == len(done)
    assert resumed.ran == resumed.tasks - len(done)
    assert "This batch was interrupted" not in (out / "index.html").read_text(encoding="utf-8")


@needs_render
def test_ctrl_c_on_the_real_command(tmp_path: Path) -> None:
    """SIGINT to the process group, as a terminal sends it: exit 130, a resume hint."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    seed = (DATA / "har" / "mitmproxy-websocket.har").read_bytes()
    for i in range(1500):
        (inputs / f"s{i:04d}.har").write_bytes(variants.har_variant(seed, i))
    out = tmp_path / "out"
    code = (
        "import sys; from analyzer.cli.batch import batch; "
        "sys.exit(batch.main(sys.argv[1:], prog_name='ws-analyzer batch'))"
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(inputs), "-o", str(out), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(1 for _ in state_files(out)) >= 5:
                break
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = err.decode()
    assert proc.returncode == 130, text
    assert "run the same command again to resume" in text
    assert "Traceback" not in text
    done = list(state_files(out))
    assert 5 <= len(done) < 1500
    assert all(p.suffix == ".json" and read_state(p) is not None for p in done)
    assert len(pd.read_csv(out / "captures.csv")) == len(done)


@needs_render
def test_a_worker_killed_by_the_os_fails_only_its_capture(
    har_corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when the OOM killer ends a worker: the pool breaks, the batch goes on, only the
    capture that killed its worker is recorded as failed, and a re-run retries it."""
    import analyzer.batch.work as work

    victim = har_corpus.good[2]
    real_process = work.process

    def process(task: Any, config: Any, fp: str) -> Any:
        if task.display == str(victim) and not os.environ.get("LET_IT_LIVE"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_process(task, config, fp)

    # Workers are forked: they see the patched function under its module's name.
    process.__module__, process.__qualname__ = work.__name__, "process"
    monkeypatch.setattr(work, "process", process)
    monkeypatch.setattr(batch_module, "process", process)
    out = tmp_path / "out"
    outcome = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    assert not outcome.interrupted
    by_input = {r.input: r for r in outcome.results}
    died = by_input[str(victim)]
    assert died.status == "failed" and died.retry
    assert died.error is not None and "worker process died" in died.error
    for path in har_corpus.good:
        if path != victim:
            assert by_input[str(path)].status == "done", path
    assert multiprocessing.active_children() == []

    monkeypatch.setenv("LET_IT_LIVE", "1")
    again = run_batch([str(har_corpus.root)], out, jobs=2, progress_stream=io.StringIO())
    assert again.ran == 1
    assert {r.input: r for r in again.results}[str(victim)].status == "done"
