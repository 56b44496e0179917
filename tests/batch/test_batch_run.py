"""A batch over real captures, rewritten variants and broken files: everything accounted for."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from batch_helpers import DATA, Corpus, make_corpus, needs_pcap, needs_render

from analyzer.batch import run_batch
from analyzer.batch.work import read_state, state_files
from analyzer.pipeline import evaluate, load_capture


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def check_batch(corpus: Corpus, out: Path, jobs: int) -> None:
    before = _files(corpus.root.parent)
    stream = io.StringIO()
    outcome = run_batch(
        [str(corpus.root)],
        out,
        formats=("html", "json"),
        jobs=jobs,
        progress_stream=stream,
        progress_tty=False,
    )
    assert not outcome.interrupted
    assert outcome.tasks == len(corpus.good) + len(corpus.broken)
    assert outcome.skipped == len(corpus.not_captures)
    assert outcome.ran == outcome.tasks and outcome.reused == 0

    # Nothing was written outside OUTDIR.
    after = _files(corpus.root.parent)
    assert {p for p in after - before if out not in p.parents} == set()

    states = {r.input: r for r in outcome.results}
    names = [r.name for r in outcome.results]
    assert len(set(names)) == len(names) == outcome.tasks

    summary = pd.read_csv(out / "summary.csv", keep_default_na=True)
    findings = pd.read_csv(out / "findings.csv")
    captures = pd.read_csv(out / "captures.csv")
    assert len(captures) == outcome.tasks

    expected_connections = 0
    expected_findings = 0
    for path in corpus.good:
        result = states[str(path)]
        assert result.status == "done", (path, result.error)
        assert result.reports, path
        for report in result.reports:
            assert (out / report).is_file()
            assert out.resolve() in (out / report).resolve().parents
        # The rows are what the pipeline itself says about this capture.
        analysis = evaluate((load_capture(path),))
        n = len(analysis.captures[0].connections)
        assert len(result.connections) == n
        assert (summary["capture"] == str(path)).sum() == n
        assert (findings["capture"] == str(path)).sum() == len(analysis.findings)
        expected_connections += n
        expected_findings += len(analysis.findings)
    for path in corpus.broken:
        result = states[str(path)]
        assert result.status == "failed", path
        assert result.error and "\n" not in result.error
        assert not result.error.startswith("internal error"), result.error
        row = captures[captures["capture"] == str(path)]
        assert list(row["status"]) == ["failed"] and list(row["error"]) == [result.error]
        assert (summary["capture"] == str(path)).sum() == 0

    # The counts add up, in the tables, the outcome and the index.
    assert len(summary) == expected_connections == outcome.connections
    assert len(findings) == expected_findings == outcome.findings
    assert int(captures["connections"].sum()) == expected_connections
    assert {e for _, e in outcome.failed} == {states[str(p)].error for p in corpus.broken}
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f"<b>{len(corpus.good)}</b>captures analyzed" in index
    assert f"<b>{len(corpus.broken)}</b>could not be read" in index
    assert f"<b>{expected_connections}</b>WebSocket connections" in index

    # Parquet holds the same table as CSV.
    parquet = pd.read_parquet(out / "summary.parquet")
    assert list(parquet.columns) == list(summary.columns)
    assert len(parquet) == len(summary)
    assert parquet["connection"].tolist() == summary["connection"].tolist()
    assert parquet["status"].astype("Int64").tolist() == summary["status"].astype("Int64").tolist()

    # Every state record is complete JSON; no temporary file is left behind.
    for entry in state_files(out):
        assert entry.suffix == ".json", entry
        assert read_state(entry) is not None
        json.loads(entry.read_text(encoding="utf-8"))

    # Progress went to the stream as plain lines, ending with the totals.
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith(f"batch: {outcome.tasks}/{outcome.tasks} captures")


@needs_render
def test_har_batch_every_capture_accounted_for(har_corpus: Corpus, tmp_path: Path) -> None:
    check_batch(har_corpus, tmp_path / "out", jobs=2)


@needs_render
@needs_pcap
def test_full_batch_with_packet_captures(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "inputs", with_pcap=True)
    check_batch(corpus, tmp_path / "out", jobs=2)


@needs_render
def test_one_job_and_two_jobs_give_the_same_tables(har_corpus: Corpus, tmp_path: Path) -> None:
    for jobs in (1, 2):
        run_batch(
            [str(har_corpus.root)],
            tmp_path / f"out{jobs}",
            jobs=jobs,
            progress_stream=io.StringIO(),
        )
    for table in ("summary", "findings"):
        one = pd.read_csv(tmp_path / "out1" / f"{table}.csv")
        two = pd.read_csv(tmp_path / "out2" / f"{table}.csv")
        pd.testing.assert_frame_equal(one, two)


@needs_render
def test_redaction_reaches_the_summary(tmp_path: Path) -> None:
    # The mitmproxy export has an api_key in its URLs.
    har = tmp_path / "in" / "mitm.har"
    har.parent.mkdir()
    har.write_bytes((DATA / "har" / "mitmproxy-websocket.har").read_bytes())
    secret = "VCXCEuvhGc"
    assert secret in har.read_text()
    run_batch([str(har)], tmp_path / "red", progress_stream=io.StringIO())
    run_batch([str(har)], tmp_path / "clear", redact=False, progress_stream=io.StringIO())
    for name in ("summary.csv", "index.html"):
        assert secret not in (tmp_path / "red" / name).read_text(encoding="utf-8")
    assert secret not in pd.read_parquet(tmp_path / "red" / "summary.parquet")["url"].str.cat()
    assert secret in (tmp_path / "clear" / "summary.csv").read_text(encoding="utf-8")


def test_output_must_be_a_folder(har_corpus: Corpus, tmp_path: Path) -> None:
    from analyzer.errors import AnalyzerError

    target = tmp_path / "out.txt"
    target.write_text("x")
    with pytest.raises(AnalyzerError, match="must be a folder"):
        run_batch([str(har_corpus.root)], target)
    assert target.read_text() == "x"
