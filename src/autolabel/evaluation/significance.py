"""Uncertainty of metrics and paired comparisons between two runs on the same items.

Bootstraps are seeded (``seed``), so a report shows the same interval every time.
McNemar's test compares accuracies on the discordant pairs only: the exact binomial
version is used below 25 discordant pairs, the continuity-corrected χ² above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

EXACT_BELOW = 25


def _codes(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for labels; a failed prediction (None) gets its own code."""
    names: dict[Any, int] = {}
    for value in [*gold, *pred]:
        if value is not None and value not in names:
            names[value] = len(names)
    failed = len(names)
    g = np.array([names[v] for v in gold], dtype=np.int64)
    p = np.array([failed if v is None else names[v] for v in pred], dtype=np.int64)
    return g, p, failed


def _macro_f1_codes(g: np.ndarray, p: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over labels present in g or p (same convention as metrics.py)."""
    size = n_labels + 1
    tp = np.bincount(g[g == p], minlength=size)[:n_labels]
    n_gold = np.bincount(g, minlength=size)[:n_labels]
    n_pred = np.bincount(p, minlength=size)[:n_labels]
    present = (n_gold + n_pred) > 0
    if not present.any():
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(n_gold + n_pred > 0, 2 * tp / (n_gold + n_pred), 0.0)
    return float(f1[present].mean())


def macro_f1(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Macro-F1 of single-label predictions (None = failed = wrong)."""
    g, p, k = _codes(gold, pred)
    return _macro_f1_codes(g, p, k)


@dataclass
class Interval:
    estimate: float
    low: float
    high: float
    n_resamples: int

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def bootstrap_accuracy(
    correct: Sequence[bool], *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> Interval:
    """Percentile bootstrap CI of accuracy."""
    y = np.asarray(correct, dtype=float)
    if y.size == 0:
        return Interval(0.0, 0.0, 0.0, 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_resamples, y.size))
    stats = y[idx].mean(axis=1)
    return Interval(float(y.mean()), *_percentiles(stats, alpha), n_resamples)


def bootstrap_macro_f1(
    gold: Sequence[Any],
    pred: Sequence[Any],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """Percentile bootstrap CI of single-label macro-F1."""
    g, p, k = _codes(gold, pred)
    if g.size == 0:
        return Interval(0.0, 0.0, 0.0, 0)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, g.size, size=g.size)
        stats[b] = _macro_f1_codes(g[idx], p[idx], k)
    return Interval(_macro_f1_codes(g, p, k), *_percentiles(stats, alpha), n_resamples)


@dataclass
class McNemarResult:
    n: int
    a_only: int  # A right, B wrong
    b_only: int  # B right, A wrong
    statistic: float | None  # χ² with continuity correction (None for the exact test)
    p_value: float
    method: str  # exact | chi2_cc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _binom_two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p-value for k successes in n trials at p = 1/2."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar(
    correct_a: Sequence[bool], correct_b: Sequence[bool], *, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test of equal accuracy for paired right/wrong outcomes.

    ``exact=None`` picks the exact binomial test when there are fewer than 25
    discordant pairs and the continuity-corrected χ² (1 dof) otherwise.
    """
    if len(correct_a) != len(correct_b):
        raise ValueError("the two runs must be scored on the same items")
    b = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if y and not x)
    use_exact = (b + c) < EXACT_BELOW if exact is None else exact
    if use_exact:
        return McNemarResult(len(correct_a), b, c, None, _binom_two_sided(b, b + c), "exact")
    if b + c == 0:
        return McNemarResult(len(correct_a), b, c, 0.0, 1.0, "chi2_cc")
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    p = math.erfc(math.sqrt(stat / 2))  # survival function of χ² with 1 dof
    return McNemarResult(len(correct_a), b, c, stat, p, "chi2_cc")


@dataclass
class PairedBootstrapResult:
    metric: str
    a: float
    b: float
    difference: float  # a − b
    low: float
    high: float
    p_value: float
    n_resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_bootstrap_f1(
    gold: Sequence[Any],
    pred_a: Sequence[Any],
    pred_b: Sequence[Any],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedBootstrapResult:
    """Paired bootstrap of macro-F1(A) − macro-F1(B): both runs see the same resampled items.

    The two-sided p-value is 2 · min(P(Δ* ≤ 0), P(Δ* ≥ 0)) over the resamples, each
    estimated as (count + 1) / (resamples + 1) so a finite bootstrap never claims p = 0.
    """
    if not (len(gold) == len(pred_a) == len(pred_b)):
        raise ValueError("gold and both runs must cover the same items")
    names: dict[Any, int] = {}
    for value in [*gold, *pred_a, *pred_b]:
        if value is not None and value not in names:
            names[value] = len(names)
    k = len(names)
    g = np.array([names[v] for v in gold], dtype=np.int64)
    pa = np.array([k if v is None else names[v] for v in pred_a], dtype=np.int64)
    pb = np.array([k if v is None else names[v] for v in pred_b], dtype=np.int64)
    fa, fb = _macro_f1_codes(g, pa, k), _macro_f1_codes(g, pb, k)
    if g.size == 0:
        return PairedBootstrapResult("macro_f1", fa, fb, 0.0, 0.0, 0.0, 1.0, 0)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, g.size, size=g.size)
        diffs[r] = _macro_f1_codes(g[idx], pa[idx], k) - _macro_f1_codes(g[idx], pb[idx], k)
    below = (int((diffs <= 0).sum()) + 1) / (n_resamples + 1)
    above = (int((diffs >= 0).sum()) + 1) / (n_resamples + 1)
    p = min(1.0, 2 * min(below, above))
    low, high = _percentiles(diffs, alpha)
    return PairedBootstrapResult("macro_f1", fa, fb, fa - fb, low, high, p, n_resamples)
