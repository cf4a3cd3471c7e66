"""Routing: each reason code, thresholds, audit share, honeypots, idempotency, ordering."""

from __future__ import annotations

import dataclasses

import pytest
from sqlmodel import select

from autolabel.errors import ConfigError
from autolabel.review.ordering import ORDERINGS, Candidate, register_ordering
from autolabel.review.queue import ReviewQueue
from autolabel.review.routing import route
from autolabel.store.database import Database
from autolabel.store.tables import ReviewTask
from tests.review.factories import (
    EMOTIONS,
    INVOICE,
    make_dataset,
    make_gold,
    make_run,
    ontology,
)


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def _tasks(db: Database, queue: str = "default") -> dict[int, ReviewTask]:
    with db.session() as s:
        return {t.item_id: t for t in s.exec(select(ReviewTask).where(ReviewTask.queue == queue))}


def test_low_confidence_failed_and_per_label_thresholds(db: Database) -> None:
    ids = make_dataset(db, ["a", "b", "c", "d", "e"])
    ont = ontology(threshold=0.8, per_label={"neutral": 0.95})
    run = make_run(
        db,
        ids,
        ["positive", "positive", "neutral", "negative", None],
        [0.9, 0.5, 0.9, 0.81, None],
        ont=ont,
    )
    report = route(db, [run])
    tasks = _tasks(db)
    assert set(tasks) == {ids[1], ids[2], ids[4]}
    assert tasks[ids[1]].reasons == ["low_confidence"]
    assert tasks[ids[2]].reasons == ["low_confidence"]  # 0.9 < neutral's own 0.95
    assert tasks[ids[4]].reasons == ["model_failed"]
    assert (report.n_items, report.auto_accepted, report.queued) == (5, 2, 3)
    assert report.by_reason == {"low_confidence": 2, "model_failed": 1}
    assert report.per_label["positive"] == {"auto": 1, "queued": 1}
    assert report.per_label["neutral"] == {"auto": 0, "queued": 1}
    # a per-call override changes the outcome
    report2 = route(db, [run], queue="strict", overrides={"threshold": 0.95})
    assert report2.queued == 5


def test_sample_run_and_prior_label_disagreement(db: Database) -> None:
    ids = make_dataset(db, ["a", "b", "c"], gold=["positive", "Negative", None])
    samples = [["positive", "negative", "positive"], ["negative"] * 3, ["positive"] * 3]
    run_a = make_run(
        db, ids, ["positive", "negative", "positive"], [0.99] * 3, name="big", samples=samples
    )
    run_b = make_run(db, ids, ["positive", "neutral", "positive"], [0.99] * 3, name="small")
    report = route(db, [run_a, run_b], prior_column="gold")
    tasks = _tasks(db)
    assert tasks[ids[0]].reasons == ["sample_disagreement"]
    assert tasks[ids[1]].reasons == ["run_disagreement"]  # prior "Negative" matches, folded
    assert tasks[ids[1]].alternatives == {"small": "neutral"}
    assert ids[2] not in tasks
    assert report.by_reason == {"sample_disagreement": 1, "run_disagreement": 1}
    route(db, [run_b], queue="prior", prior_column="gold")
    assert _tasks(db, "prior")[ids[1]].reasons == ["prior_label_disagreement"]


def test_rules_regex_required_fields_forbidden_combination(db: Database) -> None:
    ids = make_dataset(db, ["refund now!!", "fine"])
    ont = ontology(rules=[{"name": "refund", "kind": "regex", "pattern": "(?i)refund"}])
    route(db, [make_run(db, ids, ["positive", "positive"], [0.99, 0.99], ont=ont)])
    assert {k: t.reasons for k, t in _tasks(db).items()} == {ids[0]: ["rule:refund"]}

    ids2 = make_dataset(db, ["x", "y"], name="emo")
    emo = ontology(
        EMOTIONS,
        rules=[{"name": "mixed", "kind": "forbidden_combination", "labels": ["anger", "joy"]}],
    )
    route(db, [make_run(db, ids2, [["anger", "joy"], ["joy"]], [0.99, 0.99], ont=emo)], queue="e")
    assert {k: t.reasons for k, t in _tasks(db, "e").items()} == {ids2[0]: ["rule:mixed"]}

    ids3 = make_dataset(db, ["p", "q"], name="inv")
    inv = ontology(
        INVOICE, rules=[{"name": "price", "kind": "required_fields", "fields": ["price"]}]
    )
    labels = [{"price": None, "currency": "EUR"}, {"price": 3.0, "currency": "EUR"}]
    route(db, [make_run(db, ids3, labels, [0.99, 0.99], ont=inv)], queue="f")
    assert {k: t.reasons for k, t in _tasks(db, "f").items()} == {ids3[0]: ["rule:price"]}


