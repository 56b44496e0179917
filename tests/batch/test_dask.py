"""The same batch on a real Dask cluster (LocalCluster on 127.0.0.1) gives the same outputs."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from batch_helpers import Corpus, needs_render

from analyzer.batch import run as batch_module
from analyzer.batch import run_batch
from analyzer.errors import AnalyzerError

distributed = pytest.importorskip("distributed")


def _index_without_time(path: Path) -> str:
    return re.sub(r"generated [0-9: -]+UTC", "generated -", path.read_text(encoding="utf-8"))


@needs_render
def test_dask_cluster_outputs_equal_the_local_run(har_corpus: Corpus, tmp_path: Path) -> None:
    local = run_batch(
        [str(har_corpus.root)], tmp_path / "local", jobs=2, progress_stream=io.StringIO()
    )
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            host="127.0.0.1",
            protocol="tcp",
            scheduler_port=0,
            dashboard_address=None,
        ) as cluster,
    ):
        remote = run_batch(
            [str(har_corpus.root)],
            tmp_path / "dask",
            scheduler=cluster.scheduler_address,
            progress_stream=io.StringIO(),
        )
    assert remote.tasks == local.tasks and remote.ran == local.ran
    assert remote.failed == local.failed
    for table in ("summary", "findings"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "local" / f"{table}.parquet"),
            pd.read_parquet(tmp_path / "dask" / f"{table}.parquet"),
        )
    captures = [
        pd.read_csv(tmp_path / d / "captures.csv").drop(columns=["seconds"])
        for d in ("local", "dask")
    ]
    pd.testing.assert_frame_equal(*captures)
    assert _index_without_time(tmp_path / "local" / "index.html") == _index_without_time(
        tmp_path / "dask" / "index.html"
    )
    # Same report files, same names.
    names = [
        sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d / "reports").rglob("*"))
        for d in ("local", "dask")
    ]
    assert names[0] == names[1] and names[0]


def test_missing_dask_is_one_clear_error(
    har_corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what an install without it does
    with pytest.raises(AnalyzerError, match=r"pip install 'ws-analyzer\[dask\]'"):
        run_batch(
            [str(har_corpus.good[0])],
            tmp_path / "out",
            scheduler="tcp://127.0.0.1:1",
            progress_stream=io.StringIO(),
        )


def test_unreachable_scheduler_is_one_clear_error(
    har_corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "DASK_CONNECT_TIMEOUT", "1s")
    with pytest.raises(AnalyzerError, match="cannot reach the Dask scheduler"):
        run_batch(
            [str(har_corpus.good[0])],
            tmp_path / "out",
            scheduler="tcp://127.0.0.1:9",  # discard port: nothing listens
            progress_stream=io.StringIO(),
        )
