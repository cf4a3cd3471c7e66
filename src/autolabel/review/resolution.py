"""The final label of each item of a run, for export.

Precedence: an adjudicator's decision overrides everything; then human consensus
(``required_decisions`` agreeing); then a single human's decision; then the model's
prediction. Human decisions count from every review task on the item whose run
used the same ontology (any queue), so re-labelling with another model keeps them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from autolabel.errors import NotFoundError
from autolabel.review.consensus import HUMAN_ACTIONS, LiveAction, derive_state
from autolabel.review.labels import label_key
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Prediction, ReviewTask, Run

_RANK = {"adjudicator": 3, "consensus": 2, "human": 1}


@dataclass(frozen=True)
class FinalLabel:
    item_id: int
    label: Any  # canonical; None when the model failed and nobody reviewed it
    source: str  # model | human | consensus | adjudicator
    confidence: float | None  # model: its confidence; humans: share agreeing; adjudicator: 1
    reviewer_count: int
    # final | auto_accepted | pending_review (routed, not settled) | needs_adjudication | failed
    status: str


def resolve_final_labels(db: Database, run_id: int) -> dict[int, FinalLabel]:
    """Final label per item id of the run (see module docstring for precedence)."""
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        preds = {
            p.item_id: p for p in s.exec(select(Prediction).where(Prediction.run_id == run_id))
        }
        tasks = s.exec(
            select(ReviewTask)
            .join(Run, col(ReviewTask.run_id) == col(Run.id))
            .where(
                col(Run.ontology_name) == run.ontology_name,
                col(ReviewTask.item_id).in_(list(preds)),
            )
        ).all()
        actions: dict[int, list[Decision]] = defaultdict(list)
        for d in s.exec(
            select(Decision)
            .where(
                col(Decision.task_id).in_([t.id for t in tasks]),
                col(Decision.undone).is_(False),
                col(Decision.action).in_(HUMAN_ACTIONS),
            )
            .order_by(col(Decision.id))
        ):
            actions[d.task_id].append(d)
    by_item: dict[int, list[ReviewTask]] = defaultdict(list)
    for t in tasks:
        by_item[t.item_id].append(t)
    out: dict[int, FinalLabel] = {}
    for item_id, pred in preds.items():
        best: FinalLabel | None = None
        for task in by_item.get(item_id, []):
            candidate = _from_task(task, actions.get(task.id or -1, []))  # type: ignore[arg-type]
            if candidate is not None and (best is None or _better(candidate, best)):
                best = candidate
        if best is None:
            failed = pred.label is None
            status = (
                "failed"
                if failed
                else ("pending_review" if by_item.get(item_id) else "auto_accepted")
            )
            best = FinalLabel(item_id, pred.label, "model", pred.confidence, 0, status)
        out[item_id] = best
    return out


def _from_task(task: ReviewTask, decisions: list[Decision]) -> FinalLabel | None:
    live = [LiveAction(d.reviewer, d.action, d.label) for d in decisions]
    state = derive_state(
        live,
        required=task.required_decisions,
        reviewers_per_item=task.reviewers_per_item,
        live_claims=0,
    )
    if state.final_source == "adjudicator":
        return FinalLabel(
            task.item_id, state.final_label, "adjudicator", 1.0, state.reviewers, "final"
        )
    votes = [a.label for a in live if a.action == "decide"]
    if not votes:
        return None
    counts = Counter(label_key(v) for v in votes)
    top = max(counts.values())
    winner = next(v for v in votes if counts[label_key(v)] == top)
    share = top / len(votes)
    if state.final_source is not None:
        return FinalLabel(
            task.item_id, state.final_label, state.final_source, share, state.reviewers, "final"
        )
    status = "needs_adjudication" if state.status == "adjudication" else "pending_review"
    # Not settled yet: the humans' plurality still beats the model.
    return FinalLabel(task.item_id, winner, "human", share, state.reviewers, status)


def _better(a: FinalLabel, b: FinalLabel) -> bool:
    key_a = (a.status == "final", _RANK.get(a.source, 0), a.reviewer_count)
    key_b = (b.status == "final", _RANK.get(b.source, 0), b.reviewer_count)
    return key_a > key_b
