"""An item's full history: what each model said, why it was routed, what humans did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from autolabel.errors import ConfigError, NotFoundError
from autolabel.review.transactions import aware
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Item, ItemChange, Prediction, ReviewTask, Run


@dataclass(frozen=True)
class PredictionEntry:
    run_id: int
    run_name: str | None
    model: str
    label: Any
    confidence: float | None
    method: str | None
    error: str | None
    created_at: datetime
    # False: made on content the item no longer has (it changed under the same id).
    on_current_content: bool = True


@dataclass(frozen=True)
class ChangeEntry:
    """The item's content changed under the same id (seen by ``run_id``)."""

    run_id: int | None
    old_payload: Any
    created_at: datetime


@dataclass(frozen=True)
class TaskEntry:
    task_id: int
    queue: str
    run_id: int | None
    status: str
    reasons: list[str]  # the real reasons, honeypot included (this is the admin view)
    suggestion: Any
    confidence: float | None
    final_label: Any
    final_source: str | None
    is_honeypot: bool
    gold_label: Any


@dataclass(frozen=True)
class DecisionEntry:
    id: int
    task_id: int
    reviewer: str
    action: str
    label_before: Any
    label: Any
    seconds: float | None
    note: str | None
    undone: bool
    undoes_id: int | None
    created_at: datetime


@dataclass
class ItemHistory:
    item_id: int
    external_id: str
    dataset_id: int
    payload: dict[str, Any]
    predictions: list[PredictionEntry] = field(default_factory=list)
    tasks: list[TaskEntry] = field(default_factory=list)
    decisions: list[DecisionEntry] = field(default_factory=list)
    changes: list[ChangeEntry] = field(default_factory=list)


def find_item(db: Database, ref: str, dataset_id: int | None = None) -> Item:
    """An item by external id, or by numeric database id when no external id matches."""
    with db.session() as s:
        stmt = select(Item).where(Item.external_id == ref)
        if dataset_id is not None:
            stmt = stmt.where(Item.dataset_id == dataset_id)
        hits = s.exec(stmt).all()
        if len(hits) > 1:
            raise ConfigError(
                f"external id '{ref}' exists in {len(hits)} datasets",
                hint="pass --dataset ID, or the numeric item id",
            )
        if hits:
            return hits[0]
        if ref.isdigit():
            item = s.get(Item, int(ref))
            if item is not None:
                return item
    raise NotFoundError(f"no item '{ref}'", hint="use the id column of your input, or the item id")


def item_history(db: Database, ref: str, dataset_id: int | None = None) -> ItemHistory:
    """Everything stored about one item, oldest first."""
    item = find_item(db, ref, dataset_id)
    history = ItemHistory(item.id, item.external_id, item.dataset_id, dict(item.payload))  # type: ignore[arg-type]
    with db.session() as s:
        for pred, run in s.exec(
            select(Prediction, Run)
            .join(Run, col(Prediction.run_id) == col(Run.id))
            .where(Prediction.item_id == item.id)
            .order_by(col(Prediction.run_id))
        ):
            history.predictions.append(
                PredictionEntry(
                    run.id,
                    run.name,
                    run.model,
                    pred.label,
                    pred.confidence,  # type: ignore[arg-type]
                    pred.method,
                    pred.error,
                    aware(pred.created_at),
                    pred.content_hash in (None, item.content_hash),
                )  # type: ignore[arg-type]
            )
        for ch in s.exec(
            select(ItemChange).where(ItemChange.item_id == item.id).order_by(col(ItemChange.id))
        ):
            history.changes.append(ChangeEntry(ch.run_id, ch.old_payload, aware(ch.created_at)))
        for t in s.exec(
            select(ReviewTask).where(ReviewTask.item_id == item.id).order_by(col(ReviewTask.id))
        ):
            history.tasks.append(
                TaskEntry(
                    t.id,
                    t.queue,
                    t.run_id,
                    t.status,
                    list(t.reasons),
                    t.suggestion,  # type: ignore[arg-type]
                    t.confidence,
                    t.final_label,
                    t.final_source,
                    t.is_honeypot,
                    t.gold_label,
                )
            )
        for d in s.exec(
            select(Decision).where(Decision.item_id == item.id).order_by(col(Decision.id))
        ):
            history.decisions.append(
                DecisionEntry(
                    d.id,
                    d.task_id,
                    d.reviewer,
                    d.action,
                    d.label_before,
                    d.label,  # type: ignore[arg-type]
                    d.seconds,
                    d.note,
                    d.undone,
                    d.undoes_id,
                    aware(d.created_at),
                )  # type: ignore[arg-type]
            )
    return history
