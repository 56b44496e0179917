"""Shared test helpers: where the test captures live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# On CI the property tests draw the same examples every run (a red CI must be reproducible
# from its log, and nothing lands on a failure a rerun would not see); on a developer's
# machine they draw new ones each run and replay past failures from .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws-analyzer-cache")


@pytest.fixture(autouse=True)
def _cache_in_tmp(_session_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite never writes to ~/.cache; child processes inherit the same folder."""
    monkeypatch.setenv("WS_ANALYZER_CACHE_DIR", str(_session_cache_dir))


# On CI every test must run: a skip there means the machine lacks something scripts/test
# should have installed, and a skipped test cannot fail. Skips whose reason starts with
# "deliberately" are part of a test's design and allowed.
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if not reason.removeprefix("Skipped: ").startswith("deliberately"):
            _SKIPPED.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _SKIPPED and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("CI") and _SKIPPED:
        terminalreporter.write_line(
            f"CI: {len(_SKIPPED)} test(s) skipped; every test must run on CI:", red=True
        )
        for line in _SKIPPED:
            terminalreporter.write_line(f"  {line}")
