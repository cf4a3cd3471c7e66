"""``autolabel relabel RUN``: re-label every item no human decided, as a child run, with
the current demonstrations and calibrator; then route again.

- Human decisions are never touched: decided items are not re-labelled, and their
  tasks are never withdrawn or updated.
- Open tasks of items that are now confidently labelled are withdrawn (status
  ``withdrawn``) with an audit row (action ``withdraw``, reviewer ``autolabel``,
  a note naming the run and the confidence); newly doubtful items are queued.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.labeler import Labeler, LabelerOptions
from autolabel.engine.writer import PredictionWriter
from autolabel.errors import NotFoundError
from autolabel.hashing import stable_hash
from autolabel.learning.calibrators import as_calibrator, latest
from autolabel.learning.demonstrations import DemoSelector, build_pool, demo_text
from autolabel.learning.live import default_cache
from autolabel.learning.pool import item_ref, load_demonstrations
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import DemonstrationSpec, Ontology
from autolabel.providers.base import Provider
from autolabel.review.routing import RoutingReport, route
from autolabel.store.database import Database
from autolabel.store.tables import (
    Decision,
    Item,
    Prediction,
    ReviewTask,
    Run,
    RunLineage,
    utcnow,
)

OPEN_STATUSES = ("pending", "skipped")
WITHDRAW_REASON = "now_confident"


@dataclass
class RelabelReport:
    run_id: int
    parent_run_id: int
    n_relabelled: int = 0
    n_kept_human: int = 0
    n_demonstrations: int = 0
    calibrator_version: int | None = None
    withdrawn: list[int] = field(default_factory=list)  # task ids
    routing: RoutingReport | None = None
    model_calls: int = 0
    cache_hits: int = 0


def human_decided_items(db: Database, dataset_id: int) -> set[int]:
    """Items with a live human decision in any queue (they are never re-labelled)."""
    with db.session() as s:
        decided = set(
            s.exec(
                select(ReviewTask.item_id)
                .join(Item, col(Item.id) == col(ReviewTask.item_id))
                .where(Item.dataset_id == dataset_id, ReviewTask.status == "decided")
            ).all()
        )
        decided |= set(
            s.exec(
                select(Decision.item_id)
                .join(Item, col(Item.id) == col(Decision.item_id))
                .where(
                    Item.dataset_id == dataset_id,
                    col(Decision.action).in_(("decide", "adjudicate")),
                    col(Decision.undone).is_(False),
                )
            ).all()
        )
    return decided


def relabel(
    db: Database,
    parent_ref: int,
    provider: Provider,
    cache: ResponseCache | None,
    *,
    queue: str = "default",
    order: str | None = None,
    seed: int = 0,
    k: int | None = None,
    concurrency: int = 4,
    use_calibrator: bool = True,
) -> RelabelReport:
    with db.session() as s:
        parent = s.get(Run, parent_ref)
        if parent is None:
            raise NotFoundError(f"run {parent_ref} does not exist", hint="see: autolabel runs")
        rows = s.exec(
            select(Item.id, Item.payload)
            .join(Prediction, col(Prediction.item_id) == col(Item.id))
            .where(Prediction.run_id == parent.id)
            .order_by(col(Item.id))
        ).all()
    ont = Ontology.model_validate(parent.ontology)
    spec = ont.demonstrations or DemonstrationSpec()
    if k is not None:
        spec = spec.model_copy(update={"k": k})
    decided = human_decided_items(db, parent.dataset_id)
    todo = [(i, p) for i, p in rows if i not in decided]
    demos = load_demonstrations(db, ont.model_copy(update={"demonstrations": spec}))
    fields = ont.input.fields
    emb = default_cache([demo_text(fields, p) for _, p in rows])
    selector = DemoSelector(build_pool(ont.name, demos, emb), emb, k=spec.k)
    record = latest(db, ont.name) if use_calibrator else None
    compiler = PromptCompiler(ont, template=parent.template.removesuffix(".j2"))
    run_id = _child_run(db, parent, compiler.prompt_hash, len(demos), record)
    report = RelabelReport(run_id, int(parent.id), n_demonstrations=len(demos))  # type: ignore[arg-type]
    report.n_kept_human = len(rows) - len(todo)
    report.calibrator_version = record.version if record else None
    params = parent.params or {}
    labeler = Labeler(
        ont,
        compiler,
        provider,
        cache,
        options=LabelerOptions(
            temperature=params.get("temperature", 0.0),
            samples=params.get("samples", 5),
            reasks=params.get("reasks", 2),
            max_tokens=params.get("max_tokens", 512),
            seed=params.get("seed", 0),
            use_cache=cache is not None,
        ),
    )
    writer = PredictionWriter(db, run_id, compiler.prompt_hash)

    async def label_all() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(item_id: int, payload: dict[str, Any]) -> None:
            shown = selector.select(demo_text(fields, payload), exclude=[item_ref(item_id)])
            async with gate:
                out = await labeler.label(item_id, payload, shown)
            report.model_calls += out.model_calls
            report.cache_hits += int(out.cache_hit)
            writer.put(out)

        await asyncio.gather(*(one(i, p) for i, p in todo))

    try:
        asyncio.run(label_all())
    finally:
        writer.close()
    report.n_relabelled = len(todo)
    _finish(db, run_id, len(todo))
    calibrator = as_calibrator(record) if record else None
    if todo:
        report.routing = route(
            db, [run_id], queue=queue, order=order, seed=seed, calibrator=calibrator
        )
        report.withdrawn = _withdraw(db, queue, run_id, report.routing.auto_item_ids, decided)
    return report


def _child_run(db: Database, parent: Run, prompt_hash: str, n_demos: int, record: Any) -> int:
    with db.session() as s:
        run = Run(
            run_key=stable_hash({"parent": parent.run_key, "relabel": str(utcnow())}),
            name=f"relabel of {parent.name or parent.id}",
            dataset_id=parent.dataset_id,
            ontology_name=parent.ontology_name,
            ontology_version=parent.ontology_version,
            ontology_hash=parent.ontology_hash,
            ontology_path=parent.ontology_path,
            ontology=parent.ontology,
            prompt_hash=prompt_hash,
            template=parent.template,
            task=parent.task,
            provider=parent.provider,
            model=parent.model,
            base_url=parent.base_url,
            params={**(parent.params or {}), "parent_run": parent.id},
        )
        s.add(run)
        s.flush()
        s.add(
            RunLineage(
                run_id=run.id,  # type: ignore[arg-type]
                parent_run_id=parent.id,  # type: ignore[arg-type]
                calibrator_id=record.id if record else None,
                n_demonstrations=n_demos,
            )
        )
        s.commit()
        return int(run.id)  # type: ignore[arg-type]


def _finish(db: Database, run_id: int, n: int) -> None:
    with db.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        preds = s.exec(select(Prediction).where(Prediction.run_id == run_id)).all()
        run.status = "completed"
        run.finished_at = utcnow()
        run.n_items = len(preds)
        run.n_labeled = sum(p.error is None for p in preds)
        run.n_failed = run.n_items - run.n_labeled
        run.n_cache_hits = sum(bool(p.cache_hit) for p in preds)
        s.add(run)
        s.commit()


def _withdraw(
    db: Database, queue: str, run_id: int, auto_items: list[int], decided: set[int]
) -> list[int]:
    """Withdraw open, undecided tasks of items the new run labels confidently."""
    if not auto_items:
        return []
    now = utcnow()
    withdrawn: list[int] = []
    with db.session() as s:
        confs = {
            p.item_id: p.confidence
            for p in s.exec(
                select(Prediction).where(
                    Prediction.run_id == run_id, col(Prediction.item_id).in_(auto_items)
                )
            ).all()
        }
        tasks = s.exec(
            select(ReviewTask).where(
                ReviewTask.queue == queue,
                col(ReviewTask.item_id).in_(auto_items),
                col(ReviewTask.status).in_(OPEN_STATUSES),
                col(ReviewTask.is_honeypot).is_(False),
            )
        ).all()
        for task in tasks:
            if task.item_id in decided:
                continue
            live = s.exec(
                select(Decision.id).where(
                    Decision.task_id == task.id, col(Decision.undone).is_(False)
                )
            ).first()
            if live is not None and task.status != "skipped":
                continue  # somebody has acted on it: leave it to the humans
            before = task.reasons
            task.status = "withdrawn"
            task.updated_at = now
            s.add(task)
            s.add(
                Decision(
                    task_id=task.id,  # type: ignore[arg-type]
                    item_id=task.item_id,
                    reviewer="autolabel",
                    action="withdraw",
                    label=None,
                    note=f"relabel run {run_id}: raw confidence "
                    f"{confs.get(task.item_id) or 0:.3f}, now above the threshold",
                    reasons=[WITHDRAW_REASON, *before],
                )
            )
            withdrawn.append(int(task.id))  # type: ignore[arg-type]
        s.commit()
    return withdrawn
