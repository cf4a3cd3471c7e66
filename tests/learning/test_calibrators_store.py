"""Calibrators fitted on human decisions; eval reports ECE only on other items."""

from __future__ import annotations

from sqlmodel import select

from autolabel.evaluation.evaluate import evaluate_run
from autolabel.learning.calibrators import fit_and_store, latest
from autolabel.review.ordering import seeded_unit
from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import ReviewTask
from tests.review.factories import make_dataset, make_gold, make_run, make_tasks


def test_fit_on_decisions_and_report_on_held_out(db_url: str) -> None:
    db = Database(db_url)
    n = 80
    ids = make_dataset(db, [f"text {i}" for i in range(n)])
    gold = ["positive" if i % 2 else "negative" for i in range(n)]
    # Over-confident model: 90-99% sure, right on about 60% of items whatever it says.
    flip = {"positive": "negative", "negative": "positive"}
    pred = [g if seeded_unit(2, i) < 0.6 else flip[g] for i, g in enumerate(gold)]
    conf = [0.9 + 0.09 * seeded_unit(1, i) for i in range(n)]
    run_id = make_run(db, ids, pred, conf)
    make_gold(db, ids, gold)
    tasks = make_tasks(db, run_id)
    # Reviewers meet items in a shuffled order (as with an audit share), not by confidence.
    with db.session() as s:
        for t in s.exec(select(ReviewTask)).all():
            t.priority = seeded_unit(3, t.item_id)
            s.add(t)
        s.commit()
    queue = ReviewQueue(db)
    by_item = dict(zip(ids, gold, strict=True))
    decided_items = []
    for _ in range(40):
        view = queue.claim("ann")
        assert view is not None
        queue.decide(view.task_id, "ann", by_item[view.item_id])
        decided_items.append(view.item_id)
    assert len(tasks) == n

    record = fit_and_store(db, "sentiment")
    assert record.version == 1 and record.n_fitted == 40
    assert sorted(record.item_ids) == sorted(decided_items)
    assert len(record.decision_ids) == 40
    assert fit_and_store(db, "sentiment").version == 2
    assert latest(db, "sentiment").version == 2  # type: ignore[union-attr]

    result = evaluate_run(db, run_id, store=False)
    r = result.recalibration
    assert r is not None
    # Never reported on the items it was fitted on.
    assert r["n_held_out"] == n - 40 and r["n_excluded"] == 40
    assert r["ece_after"] < r["ece_before"] / 2
