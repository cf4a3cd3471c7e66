"""Build runs and predictions directly in the tables (no model needed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database
from autolabel.store.tables import Dataset, Item, Prediction, Run, utcnow


def dataset_with_items(db: Database, name: str, texts: dict[str, str]) -> dict[str, int]:
    """Items keyed by external id; returns external id → item id."""
    with db.session() as s:
        ds = Dataset(name=name, source=f"{name}.csv")
        s.add(ds)
        s.flush()
        ids = {}
        for row, (ext, text) in enumerate(texts.items(), start=1):
            item = Item(
                dataset_id=ds.id,
                external_id=ext,
                content_hash=f"h-{ext}",
                row_number=row,
                payload={"id": ext, "text": text},
            )
            s.add(item)
            s.flush()
            ids[ext] = item.id
        s.commit()
        return ids


def make_run(
    db: Database,
    ontology: Ontology,
    dataset: str,
    predictions: dict[str, tuple[Any, float | None]],
    *,
    model: str = "fake-model",
    name: str | None = None,
    template: str = "classify.j2",
    distributions: dict[str, dict[str, float]] | None = None,
    method: str = "choice_logprobs",
) -> int:
    """A completed run; ``predictions``: external id → (label or None for failed, confidence);
    ``distributions`` (external id → label scores) replace the made-up classify ones."""
    with db.session() as s:
        from sqlmodel import select

        ds = s.exec(select(Dataset).where(Dataset.name == dataset)).one()
        items = {i.external_id: i for i in s.exec(select(Item).where(Item.dataset_id == ds.id))}
        started = utcnow()
        run = Run(
            run_key=f"key-{name or model}-{len(predictions)}-{started.timestamp()}",
            name=name,
            dataset_id=ds.id,
            ontology_name=ontology.name,
            ontology_version=ontology.version,
            ontology_hash="h",
            ontology=ontology.model_dump(mode="json"),
            prompt_hash="p" * 64,
            template=template,
            task=ontology.task.value,
            provider="fake",
            model=model,
            status="completed",
            started_at=started,
            finished_at=started + timedelta(seconds=2),
            n_items=len(predictions),
        )
        s.add(run)
        s.flush()
        labels = ontology.label_names
        for ext, (label, conf) in predictions.items():
            dist = None
            if label is not None and conf is not None and ontology.task.value == "classify":
                rest = (1 - conf) / (len(labels) - 1)
                dist = {name_: (conf if name_ == label else rest) for name_ in labels}
            if distributions is not None:
                dist = distributions.get(ext)
            s.add(
                Prediction(
                    run_id=run.id,
                    item_id=items[ext].id,
                    label=label,
                    confidence=conf,
                    distribution=dist,
                    method=method,
                    model=model,
                    tokens_in=100,
                    tokens_out=5,
                    latency_ms=50.0,
                    error="model answer invalid" if label is None else None,
                )
            )
        s.commit()
        return int(run.id)


def cli(args: list[str]) -> int:
    """Run the ``autolabel`` command in-process; returns its exit code."""
    from autolabel.cli.main import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
