"""Calibrators in the store: fitted from human decisions, versioned per ontology.

A pair is (the raw confidence of the prediction a reviewer saw, whether the reviewer
kept the model's label). Each stored calibrator lists the decision ids and item ids it
was fitted on; ``held_out_ece`` reports only on other items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from autolabel.errors import ConfigError
from autolabel.evaluation.calibration import expected_calibration_error
from autolabel.hashing import canonical_json
from autolabel.learning.recalibration import Calibrator, Method, fit_calibrator
from autolabel.store.database import Database
from autolabel.store.tables import CalibratorRecord, Decision, Prediction, ReviewTask, Run

HUMAN_ACTIONS = ("decide", "adjudicate")


def decision_pairs(
    db: Database, ontology_name: str, queue: str | None = None
) -> list[dict[str, Any]]:
    """One pair per decided task of the ontology: the latest live human decision."""
    with db.session() as s:
        stmt = (
            select(ReviewTask, Prediction)
            .join(Prediction, col(Prediction.id) == col(ReviewTask.prediction_id))
            .join(Run, col(Run.id) == col(Prediction.run_id))
            .where(
                Run.ontology_name == ontology_name,
                ReviewTask.status == "decided",
                col(ReviewTask.is_honeypot).is_(False),
            )
        )
        if queue is not None:
            stmt = stmt.where(ReviewTask.queue == queue)
        rows = s.exec(stmt).all()
        task_ids = [t.id for t, _ in rows]
        last: dict[int, int] = {}
        for d in s.exec(
            select(Decision)
            .where(
                col(Decision.task_id).in_(task_ids),
                col(Decision.action).in_(HUMAN_ACTIONS),
                col(Decision.undone).is_(False),
            )
            .order_by(col(Decision.id))
        ).all():
            last[d.task_id] = int(d.id)  # type: ignore[arg-type]
    out = []
    for task, pred in rows:
        if pred.label is None or pred.confidence is None or task.final_label is None:
            continue
        out.append(
            {
                "decision_id": last.get(int(task.id)),  # type: ignore[arg-type]
                "item_id": task.item_id,
                "confidence": pred.confidence,
                "distribution": pred.distribution,
                "correct": canonical_json(pred.label) == canonical_json(task.final_label),
            }
        )
    return out


def fit_and_store(
    db: Database, ontology_name: str, *, queue: str | None = None, method: Method = "auto"
) -> CalibratorRecord:
    pairs = decision_pairs(db, ontology_name, queue)
    if not pairs:
        raise ConfigError(
            f"no human decisions on ontology '{ontology_name}' to fit a calibrator on",
            hint="review some items first (autolabel review), or check the ontology name",
        )
    cal = fit_calibrator(
        [p["confidence"] for p in pairs],
        [p["correct"] for p in pairs],
        distributions=[p["distribution"] for p in pairs],
        refs=[f"item:{p['item_id']}" for p in pairs],
        method=method,
    )
    with db.session() as s:
        version = (
            s.exec(
                select(func.max(CalibratorRecord.version)).where(
                    CalibratorRecord.ontology_name == ontology_name
                )
            ).one()
            or 0
        ) + 1
        record = CalibratorRecord(
            ontology_name=ontology_name,
            version=version,
            method=cal.method,
            params=cal.params,
            n_fitted=cal.n_fitted,
            decision_ids=[p["decision_id"] for p in pairs if p["decision_id"] is not None],
            item_ids=[p["item_id"] for p in pairs],
        )
        s.add(record)
        s.commit()
        return record


def latest(db: Database, ontology_name: str) -> CalibratorRecord | None:
    with db.session() as s:
        return s.exec(
            select(CalibratorRecord)
            .where(CalibratorRecord.ontology_name == ontology_name)
            .order_by(col(CalibratorRecord.version).desc())
        ).first()


def as_calibrator(record: CalibratorRecord) -> Calibrator:
    return Calibrator(
        record.method,
        dict(record.params),
        record.n_fitted,
        tuple(f"item:{i}" for i in record.item_ids),
    )


def held_out_ece(
    record: CalibratorRecord,
    item_ids: Sequence[int],
    confidences: Sequence[float | None],
    distributions: Sequence[Any],
    correct: Sequence[bool],
) -> dict[str, Any] | None:
    """ECE before/after on items the calibrator was NOT fitted on (None if none are left)."""
    fitted = set(record.item_ids)
    keep = [
        i
        for i, (item, c) in enumerate(zip(item_ids, confidences, strict=True))
        if item not in fitted and c is not None
    ]
    if not keep:
        return None
    cal = as_calibrator(record)
    before = [float(confidences[i]) for i in keep]  # type: ignore[arg-type]
    after = [float(cal.apply(confidences[i], distributions[i])) for i in keep]  # type: ignore[arg-type]
    ok = [bool(correct[i]) for i in keep]
    return {
        "calibrator_version": record.version,
        "method": record.method,
        "n_fitted": record.n_fitted,
        "n_held_out": len(keep),
        "n_excluded": len(item_ids) - len(keep),
        "ece_before": expected_calibration_error(before, ok),
        "ece_after": expected_calibration_error(after, ok),
    }
