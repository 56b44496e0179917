"""Where the built-in rules and report templates live.

In a wheel they are under ``analyzer/_data/`` (hatchling force-include); in a source
checkout (including an editable install) they are the repository's top-level ``rules/``
and ``reports/`` folders.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def _data_dir(name: str) -> Traversable:
    packaged = resources.files("analyzer") / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    return checkout


def rules_dir() -> Traversable:
    """The folder of built-in rule files (``<id>.yaml``) and ``schema.json``."""
    return _data_dir("rules")


def reports_dir() -> Traversable:
    """The folder of report templates and their static assets."""
    return _data_dir("reports")
