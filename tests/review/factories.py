"""Fixture data written straight into the store tables (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database
from autolabel.store.tables import (
    Dataset,
    GoldLabel,
    GoldSet,
    Item,
    Prediction,
    ReviewTask,
    Run,
)

SENTIMENT = {
    "name": "sentiment",
    "task": "classify",
    "guidelines": "Judge the writer's attitude.",
    "labels": [
        {"name": "positive", "description": "likes it"},
        {"name": "negative", "description": "dislikes it"},
        {"name": "neutral"},
    ],
}

EMOTIONS = {
    "name": "emotions",
    "task": "multi_label",
    "labels": [{"name": "anger"}, {"name": "joy"}, {"name": "fear"}],
}

INVOICE = {
    "name": "invoice",
    "task": "fields",
    "fields": [{"name": "price", "type": "number"}, {"name": "currency"}],
}


def ontology(spec: dict[str, Any] | None = None, **review: Any) -> Ontology:
    data = dict(spec or SENTIMENT)
    if review:
        data["review"] = review
    return Ontology.model_validate(data)


def make_dataset(db: Database, texts: list[str], name: str = "ds", **extra: list[Any]) -> list[int]:
    """Items with payload {"text": ..., <extra column>: ...}; returns their ids in order."""
    with db.session() as s:
        ds = Dataset(name=name)
        s.add(ds)
        s.flush()
        items = []
        for i, text in enumerate(texts):
            payload: dict[str, Any] = {"text": text}
            for column, values in extra.items():
                payload[column] = values[i]
            items.append(
                Item(
                    dataset_id=ds.id,
                    external_id=f"ex{i}",
                    content_hash=f"h{i}",
                    row_number=i,
                    payload=payload,
                )
            )
        s.add_all(items)
        s.commit()
        return [it.id for it in items]  # type: ignore[misc]


def make_run(
    db: Database,
    item_ids: list[int],
    labels: list[Any],
    confidences: list[float | None],
    *,
    ont: Ontology | None = None,
    name: str | None = None,
    samples: list[Any] | None = None,
    errors: list[str | None] | None = None,
) -> int:
    """A completed run with one prediction per item; ``None`` label = failed prediction."""
    ont = ont or ontology()
    with db.session() as s:
        dataset_id = s.get(Item, item_ids[0]).dataset_id  # type: ignore[union-attr]
        run = Run(
            run_key=f"key-{name}-{len(item_ids)}-{id(labels)}",
            name=name,
            dataset_id=dataset_id,
            ontology_name=ont.name,
            ontology_version=ont.version,
            ontology_hash="h",
            ontology=ont.model_dump(mode="json"),
            prompt_hash="p",
            template="t",
            task=ont.task.value,
            provider="test",
            model="m",
            status="completed",
        )
        s.add(run)
        s.flush()
        for i, (item_id, label, conf) in enumerate(zip(item_ids, labels, confidences, strict=True)):
            err = errors[i] if errors else None
            dist = None
            if ont.task.value == "classify" and label is not None and conf is not None:
                rest = (1 - conf) / (len(ont.labels) - 1)
                dist = {n: (conf if n == label else rest) for n in ont.label_names}
            s.add(
                Prediction(
                    run_id=run.id,
                    item_id=item_id,
                    label=label,
                    confidence=conf,
                    distribution=dist,
                    method="choice_logprobs",
                    samples=samples[i] if samples else None,
                    error=err or (None if label is not None else "model failed"),
                )
            )
        s.commit()
        return run.id  # type: ignore[return-value]


def make_gold(db: Database, item_ids: list[int], labels: list[Any], name: str = "gold") -> int:
    with db.session() as s:
        dataset_id = s.get(Item, item_ids[0]).dataset_id  # type: ignore[union-attr]
        gs = GoldSet(name=name, dataset_id=dataset_id, ontology_name="sentiment")
        s.add(gs)
        s.flush()
        s.add_all(
            GoldLabel(gold_set_id=gs.id, item_id=i, label=lab)
            for i, lab in zip(item_ids, labels, strict=True)
        )
        s.commit()
        return gs.id  # type: ignore[return-value]


def make_tasks(
    db: Database,
    run_id: int,
    queue: str = "default",
    *,
    required: int = 1,
    reviewers_per_item: int = 1,
    reasons: list[str] | None = None,
) -> list[int]:
    """One pending review task per prediction of the run, priority = confidence."""
    with db.session() as s:
        preds = s.exec(select(Prediction).where(Prediction.run_id == run_id)).all()
        tasks = [
            ReviewTask(
                queue=queue,
                item_id=p.item_id,
                run_id=run_id,
                prediction_id=p.id,
                priority=p.confidence or 0.0,
                reasons=list(reasons or ["low_confidence"]),
                suggestion=p.label,
                confidence=p.confidence,
                required_decisions=required,
                reviewers_per_item=reviewers_per_item,
            )
            for p in preds
        ]
        s.add_all(tasks)
        s.commit()
        return [t.id for t in tasks]  # type: ignore[misc]


def seed_queue(
    db: Database, n: int, *, queue: str = "default", required: int = 1, reviewers: int = 1
) -> list[int]:
    """n classify items with descending confidence, each queued for review."""
    ids = make_dataset(db, [f"text {i}" for i in range(n)], name=f"ds-{queue}")
    labels = ["positive" if i % 2 else "negative" for i in range(n)]
    run_id = make_run(db, ids, labels, [0.3 + 0.5 * i / max(n, 1) for i in range(n)])
    return make_tasks(db, run_id, queue, required=required, reviewers_per_item=reviewers)


class FakeClock:
    """A clock tests move by hand (leases expire without sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
