"""Batch test inputs: real captures, variants made from them, and broken files.

Imported by the batch tests as ``batch_helpers`` (a unique module name: pytest puts this
folder on ``sys.path``)."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).resolve().parent.parent
DATA = TESTS / "data" / "batch"
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples" / "chat-1008"


def _load_variants() -> ModuleType:
    path = ROOT / "benchmarks" / "make_batch_corpus.py"
    spec = importlib.util.spec_from_file_location("make_batch_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_batch_corpus", module)
    spec.loader.exec_module(module)
    return module


variants = _load_variants()


def _has(module: str, attr: str | None = None) -> bool:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return attr is None or hasattr(mod, attr)


HAVE_RENDER = _has("analyzer.render", "write_reports")
HAVE_PCAP = _has("analyzer.session.build_pcap", "read_packet_capture")

needs_render = pytest.mark.skipif(
    not HAVE_RENDER, reason="analyzer.render.write_reports (reports part) not built yet"
)
needs_pcap = pytest.mark.skipif(
    not HAVE_PCAP, reason="analyzer.session.build_pcap (packet-capture part) not built yet"
)

BROKEN = {
    # file name -> (seed, corruption)
    "truncated.har": ("har/mitmproxy-websocket.har", "truncated-json"),
    "cut.har.gz": ("har/pcap2har-websocket-parse.har", "gzip-cut"),
    "random.pcap": ("pcap/zeek-broker-websocket.pcap", "random-bytes"),
    "header-only.pcap": ("pcap/zeek-broker-websocket.pcap", "header-only-pcap"),
    "empty.har": ("har/mitmproxy-websocket.har", "empty"),
}
NOT_CAPTURES = {"README.txt": b"notes about these exports\n", "package.json": b'{"name": "x"}\n'}


@dataclass(frozen=True)
class Corpus:
    root: Path  # the folder to give to batch
    good: tuple[Path, ...]  # captures that must be analyzed
    broken: tuple[Path, ...]  # captures that must be reported as failed
    not_captures: tuple[Path, ...]  # files to skip quietly


def make_corpus(root: Path, with_pcap: bool, copies: int = 2) -> Corpus:
    """Real captures, ``copies`` rewritten variants of each, the same name in two folders,
    broken captures and files that are not captures."""
    good: list[Path] = []
    seeds = sorted((DATA / "har").iterdir())
    if with_pcap:
        seeds += sorted((DATA / "pcap").iterdir())
    for seed in seeds:
        kind = "har" if seed.suffix == ".har" else "pcap"
        dest = root / "real" / kind / seed.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seed, dest)
        good.append(dest)
        for n in range(1, copies + 1):
            data = seed.read_bytes()
            made = (
                variants.har_variant(data, n) if kind == "har" else variants.pcap_variant(data, n)
            )
            out = root / "variants" / f"v{n}" / seed.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(made)
            good.append(out)
    # Gzip-compressed captures (recognised by content, whatever the name).
    gz = [DATA / "har" / "mitmproxy-websocket.har"]
    if with_pcap:
        gz.append(DATA / "pcap" / "zeek-message-too-big-status.pcap")
    for seed in gz:
        dest = root / "gzip" / f"{seed.name}.gz"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(gzip.compress(seed.read_bytes()))
        good.append(dest)
    # Same base name in two folders, different content.
    for sub, seed in (("a", "pcap2har-websocket-parse.har"), ("b", "mitmproxy-websocket.har")):
        dest = root / "same-name" / sub / "capture.har"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / "har" / seed, dest)
        good.append(dest)
    broken: list[Path] = []
    for name, (seed, kind) in BROKEN.items():
        if name.endswith(".pcap") and not with_pcap and kind != "random-bytes":
            continue
        dest = root / "broken" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(variants.corrupt((DATA / seed).read_bytes(), kind))
        broken.append(dest)
    skipped: list[Path] = []
    for name, content in NOT_CAPTURES.items():
        dest = root / "notes" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        skipped.append(dest)
    return Corpus(root, tuple(good), tuple(broken), tuple(skipped))
