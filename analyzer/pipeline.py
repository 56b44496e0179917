"""The only module that knows every stage: input -> session model -> rules -> report.

``cli`` and ``batch`` call ``analyze``; renderers take the ``Analysis`` it returns
(``analyzer.engine.analysis``). ``Options`` (``analyzer.options``) is re-exported here.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

from analyzer.engine.analysis import Analysis
from analyzer.errors import InputError, UnknownFormatError
from analyzer.options import DEFAULT_OPTIONS, Options
from analyzer.session.model import Capture, CaptureFormat

__all__ = ["Analysis", "Options", "analyze", "detect_format", "evaluate", "load_capture"]

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


def _head(path: Path, n: int = 64) -> bytes:
    with path.open("rb") as f:
        head = f.read(n)
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError) as exc:
            raise InputError(f"gzip data is corrupt ({exc})", path) from None
    return head


def check_readable(path: Path) -> None:
    """Raise InputError with one clear sentence when ``path`` cannot be a capture."""
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a directory, not a capture file (batch analyzes folders)", path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)


def detect_format(path: Path) -> CaptureFormat:
    """HAR, pcap or pcapng, by content (gzip-compressed or not), never by file name."""
    check_readable(path)
    head = _head(path)
    if not head:
        raise InputError("file is empty (after gzip decompression)", path)
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"{", b"[")):
        return "har"
    raise UnknownFormatError(
        f"not a HAR, pcap or pcapng file (unrecognised first bytes {head[:4].hex(' ')})",
        path,
    )


def load_capture(path: Path, options: Options = DEFAULT_OPTIONS) -> Capture:
    """Read one capture file into the session model. Raises ``InputError``."""
    fmt = detect_format(path)
    if fmt == "har":
        from analyzer.inputs.har import read_har

        return read_har(path, limits=options.limits)
    from analyzer.session.build_pcap import read_packet_capture

    return read_packet_capture(path, limits=options.limits, keylog=options.keylog)


def analyze(paths: Sequence[Path], options: Options = DEFAULT_OPTIONS) -> Analysis:
    """Load every capture, run the rules, return everything a renderer needs."""
    captures = tuple(load_capture(p, options) for p in paths)
    return evaluate(captures, options)


def evaluate(captures: tuple[Capture, ...], options: Options = DEFAULT_OPTIONS) -> Analysis:
    """Run the selected rules over already-loaded captures."""
    from analyzer.engine.evaluate import run_rules

    return run_rules(captures, options)
