"""Runs with predictions, review tasks, decisions and gold, written straight into the store."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database
from autolabel.store.tables import Prediction, Run
from tests.review.factories import make_dataset, make_run

NER = {
    "name": "ner",
    "task": "spans",
    "labels": [{"name": "PER", "description": "a person"}, {"name": "LOC"}, {"name": "ORG"}],
}
NER_TEXTS = [
    "Ada Lovelace lived in London.",
    "Acme hired Bob in Paris.",
    "Nothing here.",
]
NER_LABELS: list[Any] = [
    [
        {"start": 0, "end": 12, "text": "Ada Lovelace", "label": "PER"},
        {"start": 22, "end": 28, "text": "London", "label": "LOC"},
    ],
    [
        {"start": 0, "end": 4, "text": "Acme", "label": "ORG"},
        {"start": 11, "end": 14, "text": "Bob", "label": "PER"},
        {"start": 18, "end": 23, "text": "Paris", "label": "LOC"},
    ],
    [],
]


def ner_run(db: Database, name: str = "ner-ds") -> tuple[Ontology, int]:
    ont = Ontology.model_validate(NER)
    ids = make_dataset(db, NER_TEXTS, name=name)
    run_id = make_run(db, ids, NER_LABELS, [0.9, 0.7, 0.95], ont=ont)
    with db.session() as s:  # spans carry per-span confidences in span order
        for pred in s.exec(select(Prediction).where(Prediction.run_id == run_id)):
            pred.distribution = [0.8] * len(pred.label)
            s.add(pred)
        s.commit()
    return ont, run_id


def set_model(db: Database, run_id: int, model: str, prompt_hash: str) -> None:
    with db.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        run.model, run.prompt_hash = model, prompt_hash
        s.add(run)
        s.commit()
