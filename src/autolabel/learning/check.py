"""``autolabel check``: label the file with the model, then rank the given labels most
likely wrong (cleanlab), optionally queueing suspects for review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.errors import ConfigError
from autolabel.learning.data import read_labelled
from autolabel.learning.label_errors import SUSPECT_REASON, Suspect, find_suspects
from autolabel.learning.simulate import SimItem
from autolabel.ontology.loader import load_ontology
from autolabel.ontology.schema import TaskType
from autolabel.settings import Settings
from autolabel.store.database import Database
from autolabel.store.tables import Item, Prediction, ReviewTask, utcnow


@dataclass
class CheckResult:
    run_id: int
    n: int
    refs: list[str] = field(default_factory=list)  # external id per input row
    suspects: list[Suspect] = field(default_factory=list)
    queued: int = 0


def check_labels(
    settings: Settings,
    ontology_path: Path,
    data: Path,
    label_column: str,
    *,
    queue: str | None = None,
    limit: int | None = None,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    db: Database | None = None,
) -> CheckResult:
    from autolabel.providers.factory import create_provider

    ont = load_ontology(ontology_path)
    if ont.task != TaskType.CLASSIFY:
        raise ConfigError(
            f"check works on classify ontologies; '{ont.name}' is {ont.task.value}",
            hint="label-error detection needs one label per item",
        )
    rows = read_labelled(data, ont, label_column, limit=limit)
    db = db or Database(settings.database_url)
    job = LabelJob(
        ontology=ont,
        ontology_path=str(ontology_path),
        data=data,
        provider=create_provider(
            settings, provider=provider, model=model, base_url=base_url, ontology=ont
        ),
        db=db,
        cache=ResponseCache(settings.cache_dir),
        limit=limit,
        concurrency=settings.concurrency,
        progress=False,
    )
    summary = run_job(job)
    return check_run(db, summary.run_id, rows, ont.label_names, queue=queue)


def check_run(
    db: Database,
    run_id: int,
    rows: Sequence[SimItem],
    label_names: Sequence[str],
    *,
    queue: str | None = None,
) -> CheckResult:
    """Suspects among ``rows`` (SimItems with the given label) from run ``run_id``."""
    with db.session() as s:
        preds = {
            ext: (item_id, pred_id, dist)
            for ext, item_id, pred_id, dist in s.exec(
                select(Item.external_id, Item.id, Prediction.id, Prediction.distribution)
                .join(Prediction, col(Prediction.item_id) == col(Item.id))
                .where(Prediction.run_id == run_id)
            ).all()
        }
    refs = [r.ref for r in rows]
    dists = [preds.get(r.ref, (None, None, None))[2] for r in rows]
    suspects = find_suspects([r.gold for r in rows], dists, label_names)
    result = CheckResult(run_id, len(rows), refs, suspects)
    if queue:
        result.queued = _queue(db, queue, run_id, suspects, rows, preds)
    return result


def _queue(
    db: Database,
    queue: str,
    run_id: int,
    suspects: Sequence[Suspect],
    rows: Sequence[SimItem],
    preds: dict[str, tuple[int, int, Any]],
) -> int:
    now = utcnow()
    n = 0
    with db.session() as s:
        for s_ in suspects:
            item_id, pred_id, _ = preds.get(rows[s_.index].ref, (None, None, None))
            if item_id is None:
                continue
            task = s.exec(
                select(ReviewTask).where(ReviewTask.queue == queue, ReviewTask.item_id == item_id)
            ).first()
            if task is None:
                task = ReviewTask(queue=queue, item_id=item_id)
            elif task.status == "decided":
                continue  # a human already settled it: never reopened by a check
            reasons = list(task.reasons or [])
            if SUSPECT_REASON not in reasons:
                reasons.append(SUSPECT_REASON)
            task.reasons = reasons
            task.run_id = run_id
            task.prediction_id = pred_id
            task.suggestion = s_.given  # the label under suspicion, as the reviewer sees it
            task.alternatives = {"model": s_.suggested}
            task.confidence = s_.quality
            task.priority = s_.quality  # likeliest errors first
            task.updated_at = now
            s.add(task)
            n += 1
        s.commit()
    return n
