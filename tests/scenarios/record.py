"""Re-record scenarios: ``python -m tests.scenarios.record NAME [NAME ...] [--out DIR]``.

Run from the repository root, as root (dumpcap on lo), with the project's venv (websockets,
python-socketio, aiohttp). Each NAME is a folder beside this file whose ``scenario.py`` has
``record(out: Path)``; the captures go into that folder, or into DIR/NAME with ``--out``.
``--all`` records every scenario that has a ``scenario.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def load(name: str) -> ModuleType:
    path = HERE / name / "scenario.py"
    if not path.is_file():
        raise SystemExit(f"{name}: no scenario.py (its captures come from another scenario)")
    spec = importlib.util.spec_from_file_location(f"scenario_{name.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recordable() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/scenario.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--out", type=Path, help="write DIR/NAME/ instead of the scenario folder")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args()
    for name in recordable() if args.all else args.names:
        out = (args.out / name) if args.out else HERE / name
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        load(name).record(out)
        files = ", ".join(
            f"{p.name} ({p.stat().st_size} B)"
            for p in sorted(out.iterdir())
            if p.suffix in {".pcapng", ".har"}
        )
        print(f"{name}: {time.monotonic() - t0:.1f}s: {files}")


if __name__ == "__main__":
    main()
