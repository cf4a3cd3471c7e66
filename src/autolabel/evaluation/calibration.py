"""How honest the confidences are, and which threshold to auto-accept at.

- ECE uses **equal-mass** bins (each holds about the same number of items), which
  behaves better than equal-width bins when confidences pile up near 1.
- AUROC of confidence for correctness is the Mann–Whitney statistic with average ranks
  for ties (a tie between a right and a wrong item counts 1/2). It is undefined (None)
  when every item is right or every item is wrong.
- A threshold is **chosen on one split and reported on another**: choosing and
  measuring on the same items overstates what auto-accepting will deliver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _arrays(conf: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    if len(conf) != len(correct):
        raise ValueError(f"{len(conf)} confidences but {len(correct)} correctness values")
    c = np.asarray(conf, dtype=float)
    y = np.asarray(correct, dtype=float)
    if c.size and (np.nanmin(c) < 0 or np.nanmax(c) > 1):
        raise ValueError("confidences must lie within [0, 1]")
    return c, y


@dataclass
class ReliabilityBin:
    lo: float  # smallest confidence in the bin
    hi: float  # largest confidence in the bin
    count: int
    mean_confidence: float
    accuracy: float


def reliability_bins(
    conf: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-mass bins sorted by confidence: the data of a reliability diagram."""
    c, y = _arrays(conf, correct)
    if c.size == 0:
        return []
    order = np.argsort(c, kind="stable")
    bins = []
    for idx in np.array_split(order, min(n_bins, c.size)):
        if idx.size == 0:
            continue
        bins.append(
            ReliabilityBin(
                lo=float(c[idx].min()),
                hi=float(c[idx].max()),
                count=int(idx.size),
                mean_confidence=float(c[idx].mean()),
                accuracy=float(y[idx].mean()),
            )
        )
    return bins


def expected_calibration_error(
    conf: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> float:
    """ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b| over equal-mass bins."""
    bins = reliability_bins(conf, correct, n_bins)
    total = sum(b.count for b in bins)
    if not total:
        return 0.0
    return float(sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in bins))


