"""Agreement in a review queue: between reviewers, with the model, and with honeypots.

Reads live (not undone) human ``decide`` actions, plus ``second_opinion`` rows: the
label of a reviewer whose task was settled or taken while they looked at it (see
``ReviewQueue.decide``). A second opinion counts as that reviewer's rating of the item
(between reviewers only; never for model-vs-human or honeypots). Labels compare as whole canonical
answers (a multi_label *set* is one nominal value; see ``metrics.py``). Adjudications
are excluded: they settle disagreements rather than rate items independently.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlmodel import col, select

from autolabel.review.labels import label_key
from autolabel.review.metrics import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    krippendorff_alpha_nominal,
    percent_agreement,
)
from autolabel.store.database import Database
from autolabel.store.tables import Decision, ReviewTask


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    items: int
    percent: float
    kappa: float


@dataclass
class AgreementReport:
    queue: str | None
    n_items: int = 0  # items with at least one human decision
    n_decisions: int = 0
    n_second_opinions: int = 0  # ratings kept from reviewers who lost the task meanwhile
    pairs: list[PairAgreement] = field(default_factory=list)
    fleiss_kappa: float | None = None
    fleiss_items: int = 0  # items that share the most common rating count (>= 2)
    krippendorff_alpha: float | None = None
    # model suggestion label -> (human decisions, of which equal to the suggestion)
    model_vs_human: dict[str, tuple[int, int]] = field(default_factory=dict)
    # reviewer -> (honeypots decided, correct)
    honeypot_accuracy: dict[str, tuple[int, int]] = field(default_factory=dict)


def agreement_report(db: Database, queue: str | None = None) -> AgreementReport:
    """All agreement numbers for one queue (or every queue)."""
    with db.session() as s:
        stmt = (
            select(Decision, ReviewTask)
            .join(ReviewTask, col(Decision.task_id) == col(ReviewTask.id))
            .where(
                col(Decision.action).in_(("decide", "second_opinion")),
                col(Decision.undone).is_(False),
            )
            .order_by(col(Decision.id))
        )
        if queue is not None:
            stmt = stmt.where(col(ReviewTask.queue) == queue)
        rows = s.exec(stmt).all()
    seconds = [(d, task) for d, task in rows if d.action == "second_opinion"]
    rows = [(d, task) for d, task in rows if d.action == "decide"]
    report = AgreementReport(queue=queue, n_decisions=len(rows), n_second_opinions=len(seconds))
    # task -> reviewer -> label key (a reviewer's latest live decision)
    ratings: dict[int, dict[str, str]] = defaultdict(dict)
    for d, task in seconds:
        ratings[task.id][d.reviewer] = label_key(d.label)  # type: ignore[index]
    for d, task in rows:  # a reviewer's own decision wins over its second opinion
        ratings[task.id][d.reviewer] = label_key(d.label)  # type: ignore[index]
        _model_vs_human(report, task, d.label)
        if task.is_honeypot:
            seen, right = report.honeypot_accuracy.get(d.reviewer, (0, 0))
            ok = label_key(d.label) == label_key(task.gold_label)
            report.honeypot_accuracy[d.reviewer] = (seen + 1, right + int(ok))
    report.n_items = len(ratings)
    reviewers = sorted({r for by in ratings.values() for r in by})
    for a, b in combinations(reviewers, 2):
        both = [(by[a], by[b]) for by in ratings.values() if a in by and b in by]
        if both:
            xs, ys = [x for x, _ in both], [y for _, y in both]
            report.pairs.append(
                PairAgreement(a, b, len(both), percent_agreement(xs, ys), cohen_kappa(xs, ys))
            )
    multi = [list(by.values()) for by in ratings.values() if len(by) >= 2]
    if multi:
        report.krippendorff_alpha = krippendorff_alpha_nominal(
            [[by.get(r) for r in reviewers] for by in ratings.values()]
        )
        # Fleiss needs a constant number of ratings per item: use the most common count.
        sizes = defaultdict(int)
        for row in multi:
            sizes[len(row)] += 1
        size = max(sizes, key=lambda k: (sizes[k], k))
        same = [row for row in multi if len(row) == size]
        report.fleiss_kappa = fleiss_kappa(fleiss_table(same))
        report.fleiss_items = len(same)
    return report


def _model_vs_human(report: AgreementReport, task: ReviewTask, label: Any) -> None:
    if task.suggestion is None:
        return
    name = task.suggestion if isinstance(task.suggestion, str) else label_key(task.suggestion)
    n, same = report.model_vs_human.get(name, (0, 0))
    report.model_vs_human[name] = (
        n + 1,
        same + int(label_key(label) == label_key(task.suggestion)),
    )
