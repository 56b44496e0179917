"""Fixtures for the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import Corpus, make_corpus


@pytest.fixture
def har_corpus(tmp_path: Path) -> Corpus:
    return make_corpus(tmp_path / "inputs", with_pcap=False)
