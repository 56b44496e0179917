"""Golden files: ``pytest tests/render --update-golden`` rewrites them from the current
output (or ``WS_ANALYZER_UPDATE_GOLDEN=1 pytest``); review the diff before committing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/render/golden/ from the current output",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    update = bool(request.config.getoption("--update-golden", default=False)) or (
        os.environ.get("WS_ANALYZER_UPDATE_GOLDEN") == "1"
    )

    def check(name: str, actual: str) -> None:
        path = GOLDEN / name
        if update:
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"no golden file {path}: run pytest tests/render --update-golden"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, (
            f"{name} differs from its golden file; if the change is intended, run "
            "pytest tests/render --update-golden and review the diff"
        )

    return check
