"""Truthful timings: the model's own latency is stored apart from time spent queued."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.ontology import load_ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store import Database
from autolabel.store.tables import Prediction
from autolabel.testing import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SST2 = load_ontology(REPO / "ontologies" / "sst2.yaml")


def _data(tmp_path: Path, n: int) -> Path:
    p = tmp_path / "reviews.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([f"r{i}", f"review {i}: {'positive' if i % 3 else 'negative'} film"])
    return p


def _preds(db: Database, run_id: int) -> list[Prediction]:
    with db.session() as s:
        return list(s.exec(select(Prediction).where(Prediction.run_id == run_id)).scalars())


def test_model_time_is_stored_apart_from_wall_time_and_cache_hits_have_none(
    tmp_path: Path, sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    cache = ResponseCache(tmp_path / "cache")
    data = _data(tmp_path, 12)
    with FakeOpenAIServer(latency_s=0.02) as srv:
        provider = OpenAIProvider(model="m", base_url=srv.base_url, api_key="unused")

        def job() -> LabelJob:
            return LabelJob(
                ontology=SST2, data=data, provider=provider, db=db, cache=cache, progress=False
            )

        first = run_job(job())
        again = run_job(job())  # completed job: a new run, all from the cache
    fresh = _preds(db, first.run_id)
    assert len(fresh) == 12
    for p in fresh:
        assert p.model_ms is not None and 0 < p.model_ms <= p.latency_ms
    cached = _preds(db, again.run_id)
    assert cached and all(p.cache_hit and p.model_ms is None for p in cached)


@pytest.mark.model
def test_local_model_time_excludes_queueing(gemma_provider, tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    """One worker thread runs the model: its summed time cannot exceed the run's wall
    time, while the per-item wall times (8 items queued at once) add up to more."""
    db = Database(sqlite_url)
    data = _data(tmp_path, 8)
    started = time.perf_counter()
    summary = run_job(
        LabelJob(
            ontology=SST2,
            data=data,
            provider=gemma_provider,
            db=db,
            cache=None,
            progress=False,
            concurrency=8,
        )
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    preds = _preds(db, summary.run_id)
    assert len(preds) == 8 and all(p.model_ms is not None for p in preds)
    assert sum(p.model_ms for p in preds) <= elapsed_ms  # type: ignore[misc]
    assert sum(p.latency_ms for p in preds) > sum(p.model_ms for p in preds)  # type: ignore[misc]
    db.dispose()
