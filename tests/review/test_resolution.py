"""Final-label resolution, item audit history and the queue's agreement report."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.errors import ConfigError, NotFoundError
from autolabel.review.agreement import agreement_report
from autolabel.review.audit import item_history
from autolabel.review.queue import ReviewQueue
from autolabel.review.resolution import resolve_final_labels
from autolabel.review.routing import route
from autolabel.store.database import Database
from autolabel.store.tables import ReviewTask
from tests.review.factories import make_dataset, make_gold, make_run, make_tasks, ontology


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def test_resolution_precedence(db: Database) -> None:
    ids = make_dataset(db, ["a", "b", "c", "d", "e", "f"])
    run = make_run(
        db,
        ids,
        ["positive"] * 5 + [None],
        [0.99, 0.4, 0.4, 0.4, 0.4, None],
        ont=ontology(consensus=2, reviewers_per_item=2),
    )
    route(db, [run])  # items 1..5 queued, two reviewers each
    q = ReviewQueue(db)
    with db.session() as s:
        t = {task.item_id: task.id for task in s.exec(select(ReviewTask))}
    # b: consensus on negative
    q.decide(t[ids[1]], "ann", "negative")
    q.decide(t[ids[1]], "bob", "negative")
    # c: single human so far
    q.decide(t[ids[2]], "ann", "neutral")
    # d: disagreement, then an adjudicator overrides both
    q.decide(t[ids[3]], "ann", "negative")
    q.decide(t[ids[3]], "bob", "neutral")
    q.adjudicate(t[ids[3]], "lead", "positive")
    # e: disagreement without adjudication
    q.decide(t[ids[4]], "ann", "negative")
    q.decide(t[ids[4]], "bob", "neutral")
    finals = resolve_final_labels(db, run)
    got = {i: (f.label, f.source, f.reviewer_count, f.status) for i, f in finals.items()}
    assert got[ids[0]] == ("positive", "model", 0, "auto_accepted")
    assert got[ids[1]] == ("negative", "consensus", 2, "final")
    assert got[ids[2]] == ("neutral", "human", 1, "pending_review")
    assert got[ids[3]] == ("positive", "adjudicator", 3, "final")
    assert got[ids[4]] == ("negative", "human", 2, "needs_adjudication")
    assert got[ids[5]] == (None, "model", 0, "failed")  # routed, nobody decided yet
    assert finals[ids[0]].confidence == pytest.approx(0.99)
    assert finals[ids[1]].confidence == pytest.approx(1.0)
    assert finals[ids[4]].confidence == pytest.approx(0.5)
    # an undone decision stops counting
    q.undo("bob")  # bob's last: his vote on e
    assert resolve_final_labels(db, run)[ids[4]].status == "pending_review"


def test_single_reviewer_decision_is_final_human(db: Database) -> None:
    ids = make_dataset(db, ["a"])
    run = make_run(db, ids, ["positive"], [0.2])
    route(db, [run])
    q = ReviewQueue(db)
    q.decide(q.claim("ann").task_id, "ann", "negative")  # type: ignore[union-attr]
    f = resolve_final_labels(db, run)[ids[0]]
    assert (f.label, f.source, f.reviewer_count, f.status) == ("negative", "human", 1, "final")


def test_item_history_shows_everything(db: Database) -> None:
    ids = make_dataset(db, ["great film"])
    run_a = make_run(db, ids, ["positive"], [0.55], name="big")
    make_run(db, ids, ["negative"], [0.9], name="small")
    route(db, [run_a])
    q = ReviewQueue(db)
    t = q.claim("ann")
    q.decide(t.task_id, "ann", "neutral", seconds=4.0)  # type: ignore[union-attr]
    q.undo("ann")
    q.decide(t.task_id, "ann", "positive", seconds=2.0)  # type: ignore[union-attr]
    h = item_history(db, "ex0")
    assert h.payload == {"text": "great film"}
    assert [(p.run_name, p.label, p.confidence) for p in h.predictions] == [
        ("big", "positive", 0.55),
        ("small", "negative", 0.9),
    ]
    assert [(x.queue, x.reasons, x.status) for x in h.tasks] == [
        ("default", ["low_confidence"], "decided")
    ]
    assert [(d.action, d.label_before, d.label, d.seconds, d.undone) for d in h.decisions] == [
        ("decide", "positive", "neutral", 4.0, True),
        ("undo", "neutral", None, None, False),
        ("decide", "positive", "positive", 2.0, False),
    ]
    assert h.decisions[1].undoes_id == h.decisions[0].id
    assert item_history(db, str(ids[0])).item_id == ids[0]  # numeric id works too
    with pytest.raises(NotFoundError):
        item_history(db, "missing")
    make_dataset(db, ["other"], name="second")  # another dataset with an "ex0"
    with pytest.raises(ConfigError):
        item_history(db, "ex0")
    assert item_history(db, "ex0", dataset_id=1).item_id == ids[0]


def test_agreement_report(db: Database) -> None:
    ids = make_dataset(db, [f"t{i}" for i in range(4)])
    run = make_run(db, ids, ["positive", "positive", "negative", "negative"], [0.4] * 4)
    tasks = make_tasks(db, run, required=3, reviewers_per_item=3)
    make_gold(db, [ids[3]], ["neutral"])
    with db.session() as s:
        pot = s.get(ReviewTask, tasks[3])
        pot.is_honeypot, pot.gold_label = True, "neutral"  # type: ignore[union-attr]
        s.add(pot)
        s.commit()
    q = ReviewQueue(db)
    votes = {
        "ann": ["positive", "negative", "negative", "neutral"],
        "bob": ["positive", "negative", "positive", "negative"],
        "cat": ["positive", "positive", "negative", "neutral"],
    }
    for who, labels in votes.items():
        for task_id, label in zip(tasks, labels, strict=True):
            q.decide(task_id, who, label)
    r = agreement_report(db, "default")
    assert (r.n_items, r.n_decisions) == (4, 12)
    pairs = {(p.a, p.b): p for p in r.pairs}
    assert pairs[("ann", "bob")].percent == pytest.approx(0.5)
    # ann vs bob: p_o = 2/4; ann (pos1, neg2, neu1), bob (pos2, neg2): p_e = (2+4)/16
    assert pairs[("ann", "bob")].kappa == pytest.approx((0.5 - 6 / 16) / (1 - 6 / 16))
    assert r.fleiss_items == 4 and r.fleiss_kappa is not None
    assert r.krippendorff_alpha is not None and -1 <= r.krippendorff_alpha <= 1
    # model said positive on t0,t1 and negative on t2,t3
    assert r.model_vs_human == {"positive": (6, 4), "negative": (6, 3)}
    assert r.honeypot_accuracy == {"ann": (1, 1), "bob": (1, 0), "cat": (1, 1)}


def test_export_carries_the_resolved_labels(db: Database, tmp_path: Path) -> None:
    """The lead's export reads resolve_final_labels: check the contract end to end."""
    import json

    from autolabel.engine.export import export_run

    ids = make_dataset(db, ["a", "b"])
    run = make_run(db, ids, ["positive", "positive"], [0.99, 0.3])
    route(db, [run])
    q = ReviewQueue(db)
    q.decide(q.claim("ann").task_id, "ann", "negative")  # type: ignore[union-attr]
    out = tmp_path / "labels.jsonl"
    assert export_run(db, run, out) == 2
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert (rows["ex0"]["final_label"], rows["ex0"]["final_source"]) == ("positive", "model")
    assert (rows["ex1"]["label"], rows["ex1"]["final_label"]) == ("positive", "negative")
    assert (rows["ex1"]["final_source"], rows["ex1"]["reviewer_count"]) == ("human", 1)
