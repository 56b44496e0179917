"""The on-disk cache: where it lives, and that it can only ever save time."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.cache import cache_dir, read_json, write_json


def test_the_folder_is_chosen_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_ANALYZER_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("WS_ANALYZER_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "ws-analyzer"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid by the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "ws-analyzer"


def test_round_trip_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_json("x.json", {"a": [1, "é"]})
    assert read_json("x.json") == {"a": [1, "é"]}
    assert [p.name for p in cache_dir().iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[" * 100_000])
def test_a_corrupt_file_reads_as_absent(content: bytes) -> None:
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "bad.json").write_bytes(content)
    assert read_json("bad.json") is None


def test_a_missing_file_reads_as_absent() -> None:
    assert read_json("never-written.json") is None


def test_an_unwritable_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("WS_ANALYZER_CACHE_DIR", str(blocker / "cache"))  # cannot be made
    write_json("x.json", {"a": 1})
    assert read_json("x.json") is None
