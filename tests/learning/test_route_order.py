"""`review.order: active | uncertainty` in routing: deterministic with a seed, calibrated."""

from __future__ import annotations

from sqlmodel import select

from autolabel.learning.recalibration import Calibrator
from autolabel.review.routing import route
from autolabel.store.database import Database
from autolabel.store.tables import ReviewTask
from tests.review.factories import make_dataset, make_run, ontology

TEXTS = [
    "card not arrived",
    "card not arrived yet",
    "top up failed",
    "exchange rate",
    "lost my phone",
    "pin blocked",
]


def _priorities(db: Database, queue: str) -> dict[int, float]:
    with db.session() as s:
        return {
            t.item_id: t.priority
            for t in s.exec(select(ReviewTask).where(ReviewTask.queue == queue)).all()
        }


def test_active_order_deterministic_and_calibrated(db_url: str) -> None:
    db = Database(db_url)
    ids = make_dataset(db, TEXTS)
    labels = ["positive", "negative"] * 3
    run = make_run(db, ids, labels, [0.55, 0.56, 0.6, 0.7, 0.95, 0.97])
    for q in ("a", "b"):
        route(db, [run], queue=q, order="active", seed=7, overrides={"audit_rate": 0.5})
    assert _priorities(db, "a") == _priorities(db, "b")
    # Policy default is used when no order is given (review.order).
    ont_default = route(db, [run], queue="c", overrides={"threshold": 0.9})
    assert ont_default.queued == 4

    # A calibrator that halves confidences sends everything to review and is what
    # the task shows (the TUI reads task.confidence).
    halve = Calibrator("isotonic", {"x": [0.0, 1.0], "y": [0.0, 0.5]})
    report = route(db, [run], queue="d", order="uncertainty", calibrator=halve)
    assert report.queued == len(TEXTS) and not report.auto_item_ids
    with db.session() as s:
        confs = sorted(
            t.confidence for t in s.exec(select(ReviewTask).where(ReviewTask.queue == "d")).all()
        )
    assert max(confs) <= 0.5


def test_policy_order_in_ontology() -> None:
    ont = ontology(order="active")
    assert ont.review.order == "active"
