"""Bad input gets one clear line naming the file and the problem, exit code 2, no traceback."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    assert lines[0].startswith("ws-analyzer: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (os.urandom(0) + bytes(range(7, 107)), "not a HAR, pcap or pcapng file"),
        (b'{"log": {"version": "1.2", "entries": [{"request": ', "truncated"),
        (b'{"hello": "world"}', "not a har"),
        (gzip.compress(b""), "empty"),
    ],
    ids=["missing", "empty", "random-bytes", "truncated-json", "json-not-har", "empty-gzip"],
)
def test_bad_capture_is_one_line_exit_2(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "capture.har"
    if content is not None:
        path.write_bytes(content)
    code, output = run("analyze", str(path), "-o", str(tmp_path / "r.json"), "-f", "json")
    line = one_error_line(output)
    assert code == 2
    assert str(path) in line
    assert expected.lower() in line.lower()


def test_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    code, output = run("analyze", str(tmp_path))
    line = one_error_line(output)
    assert code == 2
    assert "is a directory" in line


def test_unknown_format_option(tmp_path: Path) -> None:
    code, output = run("analyze", "x.har", "-f", "pdf")
    assert code == 2
    assert "unknown format 'pdf'" in one_error_line(output)
