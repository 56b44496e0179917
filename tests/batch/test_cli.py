"""``ws-analyzer batch`` through click: exit codes and the lines a user reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from batch_helpers import DATA, ROOT, Corpus, needs_render
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.cli.batch import batch


@pytest.fixture
def cli() -> CliRunner:
    if "batch" not in main.commands:  # the lead registers it; make sure it is there
        main.add_command(batch)
    return CliRunner()


@needs_render
def test_failed_captures_give_exit_1_and_one_line_each(
    cli: CliRunner, har_corpus: Corpus, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cli.invoke(main, ["batch", str(har_corpus.root), "-o", str(out), "-j", "2"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    failed = [line for line in lines if line.startswith("ws-analyzer: failed: ")]
    assert {line.split(": ")[2] for line in failed} == {str(p) for p in har_corpus.broken}
    n = len(har_corpus.good) + len(har_corpus.broken)
    summary = next(line for line in lines if line.startswith(f"batch: {n} captures ("))
    assert f"{len(har_corpus.broken)} could not be read" in summary
    assert f"{len(har_corpus.not_captures)} non-capture files skipped" in summary
    assert (
        f"wrote {out.resolve() / 'index.html'}" in lines or f"wrote {out / 'index.html'}" in lines
    )
    assert "Traceback" not in result.output

    # Run again: nothing to do, the failures still make exit code 1.
    again = cli.invoke(main, ["batch", str(har_corpus.root), "-o", str(out)])
    assert again.exit_code == 1
    assert f"batch: {n} captures ({n} already done, 0 analyzed now)" in again.output


@needs_render
def test_all_good_is_exit_0_with_several_formats(cli: CliRunner, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in (DATA / "har").iterdir():
        shutil.copyfile(f, inputs / f.name)
    out = tmp_path / "out"
    result = cli.invoke(main, ["batch", str(inputs / "*.har"), "-o", str(out), "-f", "html,json"])
    assert result.exit_code == 0, result.output
    for folder in (out / "reports").iterdir():
        assert sorted(p.suffix for p in folder.iterdir()) == [".html", ".json"]


def test_usage_errors_are_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli.invoke(main, ["batch", str(empty), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "ws-analyzer: error: no capture found in the inputs (HAR, pcap or pcapng files)"
    )
    har = DATA / "har" / "pcap2har-websocket-parse.har"
    missing = cli.invoke(main, ["batch", str(har)])
    assert missing.exit_code == 2 and "-o" in missing.output


@needs_render
def test_unknown_format_is_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    har = DATA / "har" / "pcap2har-websocket-parse.har"
    bogus = cli.invoke(main, ["batch", str(har), "-o", str(tmp_path / "o"), "-f", "pdf"])
    assert bogus.exit_code == 2
    assert "unknown format 'pdf'" in bogus.output
    assert not (tmp_path / "o").exists()


def test_nothing_there_is_exit_2_naming_the_input(cli: CliRunner, tmp_path: Path) -> None:
    absent = tmp_path / "absent.har"
    result = cli.invoke(main, ["batch", str(absent), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == f"ws-analyzer: error: {absent}: no such file or folder"


@pytest.mark.parametrize(
    "code",
    [
        "from analyzer.cli.batch import batch; from analyzer.cli import main",
        "from analyzer.cli import main; from analyzer.cli.batch import batch",
    ],
    ids=["batch-first", "cli-first"],
)
def test_either_module_can_be_imported_first(code: str) -> None:
    """analyzer.cli registers ``batch``, which takes its options from analyzer.cli."""
    check = code + "; assert main.commands['batch'] is batch; print(batch.name)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "batch"
