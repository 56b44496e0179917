"""The compiled fast paths (analyzer/_fastcap, analyzer/_fastws) give the same session model
as the pure-Python reference, on every packet capture in the repository.

The Python modules hold every rule of the wire formats; the compiled ones repeat only the
common case and hand the rest back (analyzer/accel.py). So the whole model is compared:
connections, handshakes, frames, messages with their previews, closes, anomalies and their
order, capture-level anomalies and notes. Tight limits are run too, so that the limit paths
(evicted flows, capped frames and messages, skipped payloads, short previews) are crossed
in the middle of what the fast paths handle.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from analyzer import accel
from analyzer.errors import AnalyzerError
from analyzer.inputs.keylog import gather_keylog
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.protocol.flow import FlowParser
from analyzer.session.build import summarize_close
from analyzer.session.build_pcap import PcapSession, read_packet_capture
from analyzer.session.model import Capture

DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = DATA.parents[1] / "examples"
SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")


def _captures() -> list[Path]:
    found = [
        p
        for root in (DATA, EXAMPLES)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name.endswith(SUFFIXES) and "node_modules" not in p.parts
    ]
    return found


CAPTURES = _captures()

TIGHT = Limits(
    max_frame_bytes=300,
    max_preview_bytes=7,
    max_open_flows=3,
    max_messages_per_connection=5,
    max_buffered_bytes_per_flow=2000,
    max_decompressed_bytes=500,
)


def _read(path: Path, limits: Limits, pure: bool) -> Capture:
    keys = path.with_suffix(".keys")
    before = accel.pure()
    accel.set_pure(pure)
    try:
        return read_packet_capture(path, limits=limits, keylog=keys if keys.is_file() else None)
    finally:
        accel.set_pure(before)


def _differences(fast: Capture, slow: Capture) -> Iterator[str]:
    for f in fields(Capture):
        if f.name == "connections":
            continue
        if getattr(fast, f.name) != getattr(slow, f.name):
            yield f"capture.{f.name}: {getattr(fast, f.name)!r} != {getattr(slow, f.name)!r}"
    if len(fast.connections) != len(slow.connections):
        yield f"{len(fast.connections)} connections != {len(slow.connections)}"
    for a, b in zip(fast.connections, slow.connections, strict=False):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if x == y:
                continue
            if isinstance(x, tuple) and isinstance(y, tuple):
                first = next(
                    (i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q),
                    min(len(x), len(y)),
                )
                yield (
                    f"{a.id}.{f.name}[{first}] ({len(x)} vs {len(y)} items): "
                    f"{x[first] if first < len(x) else None!r} != "
                    f"{y[first] if first < len(y) else None!r}"
                )
            else:
                yield f"{a.id}.{f.name}: {x!r} != {y!r}"


def test_the_fast_paths_are_built_where_required() -> None:
    # scripts/test (so CI) installs with WS_ANALYZER_REQUIRE_ACCEL=1: there the compiled
    # modules must be importable, or every other test here would compare Python with itself.
    if os.environ.get("WS_ANALYZER_REQUIRE_ACCEL", "") in ("", "0"):
        pytest.skip("deliberately: only checked where the build must include them")
    assert accel.available() == {"_fastcap": True, "_fastws": True}


def test_there_are_captures_to_compare() -> None:
    names = {p.name for p in CAPTURES}
    assert len(CAPTURES) > 50
    assert "server-side.pcapng" in names


@pytest.mark.parametrize("name", ["server-side.pcapng", "both-legs.pcapng"])
def test_same_model_from_a_gzip_compressed_capture(name: str, tmp_path: Path) -> None:
    packed = tmp_path / f"{name}.gz"
    packed.write_bytes(gzip.compress((EXAMPLES / "chat-1008" / name).read_bytes()))
    fast, slow = _read(packed, DEFAULT_LIMITS, pure=False), _read(packed, DEFAULT_LIMITS, True)
    assert fast.connections and fast == slow


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, TIGHT], ids=["default", "tight"])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_same_model_with_and_without_the_fast_paths(path: Path, limits: Limits) -> None:
    try:
        slow = _read(path, limits, pure=True)
    except Exception as exc:  # an unreadable capture must fail the same way
        with pytest.raises(type(exc)) as info:
            _read(path, limits, pure=False)
        assert str(info.value) == str(exc)
        return
    fast = _read(path, limits, pure=False)
    problems = list(_differences(fast, slow))
    assert not problems, "\n".join(problems[:10])
    assert fast == slow


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "python"])
def test_close_counts_kept_by_the_stream_equal_a_count_over_the_messages(pure: bool) -> None:
    # CloseSeen.before is filled as the close is seen (both paths), so that summarize_close
    # need not scan every message; it must say what the scan over the messages says.
    checked = with_before = 0
    before = accel.pure()
    accel.set_pure(pure)
    try:
        for path in CAPTURES:
            keys = path.with_suffix(".keys")
            session = PcapSession(path, keylog=keys if keys.is_file() else None)
            session.file_keys = session.keys = gather_keylog(session.keylog)
            try:
                flows = list(session.tracker.run(session.reader))
            except AnalyzerError:
                continue
            for flow in flows:
                sink = flow.owner if flow.owner is not None else flow.sink
                sink = getattr(sink, "chosen", sink)
                sink = getattr(sink, "inner", sink)
                if not isinstance(sink, FlowParser) or (result := sink.result()) is None:
                    continue
                end = flow.end or "open"
                counted = summarize_close(result.closes, result.messages, end)
                scanned = summarize_close(
                    [c._replace(before=None) for c in result.closes], result.messages, end
                )
                assert counted == scanned, f"{path.name} stream {flow.stream}"
                checked += 1
                with_before += bool(result.closes and result.closes[0].before)
    finally:
        accel.set_pure(before)
    assert checked > 100 and with_before > 50


def test_version_says_which_packet_capture_loops_run() -> None:
    from click.testing import CliRunner

    from analyzer.cli import main

    out = CliRunner().invoke(main, ["--version"])
    assert out.exit_code == 0
    assert out.output.startswith("ws-analyzer ")
    if all(accel.available().values()):
        assert "packet-capture loops: compiled (Cython)" in out.output
    else:
        assert "not built" in out.output
    before = accel.pure()
    accel.set_pure(True)
    try:
        out = CliRunner().invoke(main, ["--version"])
    finally:
        accel.set_pure(before)
    assert "pure Python (WS_ANALYZER_PURE is set)" in out.output
