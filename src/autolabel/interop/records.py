"""The one intermediate shape every format reads and writes, and the store side of it.

Exporters turn a run into :class:`Record` s and write them in their format; importers
read their format into records (validated against the ontology, every problem named by
file and record) and hand them to :func:`store_as_gold` or :func:`store_as_decisions`,
which write everything in one transaction or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from autolabel.errors import InputError
from autolabel.evaluation.gold import GoldRow, store_gold
from autolabel.hashing import stable_hash
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.review.queue import task_state
from autolabel.review.transactions import write_session
from autolabel.store.database import Database
from autolabel.store.lookup import resolve_run
from autolabel.store.tables import (
    Decision,
    GoldSet,
    Item,
    Prediction,
    ReviewTask,
    Run,
    utcnow,
)

MAX_REPORTED = 20
LabelChoice = Literal["model", "final"]


@dataclass(frozen=True)
class Record:
    """One labeled item, independent of any file format.

    ``label`` is in the canonical form of ``ontology/answers.py``; ``source`` says who
    gave it (model | human | consensus | adjudicator | gold | import).
    """

    external_id: str
    inputs: dict[str, Any]  # the ontology's input fields
    label: Any
    confidence: float | None = None
    source: str = "model"
    model_version: str | None = None
    distribution: Any = None
    annotator: str | None = None
    item_id: int | None = None
    where: str = ""  # "file.json record 3", for error messages

    def text(self, ontology: Ontology) -> str:
        fields = ontology.input.fields
        return str(self.inputs.get(fields[0], "")) if fields else ""


def record_inputs(ontology: Ontology, payload: dict[str, Any]) -> dict[str, Any]:
    """The input fields of an item; for image input also the image column as given and
    the image reference (``__image__``: path, sha256, width, height)."""
    inputs = {f: payload.get(f) for f in ontology.input.fields}
    if ontology.input.image is not None:
        from autolabel.images import IMAGE_KEY

        inputs[ontology.input.image] = payload.get(ontology.input.image)
        inputs[IMAGE_KEY] = payload.get(IMAGE_KEY)
    return inputs


def run_ontology(run: Run) -> Ontology:
    return Ontology.model_validate(run.ontology)


def model_version(run: Run) -> str:
    """Label Studio's ``model_version``: the model and the prompt it was asked with."""
    return f"{run.model}@{run.prompt_hash[:12]}"


def load_run(db: Database, run_ref: str | int) -> Run:
    with db.session() as s:
        return resolve_run(s, run_ref)


def run_records(db: Database, run: Run, *, labels: LabelChoice = "model") -> list[Record]:
    """The run's items as records: the model's prediction, or the final label (reviewed
    items take the human label; see ``review/resolution.py``). Failed items are left out."""
    from autolabel.review.resolution import resolve_final_labels

    ont = run_ontology(run)
    finals = resolve_final_labels(db, int(run.id)) if labels == "final" else {}  # type: ignore[arg-type]
    version = model_version(run)
    out: list[Record] = []
    stmt = (
        select(Item, Prediction)
        .join(Prediction, col(Prediction.item_id) == col(Item.id))
        .where(col(Prediction.run_id) == run.id)
        .order_by(col(Item.id))
    )
    with db.session() as s:
        for item, pred in s.exec(stmt):
            inputs = record_inputs(ont, item.payload)
            label, confidence, source = pred.label, pred.confidence, "model"
            final = finals.get(int(item.id))  # type: ignore[arg-type]
            if final is not None and final.source != "model":
                label, confidence, source = final.label, final.confidence, final.source
            if label is None:
                continue
            out.append(
                Record(
                    external_id=item.external_id,
                    inputs=inputs,
                    label=label,
                    confidence=confidence,
                    source=source,
                    model_version=version,
                    distribution=pred.distribution if source == "model" else None,
                    item_id=item.id,
                )
            )
    return out


def label_names_in(task: TaskType, label: Any) -> list[str]:
    """The label names a canonical label uses (empty for fields tasks)."""
    if label is None:
        return []
    if task == TaskType.CLASSIFY:
        return [label]
    if task == TaskType.MULTI_LABEL:
        return list(label)
    if task == TaskType.SPANS:
        return [s["label"] for s in label if isinstance(s, dict)]
    if task == TaskType.BOXES and isinstance(label, dict):
        return [o["label"] for o in label.get("objects", []) if isinstance(o, dict)]
    return []


def raise_problems(source: str, problems: list[str], hint: str) -> None:
    """One error listing every problem (up to 20), so a user fixes a file in one go."""
    if not problems:
        return
    shown = problems[:MAX_REPORTED]
    more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise InputError(
        f"{source}: {len(problems)} problem(s), nothing was imported:\n  "
        + "\n  ".join(shown)
        + more,
        hint=hint,
    )