def brier_binary(conf: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean (confidence − correct)²: the Brier score of the chosen label (0 best, 1 worst)."""
    c, y = _arrays(conf, correct)
    return float(np.mean((c - y) ** 2)) if c.size else 0.0


def brier_multiclass(
    distributions: Sequence[dict[str, float]], gold: Sequence[str], labels: Sequence[str]
) -> float:
    """Mean Σ_k (p_k − 1[k = gold])² over the full distribution (0 best, 2 worst).

    Labels missing from a distribution have probability 0.
    """
    if len(distributions) != len(gold):
        raise ValueError("one distribution per gold label is needed")
    if not distributions:
        return 0.0
    names = list(dict.fromkeys([*labels, *gold]))
    total = 0.0
    for dist, g in zip(distributions, gold, strict=True):
        total += sum((float(dist.get(k, 0.0)) - (1.0 if k == g else 0.0)) ** 2 for k in names)
    return total / len(distributions)


def auroc(conf: Sequence[float], correct: Sequence[bool]) -> float | None:
    """P(confidence of a right item > that of a wrong one), ties count 1/2; None if undefined."""
    c, y = _arrays(conf, correct)
    n_pos = int(y.sum())
    n_neg = int(c.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(c)
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=float)
    sorted_vals = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@dataclass
class CoveragePoint:
    threshold: float  # accept items with confidence >= threshold
    coverage: float  # accepted / all items (failed items included in "all")
    accuracy: float  # right / accepted
    n_accepted: int


def coverage_curve(
    conf: Sequence[float], correct: Sequence[bool], n_total: int | None = None
) -> list[CoveragePoint]:
    """Accuracy of the accepted set at each distinct confidence threshold, high to low.

    ``n_total`` (default: len(conf)) is the denominator of coverage, so failed items —
    which have no confidence and are never accepted — can be counted.
    """
    c, y = _arrays(conf, correct)
    total = n_total if n_total is not None else c.size
    if c.size == 0 or total == 0:
        return []
    order = np.argsort(-c, kind="stable")
    cs, ys = c[order], y[order]
    right = np.cumsum(ys)
    points = []
    for k in range(c.size):
        # A threshold keeps every item tied with it, so emit a point at the last of a tie.
        if k + 1 < c.size and cs[k + 1] == cs[k]:
            continue
        n_acc = k + 1
        points.append(CoveragePoint(float(cs[k]), n_acc / total, float(right[k] / n_acc), n_acc))
    return points


@dataclass
class ThresholdChoice:
    threshold: float
    coverage: float
    precision: float
    n_accepted: int
    target_precision: float


def recommend_threshold(
    conf: Sequence[float],
    correct: Sequence[bool],
    target_precision: float,
    *,
    n_total: int | None = None,
    min_accepted: int = 1,
) -> ThresholdChoice | None:
    """The smallest threshold whose accepted set reaches ``target_precision``.

    Accuracy is not monotone in the threshold, so this scans every distinct confidence
    and keeps the one with the most coverage that meets the target. None when no
    threshold reaches it with at least ``min_accepted`` items.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target precision must be in (0, 1]")
    best: CoveragePoint | None = None
    for point in coverage_curve(conf, correct, n_total):
        if point.n_accepted >= min_accepted and point.accuracy >= target_precision - 1e-12:
            best = point  # points run from high to low thresholds: the last hit covers most
    if best is None:
        return None
    return ThresholdChoice(
        best.threshold, best.coverage, best.accuracy, best.n_accepted, target_precision
    )


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class ThresholdReport:
    """What auto-accepting at ``threshold`` does on a split it was not chosen on."""

    threshold: float
    target_precision: float
    chosen_on: str
    reported_on: str
    n_items: int
    n_accepted: int
    coverage: float
    accuracy: float
    ci_low: float
    ci_high: float

    def sentence(self) -> str:
        if self.n_accepted == 0:
            return (
                f"auto-accepting confidence ≥ {self.threshold:.3f} accepts no item of the "
                f"{self.reported_on} split (n={self.n_items})"
            )
        return (
            f"auto-accepting confidence ≥ {self.threshold:.3f} labels {self.coverage:.1%} of "
            f"items at {self.accuracy:.1%} accuracy (95% CI {self.ci_low:.1%}–{self.ci_high:.1%}"
            f", {self.reported_on} split, n={self.n_items}; threshold chosen on the "
            f"{self.chosen_on} split for {self.target_precision:.0%} precision)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sentence": self.sentence()}


def evaluate_threshold(
    threshold: float,
    conf: Sequence[float | None],
    correct: Sequence[bool],
    *,
    target_precision: float,
    chosen_on: str = "calibration",
    reported_on: str = "held-out",
) -> ThresholdReport:
    """Coverage and accuracy (Wilson 95% CI) of accepting ``conf >= threshold``.

    ``conf[i] is None`` (a failed item) is never accepted but counts toward coverage.
    """
    accepted = [
        bool(ok) for c, ok in zip(conf, correct, strict=True) if c is not None and c >= threshold
    ]
    n = len(conf)
    k = len(accepted)
    right = sum(accepted)
    lo, hi = wilson_interval(right, k)
    return ThresholdReport(
        threshold=threshold,
        target_precision=target_precision,
        chosen_on=chosen_on,
        reported_on=reported_on,
        n_items=n,
        n_accepted=k,
        coverage=k / n if n else 0.0,
        accuracy=right / k if k else 0.0,
        ci_low=lo,
        ci_high=hi,
    )


@dataclass
class CalibrationSummary:
    n: int  # items with a confidence
    ece: float
    brier: float
    brier_kind: str  # multiclass | binary
    auroc: float | None
    bins: list[ReliabilityBin]
    curve: list[CoveragePoint]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    conf: Sequence[float],
    correct: Sequence[bool],
    *,
    n_total: int | None = None,
    distributions: Sequence[dict[str, float]] | None = None,
    gold: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    n_bins: int = 10,
) -> CalibrationSummary:
    """ECE, Brier (multi-class when full distributions are given), AUROC, bins and curve."""
    if distributions is not None and gold is not None and labels is not None:
        brier, kind = brier_multiclass(distributions, gold, labels), "multiclass"
    else:
        brier, kind = brier_binary(conf, correct), "binary"
    return CalibrationSummary(
        n=len(conf),
        ece=expected_calibration_error(conf, correct, n_bins),
        brier=brier,
        brier_kind=kind,
        auroc=auroc(conf, correct),
        bins=reliability_bins(conf, correct, n_bins),
        curve=coverage_curve(conf, correct, n_total),
    )
