"""Shared set-up for the review benchmarks: a seeded queue of classify items.

``bench/review_latency.py`` and ``bench/review_team.py`` both need N items, one
prediction each and a pending review task each, inserted in bulk (the ORM would
take minutes at 100k rows). Ids come back from the database rather than being
chosen here, so PostgreSQL's sequences stay right for the rows the benchmarks add.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlmodel import col, select

from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database
from autolabel.store.tables import Dataset, Item, Prediction, ReviewTask, Run

LABELS = ["positive", "negative", "neutral"]
ONTOLOGY = Ontology.model_validate(
    {
        "name": "sentiment",
        "task": "classify",
        "guidelines": "Judge the writer's attitude.",
        "labels": [{"name": name} for name in LABELS],
    }
)


def seed_review_queue(
    url: str,
    n: int,
    *,
    queue: str = "default",
    required: int = 1,
    text: str = "review number {i}: the product was fine, I guess",
    chunk: int = 20_000,
) -> Database:
    """``n`` items with a prediction and a pending task each in ``queue``.

    Item ``i`` (1-based) is suggested ``LABELS[i % 3]`` at confidence
    0.40–0.89 and priority ``(i % 50) / 100``; every task asks ``required`` votes.
    """
    db = Database(url)
    with db.session() as s:
        ds = Dataset(name=f"bench-{queue}")
        s.add(ds)
        s.flush()
        run = Run(
            run_key=f"bench-{queue}",
            dataset_id=ds.id,  # type: ignore[arg-type]
            ontology_name=ONTOLOGY.name,
            ontology_version=ONTOLOGY.version,
            ontology_hash="h",
            ontology=ONTOLOGY.model_dump(mode="json"),
            prompt_hash="p",
            template="t",
            task="classify",
            provider="bench",
            model="m",
            status="completed",
        )
        s.add(run)
        s.commit()
        ds_id, run_id = ds.id, run.id
    for lo in range(1, n + 1, chunk):
        rows = range(lo, min(lo + chunk, n + 1))
        with db.engine.begin() as conn:
            conn.execute(
                insert(Item.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "dataset_id": ds_id,
                        "external_id": f"r{i}",
                        "content_hash": f"h{i}",
                        "row_number": i,
                        "payload": {"text": text.format(i=i)},
                    }
                    for i in rows
                ],
            )
        with db.session() as s:
            item_ids = s.exec(
                select(Item.id)
                .where(Item.dataset_id == ds_id, col(Item.row_number) >= lo)
                .order_by(col(Item.row_number))
            ).all()
        by_row = dict(zip(rows, item_ids, strict=True))
        with db.engine.begin() as conn:
            conn.execute(
                insert(Prediction.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "run_id": run_id,
                        "item_id": by_row[i],
                        "label": LABELS[i % 3],
                        "confidence": 0.4 + (i % 50) / 100,
                        "distribution": {
                            lab: (0.6 if k == i % 3 else 0.2) for k, lab in enumerate(LABELS)
                        },
                        "method": "choice_logprobs",
                    }
                    for i in rows
                ],
            )
        with db.session() as s:
            pred_ids = dict(
                s.exec(
                    select(Prediction.item_id, Prediction.id).where(
                        Prediction.run_id == run_id, col(Prediction.item_id).in_(item_ids)
                    )
                ).all()
            )
        with db.engine.begin() as conn:
            conn.execute(
                insert(ReviewTask.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "queue": queue,
                        "item_id": by_row[i],
                        "run_id": run_id,
                        "prediction_id": pred_ids[by_row[i]],
                        "status": "pending",
                        "priority": (i % 50) / 100,
                        "reasons": ["low_confidence"],
                        "suggestion": LABELS[i % 3],
                        "confidence": 0.4 + (i % 50) / 100,
                        "required_decisions": required,
                        "reviewers_per_item": required,
                    }
                    for i in rows
                ],
            )
    return db