# -- storing imported records -------------------------------------------------------------


def store_as_gold(
    db: Database,
    ontology: Ontology,
    records: list[Record],
    *,
    name: str,
    dataset: str,
    source: str,
) -> tuple[GoldSet, int]:
    """A new version of gold set ``name`` (items found or created in ``dataset``)."""
    rows = []
    for i, rec in enumerate(records, start=1):
        shown = {f: str(rec.inputs.get(f, "")) for f in ontology.input.fields}
        image = rec.inputs.get("__image__")
        if isinstance(image, dict) and image.get("sha256"):
            shown["__image__"] = str(image["sha256"])  # as RowValidator hashes image items
        rows.append(
            GoldRow(i, rec.external_id, stable_hash(shown)[:32], dict(rec.inputs), rec.label)
        )
    gold = store_gold(db, ontology, rows, name=name, dataset=dataset, source=source)
    return gold, len({r.external_id for r in records})


@dataclass(frozen=True)
class DecisionImport:
    queue: str
    run_id: int
    added: int
    unchanged: int  # the same reviewer had already given the same label


def store_as_decisions(
    db: Database,
    records: list[Record],
    *,
    run_ref: str | int,
    queue: str,
    reviewer: str,
    source: str,
) -> DecisionImport:
    """Record each label as a human ``decide`` on the run's item in ``queue``.

    Items are matched by external id in the run's dataset; a record whose item is not
    there is an error (nothing is written). The reviewer is the record's annotator,
    else ``reviewer``.
    """
    with write_session(db) as s:
        run = resolve_run(s, run_ref)
        wanted = {r.external_id for r in records}
        # The dataset's items, filtered here: an IN list of every id exceeds parameter limits.
        items = {
            i.external_id: i
            for i in s.exec(select(Item).where(col(Item.dataset_id) == run.dataset_id))
            if i.external_id in wanted
        }
        missing = [
            f"{r.where}: no item '{r.external_id}' in run {run.id}'s dataset"
            for r in records
            if r.external_id not in items
        ]
        raise_problems(source, missing, "import into the run the tasks were exported from")
        preds = {
            p.item_id: p for p in s.exec(select(Prediction).where(col(Prediction.run_id) == run.id))
        }
        now = utcnow()
        added = unchanged = 0
        for rec in records:
            item = items[rec.external_id]
            task = _task_for(s, queue, item, run, preds.get(int(item.id)), now)  # type: ignore[arg-type]
            who = rec.annotator or reviewer
            mine = s.exec(
                select(Decision).where(
                    col(Decision.task_id) == task.id,
                    col(Decision.reviewer) == who,
                    col(Decision.action) == "decide",
                    col(Decision.undone).is_(False),
                )
            ).first()
            if mine is not None and mine.label == rec.label:
                unchanged += 1
                continue
            if mine is not None:  # a changed answer replaces the reviewer's earlier one
                mine.undone = True
                s.add(mine)
            s.add(
                Decision(
                    task_id=task.id,  # type: ignore[arg-type]
                    item_id=task.item_id,
                    reviewer=who,
                    action="decide",
                    label=rec.label,
                    label_before=task.final_label
                    if task.final_label is not None
                    else task.suggestion,
                    note=f"imported from {source}",
                    reasons=list(task.reasons),
                    undoes_id=mine.id if mine is not None else None,
                    created_at=now,
                )
            )
            s.flush()
            refresh_task(s, task, now)
            added += 1
        return DecisionImport(queue, int(run.id), added, unchanged)  # type: ignore[arg-type]


def _task_for(
    s: Session, queue: str, item: Item, run: Run, pred: Prediction | None, now: datetime
) -> ReviewTask:
    task = s.exec(
        select(ReviewTask).where(col(ReviewTask.queue) == queue, col(ReviewTask.item_id) == item.id)
    ).first()
    if task is not None:
        return task
    task = ReviewTask(
        queue=queue,
        item_id=int(item.id),  # type: ignore[arg-type]
        run_id=run.id,
        prediction_id=pred.id if pred else None,
        reasons=["imported"],
        suggestion=pred.label if pred else None,
        confidence=pred.confidence if pred else None,
        created_at=now,
        updated_at=now,
    )
    s.add(task)
    s.flush()
    return task


def refresh_task(s: Session, task: ReviewTask, now: datetime) -> None:
    """Write the status and final label derived from the task's live decisions."""
    state = task_state(s, task, now)
    task.status = state.status
    task.final_label = state.final_label
    task.final_source = state.final_source
    task.updated_at = now
    s.add(task)
