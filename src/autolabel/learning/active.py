"""Active ordering: serve first the items whose human label teaches the most.

Value of reviewing an item = uncertainty × (1 + novelty):

- uncertainty: 1 − margin between the two most probable labels when the label
  distribution is known, else 1 − (calibrated) confidence; failed items first;
- novelty: 1 − cosine similarity to the nearest item a human already reviewed, so
  the demonstration pool covers new regions of the embedding space quickly.

Within a batch the choice is greedy: once an item is picked, its neighbours lose
novelty, so one batch does not spend five reviews on five paraphrases. A seeded
share of the order is random (the audit share), so the queue never starves
confidently-labelled regions entirely. Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from autolabel.review.ordering import seeded_unit


def uncertainty(confidence: float | None, distribution: Any = None) -> float:
    """In [0, 1]; 1 for failed items (no confidence)."""
    if confidence is None:
        return 1.0
    if isinstance(distribution, Mapping) and len(distribution) >= 2:
        top = sorted((float(v) for v in distribution.values()), reverse=True)
        margin = top[0] - top[1]
        # The calibrated confidence scales the margin: a margin is only as sure as the model.
        return float(1.0 - margin * min(1.0, float(confidence) / max(top[0], 1e-9)))
    return float(1.0 - confidence)


def novelty(vectors: np.ndarray, reviewed: np.ndarray) -> np.ndarray:
    """1 − max cosine similarity to any reviewed vector (1 when nothing is reviewed)."""
    if reviewed.size == 0 or vectors.size == 0:
        return np.ones(len(vectors), dtype=np.float32)
    sims = vectors @ reviewed.T
    return np.clip(1.0 - sims.max(axis=1), 0.0, 1.0).astype(np.float32)


def active_order(
    refs: Sequence[str],
    uncertainties: Sequence[float],
    vectors: np.ndarray,
    reviewed: np.ndarray,
    *,
    seed: int = 0,
    audit_share: float = 0.0,
    greedy: int = 256,
    novelty_weight: float = 1.0,
) -> list[int]:
    """Indices of ``refs`` in review order. The first ``greedy`` picks update novelty as
    they go (batch diversity); the rest follow the static score."""
    n = len(refs)
    if n == 0:
        return []
    unc = np.asarray(uncertainties, dtype=np.float32)
    nov = novelty(vectors, reviewed)
    # Ties broken by a seeded hash, never by input order.
    tie = np.array([seeded_unit(seed, "tie", r) for r in refs], dtype=np.float32) * 1e-6
    picked: list[int] = []
    free = np.ones(n, dtype=bool)
    for _ in range(min(greedy, n)):
        score = unc * (1.0 + novelty_weight * nov) + tie
        score[~free] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        free[best] = False
        nov = np.minimum(nov, np.clip(1.0 - vectors @ vectors[best], 0.0, 1.0))
    rest = np.flatnonzero(free)
    rest = rest[np.argsort(-(unc[rest] * (1.0 + novelty_weight * nov[rest]) + tie[rest]))]
    order = picked + [int(i) for i in rest]
    return mix_audit(order, refs, seed=seed, share=audit_share)


def mix_audit(order: list[int], refs: Sequence[str], *, seed: int, share: float) -> list[int]:
    """Move a seeded random share of the order to evenly spread positions."""
    if share <= 0 or len(order) < 2:
        return order
    audit = [i for i in order if seeded_unit(seed, "audit-pick", refs[i]) < share]
    if not audit:
        return order
    audit.sort(key=lambda i: seeded_unit(seed, "audit-order", refs[i]))
    rest = [i for i in order if i not in set(audit)]
    every = max(1, round(1 / share))
    out: list[int] = []
    for pos, i in enumerate(rest):
        if pos % every == every - 1 and audit:
            out.append(audit.pop(0))
        out.append(i)
    return out + audit
