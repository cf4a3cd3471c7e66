"""The live loop on the real embedded model (Gemma 270M) and real SQLite/PostgreSQL:
demonstrations from human decisions in the prompt, recorded per prediction; relabel."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.learning.relabel import relabel
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.review.queue import ReviewQueue
from autolabel.review.routing import route
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Item, Prediction, PredictionDemos, ReviewTask, Run

pytestmark = pytest.mark.model

TEXTS = [
    "I loved this film, wonderful acting",
    "terrible plot and boring scenes",
    "a delightful and moving story",
    "the worst movie I have seen this year",
    "great fun for the whole family",
    "dull, slow and far too long",
]


def _ontology(name: str, k: int = 2, **review: Any) -> Ontology:
    return Ontology.model_validate(
        {
            "name": name,
            "task": "classify",
            "labels": [{"name": "positive"}, {"name": "negative"}],
            "examples": {"from": "reviews", "k": k},
            "review": review or {},
        }
    )


def _data(tmp_path: Path, prefix: str, texts: list[str]) -> Path:
    path = tmp_path / f"{prefix}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i, t in enumerate(texts):
            w.writerow([f"{prefix}{i}", t])
    return path


def _label(db: Database, ont: Ontology, data: Path, provider, cache) -> int:  # type: ignore[no-untyped-def]
    job = LabelJob(
        ontology=ont,
        data=data,
        provider=provider,
        db=db,
        cache=cache,
        progress=False,
        concurrency=2,
        new_run=True,
    )
    return run_job(job).run_id


def _decide(db: Database, queue: str, n: int) -> list[int]:
    """A human decides the first n tasks of the queue with the right label."""
    q = ReviewQueue(db, queue)
    items = []
    for _ in range(n):
        view = q.claim("ann")
        assert view is not None
        right = (
            "negative"
            if any(w in view.fields["text"] for w in ("terrible", "worst", "dull"))
            else "positive"
        )
        q.decide(view.task_id, "ann", right)
        items.append(view.item_id)
    return items


def test_demonstrations_from_decisions_in_prompt_and_cache(
    db_url: str,
    gemma_provider,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    db = Database(db_url)
    cache = ResponseCache(tmp_path / "cache")
    ont = _ontology("films")
    data = _data(tmp_path, "f", TEXTS)
    first = _label(db, ont, data, gemma_provider, cache)
    with db.session() as s:
        assert not s.exec(select(PredictionDemos)).all()  # empty pool: zero-shot
    route(db, [first], queue="films", overrides={"threshold": 1.0, "audit_rate": 1.0})
    decided = _decide(db, "films", 3)
    # Another ontology's decisions on other items must never be shown.
    other = _ontology("other")
    other_run = _label(
        db, other, _data(tmp_path, "o", ["fine weather today", "rain again"]), gemma_provider, cache
    )
    route(db, [other_run], queue="other", overrides={"threshold": 1.0, "audit_rate": 1.0})
    other_items = _decide(db, "other", 2)

    second = _label(db, ont, data, gemma_provider, cache)
    with db.session() as s:
        demos = {
            d.item_id: d.refs
            for d in s.exec(select(PredictionDemos).where(PredictionDemos.run_id == second)).all()
        }
        preds = s.exec(select(Prediction).where(Prediction.run_id == second)).all()
        base = s.get(Run, second).prompt_hash  # type: ignore[union-attr]
    assert len(demos) == len(TEXTS)
    allowed = {f"item:{i}" for i in decided}
    for item_id, refs in demos.items():
        assert f"item:{item_id}" not in refs  # never itself
        assert set(refs) <= allowed  # only this ontology's decisions
        assert not set(refs) & {f"item:{i}" for i in other_items}
        assert len(refs) == 2  # k, from a pool of 3 minus the item itself
    # Demonstrations are part of the prompt hash: it differs from the zero-shot hash.
    assert all(p.prompt_hash != base for p in preds)
    assert base == PromptCompiler(ont).prompt_hash

    third = _label(db, ont, data, gemma_provider, cache)
    with db.session() as s:
        hits = s.exec(select(Prediction.cache_hit).where(Prediction.run_id == third)).all()
    assert all(hits)  # same pool, same demonstrations: served from the cache


def test_relabel_keeps_human_decisions_withdraws_and_queues(
    db_url: str,
    gemma_provider,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    db = Database(db_url)
    cache = ResponseCache(tmp_path / "cache")
    # threshold 0: every re-labelled item is "confident" and its open task is withdrawn.
    ont = _ontology("films", threshold=0.0)
    data = _data(tmp_path, "f", TEXTS)
    parent = _label(db, ont, data, gemma_provider, cache)
    route(db, [parent], queue="q", overrides={"threshold": 1.0, "audit_rate": 1.0})
    decided = _decide(db, "q", 2)
    with db.session() as s:
        before = {t.id: (t.status, t.final_label) for t in s.exec(select(ReviewTask)).all()}
        n_decisions = len(s.exec(select(Decision)).all())
    report = relabel(db, parent, gemma_provider, cache, queue="q")
    assert report.n_relabelled == len(TEXTS) - 2 and report.n_kept_human == 2
    with db.session() as s:
        new_items = set(
            s.exec(select(Prediction.item_id).where(Prediction.run_id == report.run_id)).all()
        )
        tasks = {t.id: t for t in s.exec(select(ReviewTask)).all()}
        withdraws = s.exec(select(Decision).where(Decision.action == "withdraw")).all()
        lineage_parent = s.get(Run, report.run_id).params["parent_run"]  # type: ignore[union-attr]
    assert not new_items & set(decided)  # decided items are not re-labelled
    assert lineage_parent == parent
    for tid, (status, final) in before.items():
        if status == "decided":
            assert (tasks[tid].status, tasks[tid].final_label) == (status, final)
        else:
            assert tasks[tid].status == "withdrawn"
    assert len(withdraws) == len(report.withdrawn) == len(TEXTS) - 2
    assert all(w.reviewer == "autolabel" and "now_confident" in w.reasons for w in withdraws)
    with db.session() as s:
        assert len(s.exec(select(Decision)).all()) == n_decisions + len(withdraws)

    # Now a strict policy: items become doubtful again and are queued as new tasks.
    strict = _ontology("films", threshold=1.0)
    with db.session() as s:
        run = s.get(Run, report.run_id)
        run.ontology = strict.model_dump(mode="json")  # type: ignore[union-attr]
        s.add(run)
        s.commit()
    again = relabel(db, report.run_id, gemma_provider, cache, queue="fresh")
    assert again.routing is not None and again.routing.created >= 1
    with db.session() as s:
        fresh = s.exec(select(ReviewTask).where(ReviewTask.queue == "fresh")).all()
        assert {t.item_id for t in fresh}.isdisjoint(decided)
        assert all(t.status == "pending" for t in fresh)
        decided_rows = s.exec(
            select(ReviewTask).where(col(ReviewTask.item_id).in_(decided), ReviewTask.queue == "q")
        ).all()
        assert all(t.status == "decided" for t in decided_rows)
        assert len(s.exec(select(Item)).all()) == len(TEXTS)
