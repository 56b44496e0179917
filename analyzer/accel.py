"""Compiled fast paths for the packet-capture hot loop, and the switch that turns them off.

The pure-Python modules (``inputs/pcap``, ``streams/tcp``, ``protocol/frames``,
``protocol/messages``, ``protocol/flow``) are the reference implementation: they hold every
rule of the wire formats and every anomaly. Two optional Cython modules, built when the
package is installed (``hatch_build.py``), repeat only the common case of the per-packet
work and hand everything else back to the Python code, on the same state objects:

- ``analyzer._fastcap``: the record loop of pcap/pcapng files, link/IP/TCP decoding, and
  the in-order case of TCP reassembly;
- ``analyzer._fastws``: the RFC 6455 frame reader and the single-frame message case of
  ``WebSocketStream.frame``.

Both give the same session model as the Python code, byte for byte
(tests/test_accel_equivalence.py runs every test capture both ways). Without a C compiler
the package installs without them and runs the Python code, several times slower.

``WS_ANALYZER_PURE=1`` in the environment, or ``set_pure(True)``, makes new readers and
parsers use the Python code only (tests compare the two; a suspected fast-path bug can be
ruled out from the command line).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["available", "fastcap", "fastws", "pure", "set_pure"]

_pure = os.environ.get("WS_ANALYZER_PURE", "") not in ("", "0")
_modules: dict[str, ModuleType | None] = {}


def _load(name: str) -> ModuleType | None:
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(f"analyzer.{name}")
        except ImportError:
            _modules[name] = None
    return _modules[name]


def pure() -> bool:
    """True when the compiled fast paths are switched off."""
    return _pure


def set_pure(flag: bool) -> None:
    """Switch the compiled fast paths off (True) or back on, for readers and parsers made
    from now on."""
    global _pure
    _pure = flag


def available() -> dict[str, bool]:
    """Which compiled modules could be imported (whatever the switch says)."""
    return {name: _load(name) is not None for name in ("_fastcap", "_fastws")}


def fastcap() -> ModuleType | None:
    """``analyzer._fastcap`` when built and not switched off."""
    return None if _pure else _load("_fastcap")


def fastws() -> ModuleType | None:
    """``analyzer._fastws`` when built and not switched off."""
    return None if _pure else _load("_fastws")
