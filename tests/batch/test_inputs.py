"""Which files a batch takes, and names for their outputs that cannot collide or escape."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from batch_helpers import DATA, Corpus, needs_render

from analyzer.batch import run_batch
from analyzer.batch.inputs import capture_name, discover, slug

HAR = DATA / "har" / "pcap2har-websocket-parse.har"

ODD_NAMES = [
    "..",
    "../../etc/passwd.har",
    "/abs/olute/path.har",
    "C:\\Users\\me\\session.har",
    ".hidden.har",
    "séance-日本語-😀.har",
    "line\nbreak.har",
    "tab\tand space.har",
    "-rf.har",
    "x" * 300 + ".har",
    "é" * 200 + ".har",
    "a/./b//c.har",
    "",
]


@pytest.mark.parametrize("display", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_names_stay_one_safe_path_component(display: str, tmp_path: Path) -> None:
    name = capture_name(display, "/some/resolved/path.har")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith((".", "-"))
    assert len(name.encode("utf-8")) <= 255 - len(".json") - 16
    assert all(c.isalnum() or c in "._-" for c in name)
    root = tmp_path / "out" / "reports"
    assert (root / name).resolve().parent == root.resolve()


def test_slug_keeps_what_identifies_the_file() -> None:
    assert slug("exports/2024/session.har") == "exports_2024_session.har"
    assert slug("séance.har") == "séance.har"  # letters of any script are kept
    assert slug("../up.har") == "___up.har"  # ".." and the separator
    assert slug("x" * 300 + ".pcap").endswith(".pcap")


def test_same_file_same_name_different_file_different_name(tmp_path: Path) -> None:
    a = capture_name("capture.har", str(tmp_path / "a" / "capture.har"))
    b = capture_name("capture.har", str(tmp_path / "b" / "capture.har"))
    assert a != b
    assert a == capture_name("capture.har", str(tmp_path / "a" / "capture.har"))


def test_discover_folders_globs_and_files(har_corpus: Corpus, tmp_path: Path) -> None:
    found = discover([str(har_corpus.root)])
    assert {Path(t.display) for t in found.tasks} == set(har_corpus.good) | set(har_corpus.broken)
    assert {Path(s) for s in found.skipped} == set(har_corpus.not_captures)
    assert found.missing == ()
    # The same file reached three ways is one task, and its name does not depend on the
    # spelling of the path or on the current directory.
    one = har_corpus.good[0]
    spelled = str(one.parent / ".." / one.parent.name / one.name)
    again = discover([str(one), spelled, str(one.parent / "*.har")])
    assert len({t.path for t in again.tasks}) == len(again.tasks)
    assert one.resolve().as_posix() in {t.path for t in again.tasks}
    cwd = os.getcwd()
    try:
        os.chdir(one.parent)
        rel = discover([one.name]).tasks[0]
    finally:
        os.chdir(cwd)
    assert rel.name == discover([str(one)]).tasks[0].name
    # A pattern or a path that names nothing is reported, not fatal.
    none = discover([str(tmp_path / "nothing-*.har"), str(tmp_path / "absent.har")])
    assert [m[1] for m in none.missing] == [
        "no file matches this pattern",
        "no such file or folder",
    ]


def test_output_folder_inside_an_input_folder_is_not_searched(tmp_path: Path) -> None:
    inputs = tmp_path / "exports"
    inputs.mkdir()
    shutil.copyfile(HAR, inputs / "one.har")
    (inputs / "out" / "reports").mkdir(parents=True)
    shutil.copyfile(HAR, inputs / "out" / "reports" / "old.har")
    found = discover([str(inputs)], exclude=(inputs / "out").resolve())
    assert [Path(t.display).name for t in found.tasks] == ["one.har"]


def test_json_that_is_not_a_har_is_skipped_in_folders_but_not_when_named(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "config.json").write_text('{"name": "app", "log": "not first"}')
    (folder / "export.json").write_text(HAR.read_text())  # a HAR with another extension
    found = discover([str(folder)])
    assert [Path(t.display).name for t in found.tasks] == ["export.json"]
    assert [Path(s).name for s in found.skipped] == ["config.json"]
    named = discover([str(folder / "config.json")])
    assert len(named.tasks) == 1  # named on the command line: analyzed (and will fail)


@needs_render
def test_odd_file_names_in_a_real_batch(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    names = ["séance-日本語.har", "with space.har", ".hidden.har", "x" * 200 + ".har"]
    for i, name in enumerate(names):
        folder = inputs / f"d{i}" / "sub"
        folder.mkdir(parents=True)
        shutil.copyfile(HAR, folder / name)
    # And one given as an absolute path, one through "..", with the same base name.
    (inputs / "a").mkdir()
    (inputs / "b").mkdir()
    shutil.copyfile(HAR, inputs / "a" / "same.har")
    shutil.copyfile(HAR, inputs / "b" / "same.har")
    out = tmp_path / "out"
    outside_before = {p for p in tmp_path.rglob("*")}
    outcome = run_batch(
        [
            str(inputs / "d0"),
            str(inputs / "d1"),
            str(inputs / "d2"),
            str(inputs / "d3"),
            str((inputs / "a" / "same.har").resolve()),
            str(inputs / "a" / ".." / "b" / "same.har"),
        ],
        out,
        progress_stream=io.StringIO(),
    )
    assert outcome.failed == ()
    assert outcome.tasks == 6
    reports = sorted(p for p in (out / "reports").iterdir())
    assert len(reports) == 6
    for r in outcome.results:
        assert (out / r.report).is_file() if r.report else False
    new_outside = {p for p in tmp_path.rglob("*")} - outside_before
    assert all(p == out or out in p.parents for p in new_outside)
