"""Routing: which predictions a human must see, and why.

Reason codes (stored on the task, shown in audit):

- ``model_failed``               the prediction failed (no label)
- ``low_confidence``             confidence below the threshold (per label, else global)
- ``sample_disagreement``        self-consistency samples of the run disagree
- ``run_disagreement``           another run given to ``route`` labelled the item differently
- ``prior_label_disagreement``   the item's existing label (``prior_column``) differs
- ``rule:<name>``                an ontology review rule is violated
- ``audit``                      a seeded random share of otherwise auto-accepted items
- ``honeypot``                   an item with a gold label, mixed in to measure reviewers
                                 (never shown as such to reviewers)

Routing is idempotent per (queue, item): routing again updates the task's reasons,
suggestion and priority (while nobody has decided it yet) instead of adding a task.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from autolabel.engine.confidence import same_boxes
from autolabel.errors import ConfigError, NotFoundError
from autolabel.hashing import canonical_json
from autolabel.ontology.schema import Ontology, ReviewPolicy, TaskType
from autolabel.review.ordering import Candidate, get_ordering, seeded_unit
from autolabel.review.rules import violated_rules
from autolabel.store.database import Database
from autolabel.store.tables import (
    Decision,
    GoldLabel,
    GoldSet,
    Item,
    Prediction,
    ReviewTask,
    Run,
    utcnow,
)


@dataclass
class RoutingReport:
    """What ``route`` did; ``autolabel route`` prints it as a table."""

    run_ids: list[int]
    queue: str
    n_items: int = 0
    auto_accepted: int = 0
    queued: int = 0
    created: int = 0
    updated: int = 0
    honeypots: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    # label -> {"auto": n, "queued": n}; multi-label/spans count each label present.
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)
    # Items whose prediction needs no human (relabel withdraws their open tasks).
    auto_item_ids: list[int] = field(default_factory=list)
    calibrator_version: int | None = None


def effective_policy(
    ontology: Ontology, overrides: Mapping[str, Any] | None = None
) -> ReviewPolicy:
    """The ontology's ``review:`` section with per-call overrides (validated the same way)."""
    data = ontology.review.model_dump()
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        policy = ReviewPolicy.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"invalid review policy override: {exc}") from exc
    unknown = set(policy.per_label) - set(ontology.label_names)
    if unknown:
        raise ConfigError(f"per-label threshold for unknown label(s): {sorted(unknown)}")
    return policy


def threshold_for(policy: ReviewPolicy, task: TaskType, label: Any) -> float:
    """The confidence a label needs to be auto-accepted: the strictest threshold among
    the labels it contains (per-label thresholds override the global one)."""
    names: list[str] = []
    if task == TaskType.CLASSIFY and isinstance(label, str):
        names = [label]
    elif task == TaskType.MULTI_LABEL and isinstance(label, list):
        names = [n for n in label if isinstance(n, str)]
    elif task == TaskType.SPANS and isinstance(label, list):
        names = [s.get("label") for s in label if isinstance(s, dict)]
    elif task == TaskType.BOXES and isinstance(label, dict):
        names = [o.get("label") for o in label.get("objects", []) if isinstance(o, dict)]
    if not names:
        return policy.threshold
    return max(policy.per_label.get(n, policy.threshold) for n in names)


