"""The motivating case, made by examples/make/make_motivating_case.py (called here, its
output folder pointed at this one): headless Chromium -> Node http-proxy that drops Origin
(:3000) -> Python websockets chat server (:8080), which closes 1008 after the first
message. Writes both-legs.pcapng, server-side.pcapng and browser.har."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.scenarios import lab

MAKER = lab.ROOT / "examples" / "make" / "make_motivating_case.py"


def record(out: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_motivating_case", MAKER)
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.OUT = out  # the maker writes into OUT (examples/chat-1008 by default)
    maker.main()
