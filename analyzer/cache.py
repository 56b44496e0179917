"""A small on-disk cache of plain JSON data, so start-up work is done once per machine.

Where: ``$WS_ANALYZER_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/ws-analyzer``, else
``~/.cache/ws-analyzer``; never inside the installed package (which may be read-only, and
is shared by every user of the machine).

The cache only ever saves time. A file that is missing, unreadable or not valid JSON reads
as "not cached" (the caller rebuilds it); a folder that cannot be created or written is
skipped without a word. Files are written to a temporary name and moved into place with
``os.replace``, so a reader never sees half a file, even with many processes of a batch
writing at once. JSON and not pickle: the folder is writable by the user, and loading it
must never run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_VAR = "WS_ANALYZER_CACHE_DIR"


def cache_dir() -> Path:
    """The folder the cache lives in (it may not exist yet)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit)
    # The XDG base directory spec: a relative XDG_CACHE_HOME is invalid and ignored.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ws-analyzer"


def read_json(name: str) -> Any:
    """The data in cache file ``name``, or None when it is absent or unreadable."""
    try:
        with open(cache_dir() / name, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # missing, unreadable, not JSON
        return None


def write_json(name: str, data: Any) -> None:
    """Store ``data`` as cache file ``name``; any failure to write is ignored."""
    folder = cache_dir()
    temp = folder / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, folder / name)
    except (OSError, ValueError, TypeError):  # unwritable folder, disk full, odd data
        try:
            os.unlink(temp)
        except OSError:
            pass
