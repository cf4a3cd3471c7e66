"""The labeling pipeline end to end, against a real OpenAI-protocol server on loopback."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.export import export_run
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.errors import BadRowError
from autolabel.ontology import load_ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store import Database
from autolabel.store.tables import Item, Prediction, Run
from autolabel.testing import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SST2 = load_ontology(REPO / "ontologies" / "sst2.yaml")


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def _data(tmp_path: Path, n: int = 30, bad: dict[int, str] | None = None) -> Path:
    p = tmp_path / "reviews.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(1, n + 1):
            text = (bad or {}).get(i, f"review {i}: {'positive' if i % 3 else 'negative'} film")
            w.writerow([f"r{i}", text])
    return p


def _job(srv: FakeOpenAIServer, db: Database, data: Path, cache: ResponseCache | None, **kw):
    provider = OpenAIProvider(model="fake-model", base_url=srv.base_url, api_key="unused")
    return LabelJob(
        ontology=SST2, data=data, provider=provider, db=db, cache=cache, progress=False, **kw
    )


def _count(db: Database, run_id: int) -> tuple[int, int]:
    with db.session() as s:
        total = s.execute(select(func.count()).where(Prediction.run_id == run_id)).scalar_one()
        distinct = s.execute(
            select(func.count(func.distinct(Prediction.item_id))).where(Prediction.run_id == run_id)
        ).scalar_one()
    return total, distinct


def test_labels_with_logprob_confidence_then_rerun_is_all_cache_hits(
    server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    cache = ResponseCache(tmp_path / "cache")
    data = _data(tmp_path)
    first = run_job(_job(server, db, data, cache))
    calls = len(server.chat_requests())
    assert first.n_labeled == 30 and first.n_failed == 0
    assert first.n_model_calls == calls == 30
    with db.session() as s:
        preds = s.exec(select(Prediction).where(Prediction.run_id == first.run_id)).scalars().all()
        items = {i.id: i for i in s.exec(select(Item)).scalars()}
    # The fake endpoint picks the label named in the text; check a few by hand.
    by_ext = {items[p.item_id].external_id: p for p in preds}
    assert by_ext["r1"].label == "positive" and by_ext["r3"].label == "negative"
    assert all(p.method == "token_logprobs" and 0 < p.confidence <= 1 for p in preds)
    assert all(p.prompt_hash == preds[0].prompt_hash and p.model for p in preds)

    second = run_job(_job(server, db, data, cache))
    assert second.run_id != first.run_id
    assert second.n_model_calls == 0 and second.n_cache_hits == 30
    assert len(server.chat_requests()) == calls  # not one more request
    assert _count(db, second.run_id) == (30, 30)


def test_bad_rows_are_skipped_with_row_numbers_or_fail_the_run(
    server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    data = _data(tmp_path, n=10, bad={4: "", 7: "   "})
    summary = run_job(_job(server, db, data, None))
    assert summary.n_labeled == 8
    assert [(b.row, b.field) for b in summary.bad_rows] == [(4, "text"), (7, "text")]

    with pytest.raises(BadRowError) as err:
        run_job(_job(server, db, data, None, on_bad_row="fail", new_run=True))
    assert "reviews.csv: row 4, field 'text': empty text" in str(err.value)
    with db.session() as s:
        runs = s.exec(select(Run)).scalars().all()
    # The bad row is met before any answer: the failed invocation leaves no run to resume.
    assert [r.id for r in runs] == [summary.run_id]


def test_killed_run_state_resumes_labeling_only_missing_items(
    server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str
) -> None:
    """An interrupted run (status left 'running') is continued, not restarted."""
    db = Database(sqlite_url)
    data = _data(tmp_path, n=20)
    run_job(_job(server, db, data, None, limit=8))
    with db.session() as s:
        run = s.exec(select(Run)).scalars().one()
        run.status = "running"  # as a SIGKILL leaves it
        s.add(run)
        s.commit()
    before = len(server.chat_requests())
    resumed = run_job(_job(server, db, data, None))
    assert resumed.resumed and resumed.run_id == run.id and resumed.already_done == 8
    assert len(server.chat_requests()) - before == 12
    assert _count(db, run.id) == (20, 20)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_carries_inputs_labels_and_provenance(
    server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str, fmt: str
) -> None:
    db = Database(sqlite_url)
    summary = run_job(_job(server, db, _data(tmp_path, n=6), None))
    out = tmp_path / f"labels.{fmt}"
    assert export_run(db, summary.run_id, out) == 6
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(out.open()))
    else:
        rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1, 7)]
    assert rows[2]["label"] == "negative" and rows[0]["text"].startswith("review 1")
    assert float(rows[0]["confidence"]) > 0 and rows[0]["model"] == "fake-model"
    assert rows[0]["method"] == "token_logprobs" and len(rows[0]["prompt_hash"]) == 64


def test_same_flow_on_postgresql(server: FakeOpenAIServer, tmp_path: Path, postgres_url: str):
    db = Database(postgres_url)
    assert not db.is_sqlite
    cache = ResponseCache(tmp_path / "cache")
    data = _data(tmp_path, n=25, bad={5: ""})
    first = run_job(_job(server, db, data, cache, concurrency=8))
    assert (first.n_labeled, first.n_bad_rows) == (24, 1)
    assert _count(db, first.run_id) == (24, 24)
    second = run_job(_job(server, db, data, cache))
    assert second.n_model_calls == 0 and second.n_cache_hits == 24
    out = tmp_path / "pg.jsonl"
    assert export_run(db, first.run_id, out) == 24
    db.dispose()


def test_provider_is_closed_cleanly(server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str):
    job = _job(server, Database(sqlite_url), _data(tmp_path, n=2), None)
    run_job(job)
    asyncio.run(job.provider.aclose())
