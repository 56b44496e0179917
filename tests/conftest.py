"""Shared test helpers: where the test captures live."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def data_dir() -> Path:
    return DATA
