"""``autolabel ontology diff``: what changed between two versions, and what it touches.

A version is identified by the hash runs already record (``Run.ontology_hash``: the
stable hash of the validated ontology), so predictions and the decisions on their
tasks are tied to the version they were made under without a new column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from autolabel.interop.records import label_names_in
from autolabel.ontology.loader import parse_ontology, resolve_ontology_path
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.review.consensus import FINAL_STATUSES
from autolabel.store.ontology_versions import ontology_hash
from autolabel.store.tables import (
    Decision,
    GoldLabel,
    GoldSet,
    Prediction,
    ReviewTask,
    Run,
)


@dataclass(frozen=True)
class LoadedOntology:
    ontology: Ontology
    text: str
    path: Path

    @property
    def hash(self) -> str:
        return ontology_hash(self.ontology)


def load_with_text(name_or_path: str | Path) -> LoadedOntology:
    path = resolve_ontology_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    return LoadedOntology(parse_ontology(text, source=str(path)), text, path)


# -- diff ------------------------------------------------------------------------------------


@dataclass
class OntologyDiff:
    name: str
    old_version: str
    new_version: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # gone with no migration instruction
    renamed: dict[str, str] = field(default_factory=dict)
    merged: dict[str, list[str]] = field(default_factory=dict)  # new: [old, ...]
    split: dict[str, list[str]] = field(default_factory=dict)  # old: [new, ...]
    dropped: list[str] = field(default_factory=list)  # removed by `migrate: remove`
    descriptions: dict[str, tuple[str, str]] = field(default_factory=dict)
    guidelines_changed: bool = False
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def affected_labels(self) -> list[str]:
        """Old labels whose data a migration changes or that disappear."""
        out = list(self.renamed) + [o for olds in self.merged.values() for o in olds]
        out += list(self.split) + self.dropped + self.removed
        return list(dict.fromkeys(out))

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.affected_labels
            or self.descriptions
            or self.guidelines_changed
            or self.settings
        )


def diff_ontologies(old: Ontology, new: Ontology) -> OntologyDiff:
    d = OntologyDiff(old.name, old.version, new.version)
    spec = new.migrate
    old_names, new_names = old.label_names, new.label_names
    if spec is not None:
        d.renamed = {a: b for a, b in spec.rename.items() if a in old_names}
        d.merged = {b: [a for a in olds if a in old_names] for b, olds in spec.merge.items()}
        d.split = {a: list(news) for a, news in spec.split.items() if a in old_names}
        d.dropped = [a for a in spec.remove if a in old_names]
    covered = set(d.renamed) | {a for olds in d.merged.values() for a in olds}
    covered |= set(d.split) | set(d.dropped)
    # A split or merge may keep its old name among the new labels; that is not removal.
    d.removed = [a for a in old_names if a not in new_names and a not in covered]
    targets = set(d.renamed.values()) | set(d.merged) | {n for ns in d.split.values() for n in ns}
    d.added = [b for b in new_names if b not in old_names and b not in targets]
    old_desc = {lab.name: lab.description for lab in old.labels}
    for lab in new.labels:
        before = old_desc.get(lab.name)
        if before is not None and before != lab.description:
            d.descriptions[lab.name] = (before, lab.description)
    d.guidelines_changed = old.guidelines != new.guidelines
    for key in ("task", "description", "input", "fields", "examples", "review"):
        a = old.model_dump(mode="json")[key]
        b = new.model_dump(mode="json")[key]
        if a != b:
            d.settings[key] = (_short(a), _short(b))
    if old.name != new.name:
        d.settings["name"] = (old.name, new.name)
    return d


def _short(value: Any) -> Any:
    if isinstance(value, list) and len(value) > 3:
        return f"{len(value)} entries"
    return value


# -- what a change touches in the database ----------------------------------------------------


@dataclass
class LabelImpact:
    predictions: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    open_tasks: Counter[str] = field(default_factory=Counter)

    def total(self, label: str) -> int:
        return sum(c[label] for c in (self.predictions, self.decisions, self.gold, self.open_tasks))


def runs_of(s: Session, name: str) -> list[Run]:
    return list(s.exec(select(Run).where(col(Run.ontology_name) == name).order_by(col(Run.id))))


def latest_gold_sets(s: Session, name: str) -> list[GoldSet]:
    """The newest version of each gold set made for ontology ``name``."""
    newest: dict[str, GoldSet] = {}
    for gs in s.exec(
        select(GoldSet).where(col(GoldSet.ontology_name) == name).order_by(col(GoldSet.version))
    ):
        newest[gs.name] = gs
    return list(newest.values())


def label_impact(s: Session, ontology: Ontology) -> LabelImpact:
    """Per label: predictions, live human decisions, gold labels and open review tasks."""
    task_type = ontology.task
    impact = LabelImpact()
    run_ids = [r.id for r in runs_of(s, ontology.name)]

    def count(counter: Counter[str], label: Any, kind: TaskType = task_type) -> None:
        for name in set(label_names_in(kind, label)):
            counter[name] += 1

    if run_ids:
        for label in s.exec(select(Prediction.label).where(col(Prediction.run_id).in_(run_ids))):
            count(impact.predictions, label)
        tasks = s.exec(select(ReviewTask).where(col(ReviewTask.run_id).in_(run_ids))).all()
        for task in tasks:
            if task.status not in FINAL_STATUSES:
                count(impact.open_tasks, task.suggestion)
        # A join, not an IN list of task ids: large queues exceed parameter limits.
        for label in s.exec(
            select(Decision.label)
            .join(ReviewTask, col(ReviewTask.id) == col(Decision.task_id))
            .where(
                col(ReviewTask.run_id).in_(run_ids),
                col(Decision.undone).is_(False),
                col(Decision.action).in_(("decide", "adjudicate")),
            )
        ):
            count(impact.decisions, label)
    gold_ids = [g.id for g in latest_gold_sets(s, ontology.name)]
    if gold_ids:
        for label in s.exec(
            select(GoldLabel.label).where(col(GoldLabel.gold_set_id).in_(gold_ids))
        ):
            count(impact.gold, label)
    return impact