def route(
    db: Database,
    run_ids: list[int],
    *,
    queue: str = "default",
    overrides: Mapping[str, Any] | None = None,
    prior_column: str | None = None,
    gold_set: str | int | None = None,
    order: str | None = None,
    seed: int = 0,
    calibrator: Any = None,
) -> RoutingReport:
    """Route the first run's predictions; further runs only add ``run_disagreement``.

    ``order`` defaults to the ontology's ``review.order``. ``calibrator`` (a
    ``learning.Calibrator``) turns raw confidences into calibrated ones for the
    thresholds, the order and what the TUI shows.
    """
    if not run_ids:
        raise ConfigError("route needs at least one run id")
    report = RoutingReport(run_ids=list(run_ids), queue=queue)
    with db.session() as s:
        runs = [_run(s, rid) for rid in run_ids]
        main = runs[0]
        if any(r.dataset_id != main.dataset_id for r in runs[1:]):
            raise ConfigError(
                "runs compared by route must label the same dataset",
                hint="pass runs made from the same input file",
            )
        ont = Ontology.model_validate(main.ontology)
        policy = effective_policy(ont, overrides)
        order = order or policy.order
        ordering = get_ordering(order)
        rows = s.exec(
            select(Prediction, Item)
            .join(Item, col(Prediction.item_id) == col(Item.id))
            .where(Prediction.run_id == main.id)
            .order_by(col(Item.id))
        ).all()
        others = {r.id: _labels_by_item(s, r.id) for r in runs[1:]}  # type: ignore[misc]
        names = {r.id: (r.name or f"run {r.id}") for r in runs}

        queued: dict[int, tuple[Prediction, Item, list[str], dict[str, Any]]] = {}
        confs: dict[int, float | None] = {}
        for pred, item in rows:
            report.n_items += 1
            alternatives = {
                names[rid]: labels[item.id] for rid, labels in others.items() if item.id in labels
            }
            conf = pred.confidence
            if calibrator is not None and pred.label is not None:
                conf = calibrator.apply(conf, pred.distribution)
            confs[item.id] = conf  # type: ignore[index]
            reasons = _reasons(ont, policy, pred, item, alternatives, prior_column, conf)
            if not reasons and seeded_unit(seed, "audit", item.id) < policy.audit_rate:
                reasons = ["audit"]
            bucket = "queued" if reasons else "auto"
            for lab in _label_names(ont.task, pred.label):
                report.per_label.setdefault(lab, {"auto": 0, "queued": 0})[bucket] += 1
            if reasons:
                queued[item.id] = (pred, item, reasons, alternatives)  # type: ignore[index]
            else:
                report.auto_accepted += 1
                report.auto_item_ids.append(item.id)  # type: ignore[arg-type]

        novelty = _novelty(db, ont, queued) if order == "active" else {}
        priorities = {
            item_id: ordering(
                Candidate(
                    item_id,
                    item.row_number,
                    confs[item_id],
                    tuple(reasons),
                    margin=_margin(pred.distribution),
                    novelty=novelty.get(item_id),
                ),
                seed,
            )
            for item_id, (pred, item, reasons, _) in queued.items()
        }
        honeypots = _pick_honeypots(s, main, policy, gold_set, len(queued), seed)
        if honeypots:
            low, high = min(priorities.values(), default=0.0), max(priorities.values(), default=1.0)
            preds = {p.item_id: (p, it) for p, it in rows}
            for item_id in honeypots:
                # Spread through the queue so position gives nothing away.
                priorities[item_id] = low + (high - low) * seeded_unit(seed, "hp", item_id)
                if item_id in queued:
                    queued[item_id][2].append("honeypot")
                elif item_id in preds:
                    pred, item = preds[item_id]
                    report.auto_accepted -= 1
                    report.auto_item_ids.remove(item_id)
                    queued[item_id] = (pred, item, ["honeypot"], {})
        report.honeypots = len([i for i in honeypots if i in queued])
        required = policy.consensus
        per_item = max(policy.reviewers_per_item, required)
        existing = {
            t.item_id: t
            for t in s.exec(select(ReviewTask).where(ReviewTask.queue == queue)).all()
            if t.item_id in queued
        }
        decided = set(
            s.exec(
                select(Decision.task_id).where(
                    col(Decision.task_id).in_([t.id for t in existing.values()]),
                    col(Decision.undone).is_(False),
                )
            ).all()
        )
        now = utcnow()
        for item_id, (pred, _item, reasons, alternatives) in queued.items():
            report.queued += 1
            for reason in reasons:
                report.by_reason[reason] = report.by_reason.get(reason, 0) + 1
            task = existing.get(item_id)
            if task is None:
                task = ReviewTask(queue=queue, item_id=item_id)
                report.created += 1
            else:
                report.updated += 1
            task.reasons = list(reasons)
            if item_id in honeypots:
                task.is_honeypot = True
                task.gold_label = honeypots[item_id]
            if task.id is None or task.id not in decided:
                # Nobody has worked on it: it follows the latest routing entirely.
                task.run_id = main.id
                task.prediction_id = pred.id
                task.suggestion = pred.label
                task.confidence = confs.get(item_id, pred.confidence)
                task.alternatives = alternatives or None
                task.priority = priorities[item_id]
                task.required_decisions = required
                task.reviewers_per_item = per_item
            task.updated_at = now
            s.add(task)
        s.commit()
    report.by_reason = dict(Counter(report.by_reason).most_common())
    return report


def _margin(distribution: Any) -> float | None:
    if not isinstance(distribution, Mapping) or len(distribution) < 2:
        return None
    try:
        top = sorted((float(v) for v in distribution.values()), reverse=True)
    except (TypeError, ValueError):
        return None
    return top[0] - top[1]


def _novelty(
    db: Database, ont: Ontology, queued: Mapping[int, tuple[Prediction, Item, Any, Any]]
) -> dict[int, float]:
    """Per queued item: 1 - similarity to the nearest human-reviewed item of the ontology."""
    from autolabel.learning.live import novelty_by_item

    return novelty_by_item(db, ont, {i: q[1].payload for i, q in queued.items()})


