"""Which files a batch analyzes, and the name each one's outputs get in OUTDIR.

Theory of operation
-------------------
``ws-analyzer batch`` takes files, folders and glob patterns. A file named on the command
line (or matched by a glob) is analyzed whatever it turns out to be: if it is not a
capture, that is a failure with its one-line error. Inside a folder (walked recursively,
in sorted order, symlinked folders not followed) files are recognised by content with
``analyzer.pipeline.detect_format``: what is not a capture is skipped quietly and counted,
unless its name says it should be one (``.har``, ``.pcap``, ``.pcapng``, ``.cap``, with or
without ``.gz``), in which case it is a failure the user should hear about.

Every capture gets a *name*, used for its report folder (``OUTDIR/reports/<name>/``) and its
state record (``OUTDIR/.state/<name>.json``). The name is

    <slug>-<12 hex digits of SHA-256 of the resolved absolute path>

The slug is made from the file name (a file given by name or glob) or from the folder's
name and the path below it (a file found in a folder: ``exports/2024/a.har``). It keeps
letters and digits of any script, ``.``, ``_`` and ``-``; every other
character (separators, ``..``, spaces, control characters) becomes ``_``; it is cut to
80 bytes of UTF-8. The hash makes names distinct for distinct files (two ``a.har`` in two
folders) and the same for the same file whatever the current directory or the spelling
of the path, so a re-run finds its earlier results. A name never contains a path
separator and never starts with a dot, so nothing can be written outside OUTDIR.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import AnalyzerError, InputError, UnknownFormatError
from analyzer.pipeline import detect_format

CAPTURE_SUFFIXES = (".har", ".pcap", ".pcapng", ".cap")
SLUG_MAX_BYTES = 80
HASH_DIGITS = 12
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Task:
    """One capture to analyze: the unit of work sent to a worker."""

    path: str  # resolved absolute path (what workers open: a path they share)
    display: str  # the path as the user reached it (given, or folder + relative part)
    name: str  # collision-free name of its outputs inside OUTDIR
    size: int  # bytes, to tell whether an earlier result is still valid
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Discovery:
    tasks: tuple[Task, ...]
    skipped: tuple[str, ...]  # files in folders that are not captures (display paths)
    missing: tuple[tuple[str, str], ...]  # (input, one-line error): a named file is not there
    empty: tuple[str, ...]  # folders given that hold no capture (a warning, not a failure)


def looks_like_capture_name(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    return lower.endswith(CAPTURE_SUFFIXES)


def _slug_part(part: str) -> str:
    part = unicodedata.normalize("NFC", part)
    chars = [c if (c.isalnum() or c in "._-") else "_" for c in part]
    return "".join(chars)


def slug(display: str) -> str:
    """A file-name-safe rendering of ``display``: no separators, no leading dot, bounded."""
    parts = [p for p in display.replace("\\", "/").split("/") if p and p != "."]
    text = "_".join(_slug_part(p if p != ".." else "__") for p in parts)
    text = text.lstrip(".-") or "capture"
    raw = text.encode("utf-8")
    if len(raw) > SLUG_MAX_BYTES:
        # Keep the end (the file name says more than the folders), cut on a character.
        text = raw[-SLUG_MAX_BYTES:].decode("utf-8", errors="ignore").lstrip("._-") or "capture"
    return text


def capture_name(display: str, resolved: str) -> str:
    digest = hashlib.sha256(resolved.encode("utf-8", errors="surrogateescape")).hexdigest()
    return f"{slug(display)}-{digest[:HASH_DIGITS]}"


def _walk(folder: Path, exclude: Path | None) -> Iterator[tuple[str, str]]:
    """(path relative to ``folder``, real path) of the files under ``folder``, recursively,
    in a stable order. Symlinked folders are not followed; symlinked files are.

    ``exclude`` (the resolved output folder, when it lies inside an input folder) is not
    entered. Paths below the resolved folder are real already: one ``realpath`` per walk,
    not one per file (discovery of 10,000 files stays well under a second).
    """
    skip = str(exclude) if exclude is not None else None
    stack = [("", os.path.realpath(folder))]
    while stack:
        rel, here = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.path != skip:
                    subdirs.append((sub, entry.path))
            elif entry.is_file():
                real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                yield sub, real
        stack.extend(reversed(subdirs))


def _task(real: str, display: str, short: str) -> Task:
    st = os.stat(real)
    return Task(
        path=real,
        display=display,
        name=capture_name(short, real),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
    )


def _is_capture(path: Path) -> bool | None:
    """True: a capture. False: not one, skip quietly. None: broken, report it as failed."""
    try:
        fmt = detect_format(path)
    except UnknownFormatError:
        return None if looks_like_capture_name(path.name) else False
    except InputError as exc:
        if "empty" in exc.message and not looks_like_capture_name(path.name):
            return False
        return None
    if fmt == "har" and not looks_like_capture_name(path.name):
        # Any JSON file starts like a HAR; a HAR's one top-level member is "log".
        return _har_like(path)
    return True


def _har_like(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(512)
            if head.startswith(b"\x1f\x8b"):
                f.seek(0)
                with gzip.open(f, "rb") as g:
                    head = g.read(512)
    except (OSError, EOFError):
        return False
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"{") and text[1:].lstrip().startswith(b'"log"')


def _expand(spec: str) -> list[tuple[Path, bool]]:
    """(path, named) pairs for one INPUT: ``named`` is False for what a folder holds."""
    path = Path(spec)
    if not path.exists() and GLOB_CHARS & set(spec):
        return [(Path(p), True) for p in sorted(glob.glob(spec, recursive=True))]
    return [(path, True)]


def discover(inputs: Sequence[str], exclude: Path | None = None) -> Discovery:
    """Every capture named by ``inputs``, each once, in input order.

    ``exclude`` is a resolved folder never searched (the batch's own output folder).
    """
    tasks: list[Task] = []
    skipped: list[str] = []
    missing: list[tuple[str, str]] = []
    empty: list[str] = []
    seen: set[str] = set()

    def add(real: str, display: str, short: str) -> None:
        try:
            task = _task(real, display, short)
        except OSError as exc:
            missing.append((display, f"cannot read ({exc.strerror or exc})"))
            return
        if task.path not in seen:
            seen.add(task.path)
            tasks.append(task)

    for spec in inputs:
        matches = _expand(spec)
        if not matches:
            missing.append((spec, "no file matches this pattern"))
            continue
        for path, _named in matches:
            if path.is_dir():
                found = False
                top = path.resolve().name
                for rel, real in _walk(path, exclude):
                    display = str(path / rel)
                    verdict = _is_capture(Path(real))
                    if verdict is False:
                        skipped.append(display)
                        continue
                    found = True
                    add(real, display, f"{top}/{rel}")
                if not found:
                    empty.append(str(path))
            elif path.exists() or path.is_symlink():
                add(os.path.realpath(path), str(path), path.name)
            else:
                missing.append((str(path), "no such file or folder"))
    return Discovery(tuple(tasks), tuple(skipped), tuple(missing), tuple(empty))


def check_inside(outdir: Path, paths: Iterable[Path]) -> None:
    """Refuse to write anywhere but inside ``outdir`` (a symlink could point elsewhere)."""
    root = outdir.resolve()
    for p in paths:
        target = p.resolve()
        if target != root and root not in target.parents:
            raise AnalyzerError(f"refusing to write outside the output folder: {target}", outdir)
