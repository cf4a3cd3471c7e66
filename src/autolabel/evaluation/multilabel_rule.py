"""Fit the ``listed`` multi-label decision rule on labelled dev items.

A ``listed`` answer (see ``ontology.schema.MultiLabelScoring``) is a share per label.
The rule that turns shares into labels has two parts, both chosen here:

- **priors**: each label's mean share over the dev items, raised to a power ``a``. A
  1.5B model leads with a few favourite labels ("neutral", "admiration") whatever the
  item says; dividing by the mean share is a correction that needs no gold labels.
  ``a`` between 0 (no correction) and 1 (the full one) is chosen with the threshold.
- **relative_threshold** ``r``: a label applies when its corrected share is at least
  ``r`` times the top label's (``r = 1``: the likeliest label only).

(a, r) is the pair from a small grid with the best macro-F1 on the dev items. Fit on
one split and report on another: the same items would flatter the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autolabel.errors import EvaluationError
from autolabel.evaluation.metrics import multilabel_metrics

POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)
RELATIVE = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class ListedRule:
    priors: dict[str, float]  # the mean shares raised to ``power``: what the ontology holds
    power: float
    relative_threshold: float
    macro_f1: float  # on the items it was fitted on (optimistic by construction)
    subset_accuracy: float
    n_items: int


def raw_shares(
    distribution: dict[str, float], priors: dict[str, float], labels: Sequence[str]
) -> dict[str, float]:
    """Undo a correction: the model's shares behind a stored corrected distribution."""
    raw = {n: float(distribution.get(n, 0.0)) * priors.get(n, 1.0) for n in labels}
    total = sum(raw.values())
    if not total > 0.0:
        raise EvaluationError("a stored multi-label distribution holds no share")
    return {n: v / total for n, v in raw.items()}


def fit_listed_rule(
    labels: Sequence[str], shares: Sequence[dict[str, float]], golds: Sequence[Sequence[str]]
) -> ListedRule:
    """The (priors, relative threshold) with the best macro-F1 on these items."""
    if not shares:
        raise EvaluationError("no scored items to fit the multi-label rule on")
    if len(shares) != len(golds):
        raise ValueError(f"{len(shares)} scored items but {len(golds)} gold label sets")
    names = list(labels)
    matrix = np.array([[s.get(n, 0.0) for n in names] for s in shares], dtype=float)
    prior = np.maximum(matrix.mean(axis=0), 1e-9)
    gold = [sorted(g) for g in golds]
    best: tuple[float, float, float, float] | None = None
    for a in POWERS:
        corrected = matrix / prior**a
        corrected /= corrected.sum(axis=1, keepdims=True)
        for r in RELATIVE:
            keep = corrected >= r * corrected.max(axis=1, keepdims=True)
            preds = [[n for n, k in zip(names, row, strict=True) if k] for row in keep]
            m = multilabel_metrics(gold, preds, names)  # type: ignore[arg-type]
            # Ties keep the earlier pair: the milder correction, the stricter threshold.
            if best is None or m.macro.f1 > best[0] + 1e-12:
                best = (m.macro.f1, m.subset_accuracy, a, r)
    assert best is not None
    f1, subset, a, r = best
    # Six decimals, as the ontology file holds them; a = 0 is no correction at all.
    priors = (
        {n: max(round(float(p) ** a, 6), 1e-6) for n, p in zip(names, prior, strict=True)}
        if a
        else {}
    )
    return ListedRule(priors, a, r, f1, subset, len(shares))