def test_audit_share_is_seeded_and_deterministic(db: Database) -> None:
    ids = make_dataset(db, [f"t{i}" for i in range(200)])
    run = make_run(db, ids, ["positive"] * 200, [0.99] * 200, ont=ontology(audit_rate=0.1))
    first = route(db, [run], queue="a1", seed=7)
    second = route(db, [run], queue="a2", seed=7)
    other = route(db, [run], queue="a3", seed=8)
    picked = set(_tasks(db, "a1"))
    assert picked == set(_tasks(db, "a2"))
    assert picked != set(_tasks(db, "a3"))
    assert first.by_reason == {"audit": first.queued} and first.queued == second.queued
    assert 8 <= first.queued <= 35 and 8 <= other.queued <= 35  # ~10% of 200
    assert all(t.reasons == ["audit"] for t in _tasks(db, "a1").values())


def test_rerouting_updates_instead_of_duplicating(db: Database) -> None:
    ids = make_dataset(db, ["a", "b"])
    run = make_run(db, ids, ["positive", "negative"], [0.5, 0.6])
    route(db, [run])
    q = ReviewQueue(db)
    t = q.claim("ann")
    q.decide(t.task_id, "ann", "neutral")  # type: ignore[union-attr]
    report = route(db, [run], overrides={"threshold": 0.55})
    tasks = _tasks(db)
    assert len(tasks) == 2 and (report.created, report.updated) == (0, 1)
    assert tasks[ids[0]].status == "decided"  # the decision is untouched


def test_honeypots_are_mixed_in_and_hidden(db: Database) -> None:
    ids = make_dataset(db, [f"t{i}" for i in range(20)])
    confs = [0.1 * (i % 5) if i < 10 else 0.99 for i in range(20)]
    run = make_run(db, ids, ["positive"] * 20, confs, ont=ontology(honeypot_rate=0.2))
    make_gold(db, ids[10:], ["negative"] * 10)
    report = route(db, [run], gold_set="gold", seed=3)
    tasks = _tasks(db)
    pots = [t for t in tasks.values() if t.is_honeypot]
    assert report.honeypots == len(pots) == 2  # 20% of 10 routed items
    assert all(t.gold_label == "negative" and "honeypot" in t.reasons for t in pots)
    q = ReviewQueue(db)
    real = {f.name for f in dataclasses.fields(q.get(pots[0].id))}  # type: ignore[arg-type]
    assert not real & {"gold_label", "is_honeypot"}
    for pot in pots:
        view = q.get(pot.id)  # type: ignore[arg-type]
        assert "honeypot" not in view.reasons and view.reasons == ["audit"]
        assert view.suggestion == "positive"
    # their priority falls inside the range of the ordinary tasks
    ordinary = [t.priority for t in tasks.values() if not t.is_honeypot]
    assert all(min(ordinary) <= t.priority <= max(ordinary) for t in pots)


def test_orderings(db: Database) -> None:
    ids = make_dataset(db, ["a", "b", "c"])
    run = make_run(db, ids, ["positive", "positive", None], [0.5, 0.2, None])
    route(db, [run])
    q = ReviewQueue(db)
    served = [q.claim(f"r{i}").item_id for i in range(3)]  # type: ignore[union-attr]
    assert served == [ids[2], ids[1], ids[0]]  # failed first, then least confident
    route(db, [run], queue="fifo", order="fifo")
    q2 = ReviewQueue(db, "fifo")
    assert [q2.claim(f"r{i}").item_id for i in range(3)] == ids  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        route(db, [run], order="nope")

    @register_ordering("test_reverse_input")
    def reverse(c: Candidate, seed: int) -> float:
        return -float(c.row_number or 0)

    try:
        route(db, [run], queue="custom", order="test_reverse_input")
        q3 = ReviewQueue(db, "custom")
        assert [q3.claim(f"r{i}").item_id for i in range(3)] == ids[::-1]  # type: ignore[union-attr]
    finally:
        ORDERINGS.pop("test_reverse_input")