def _run(s: Session, run_id: int) -> Run:
    run = s.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist", hint="list runs with: autolabel runs")
    return run


def _labels_by_item(s: Session, run_id: int) -> dict[int, Any]:
    return {
        p.item_id: p.label
        for p in s.exec(select(Prediction).where(Prediction.run_id == run_id)).all()
        if p.label is not None
    }


def _reasons(
    ont: Ontology,
    policy: ReviewPolicy,
    pred: Prediction,
    item: Item,
    alternatives: dict[str, Any],
    prior_column: str | None,
    conf: float | None,
) -> list[str]:
    if pred.label is None or pred.error:
        return ["model_failed"]
    reasons: list[str] = []
    if conf is None or conf < threshold_for(policy, ont.task, pred.label):
        reasons.append("low_confidence")
    if policy.route_on_disagreement:
        samples = pred.samples if isinstance(pred.samples, list) else []
        if ont.task == TaskType.BOXES:
            # Boxes never agree to the pixel: the same objects at IoU >= 0.5 is agreement.
            if any(not same_boxes(pred.label, x) for x in samples):
                reasons.append("sample_disagreement")
            if any(not same_boxes(pred.label, x) for x in alternatives.values()):
                reasons.append("run_disagreement")
        else:
            if len({canonical_json(x) for x in samples}) > 1:
                reasons.append("sample_disagreement")
            mine = canonical_json(pred.label)
            if any(canonical_json(label) != mine for label in alternatives.values()):
                reasons.append("run_disagreement")
        if prior_column:
            prior = _prior_label(ont, item.payload.get(prior_column))
            if prior is not None and canonical_json(prior) != mine:
                reasons.append("prior_label_disagreement")
    reasons.extend(violated_rules(ont, list(policy.rules), item.payload, pred.label))
    return reasons


def _prior_label(ont: Ontology, value: Any) -> Any:
    """An existing label from the input, in canonical form where we can (None: absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    folded = {n.casefold(): n for n in ont.label_names}
    if ont.task == TaskType.CLASSIFY:
        text = str(value).strip()
        return folded.get(text.casefold(), text)
    if ont.task == TaskType.MULTI_LABEL:
        parts = value if isinstance(value, list) else re.split(r"[,;|]", str(value))
        chosen = {folded.get(str(p).strip().casefold(), str(p).strip()) for p in parts}
        chosen.discard("")
        known = [n for n in ont.label_names if n in chosen]
        return known + sorted(chosen - set(known))
    return value


def _label_names(task: TaskType, label: Any) -> list[str]:
    if label is None:
        return ["(failed)"]
    if task == TaskType.CLASSIFY:
        return [str(label)]
    if task == TaskType.MULTI_LABEL:
        return [str(x) for x in label] or ["(none)"]
    if task == TaskType.SPANS:
        return sorted({str(x.get("label")) for x in label if isinstance(x, dict)}) or ["(none)"]
    if task == TaskType.BOXES and isinstance(label, dict):
        found = {str(o.get("label")) for o in label.get("objects", []) if isinstance(o, dict)}
        return sorted(found) or ["(none)"]
    return ["(fields)"]


def _pick_honeypots(
    s: Session, run: Run, policy: ReviewPolicy, gold_set: str | int | None, n_queued: int, seed: int
) -> dict[int, Any]:
    """Gold items of the run's dataset to mix in: item id -> gold label."""
    if gold_set is None or policy.honeypot_rate <= 0:
        return {}
    gs = _gold_set(s, gold_set)
    gold = {
        g.item_id: g.label
        for g in s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == gs.id)).all()
    }
    in_run = set(s.exec(select(Prediction.item_id).where(Prediction.run_id == run.id)).all())
    pool = sorted((i for i in gold if i in in_run), key=lambda i: seeded_unit(seed, "pick", i))
    want = max(1, math.ceil(policy.honeypot_rate * max(n_queued, 1)))
    by_item: dict[int, Any] = defaultdict(lambda: None)
    for item_id in pool[:want]:
        by_item[item_id] = gold[item_id]
    return dict(by_item)


def _gold_set(s: Session, ref: str | int) -> GoldSet:
    stmt = select(GoldSet)
    if isinstance(ref, int) or str(ref).isdigit():
        stmt = stmt.where(GoldSet.id == int(ref))
    else:
        stmt = stmt.where(GoldSet.name == ref).order_by(col(GoldSet.version).desc())
    gs = s.exec(stmt).first()
    if gs is None:
        raise NotFoundError(
            f"gold set '{ref}' does not exist", hint="import one with autolabel gold"
        )
    return gs
