"""The demonstrations pool of an ontology, read from the store.

Human decisions of tasks whose run labelled this ontology (never another one), plus
imported gold labels of the ontology when the ontology allows it (``include_gold``).
Refs are ``item:<id>`` so a prediction records exactly which items it was shown.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from autolabel.learning.demonstrations import Demonstration, demo_text
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.store.database import Database
from autolabel.store.tables import GoldLabel, GoldSet, Item, ReviewTask, Run

HUMAN_SOURCES = ("human", "consensus", "adjudicator")


def item_ref(item_id: int) -> str:
    return f"item:{item_id}"


def load_demonstrations(db: Database, ontology: Ontology) -> list[Demonstration]:
    """Every human-decided item of ``ontology`` (and its gold, when allowed)."""
    spec = ontology.demonstrations
    fields = ontology.input.fields
    labels: dict[int, tuple[Any, dict[str, Any]]] = {}
    with db.session() as s:
        if spec is not None and spec.include_gold:
            rows = s.exec(
                select(GoldLabel.item_id, GoldLabel.label, Item.payload)
                .join(GoldSet, col(GoldSet.id) == col(GoldLabel.gold_set_id))
                .join(Item, col(Item.id) == col(GoldLabel.item_id))
                .where(GoldSet.ontology_name == ontology.name)
                .order_by(col(GoldSet.version))
            ).all()
            for item_id, label, payload in rows:
                labels[item_id] = (label, payload)
        rows = s.exec(
            select(ReviewTask.item_id, ReviewTask.final_label, Item.payload)
            .join(Run, col(Run.id) == col(ReviewTask.run_id))
            .join(Item, col(Item.id) == col(ReviewTask.item_id))
            .where(
                Run.ontology_name == ontology.name,
                ReviewTask.status == "decided",
                col(ReviewTask.final_source).in_(HUMAN_SOURCES),
                col(ReviewTask.is_honeypot).is_(False),
            )
            .order_by(col(ReviewTask.updated_at))
        ).all()
        for item_id, label, payload in rows:
            labels[item_id] = (label, payload)  # a human decision overrides gold
    known = set(ontology.label_names)
    out: list[Demonstration] = []
    for item_id, (label, payload) in sorted(labels.items()):
        if label is None:
            continue
        if ontology.task == TaskType.CLASSIFY and label not in known:
            continue  # the ontology changed since: a stale label would teach a wrong answer
        shown = {f: payload.get(f, "") for f in fields}
        out.append(Demonstration(item_ref(item_id), shown, label, demo_text(fields, payload)))
    return out
