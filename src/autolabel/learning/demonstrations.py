"""Choosing few-shot demonstrations from a pool of human-labelled items.

Pure functions over arrays: the live pipeline, ``relabel`` and ``simulate`` all use
:class:`DemoSelector`. Selection is max-marginal-relevance (MMR) over the nearest
candidates with a label-diversity penalty: the first demonstrations are the most
similar items, later ones trade similarity for labels and phrasings not yet shown
(a confusable neighbour label teaches more than a fourth copy of the same one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autolabel.learning.embeddings import EmbeddingCache

# Candidates considered by MMR: the nearest few dozen are enough and keep it fast.
CANDIDATES_PER_DEMO = 6
MIN_CANDIDATES = 48
# Two-stage search: a random projection to COARSE_DIM finds SHORTLIST candidates, exact
# similarity re-ranks them. Measured (bench/demonstrations.py, 2 shared cores): one
# exact 10,000 × 2,048 float32 product is 60 ms under load (memory-bound), the
# 10,000 × 128 projection a few ms; the shortlist keeps the exact top-48 in practice.
COARSE_DIM = 128
SHORTLIST = 400


@dataclass(frozen=True)
class Demonstration:
    """One labelled example: ``ref`` names where it came from (e.g. ``item:42``)."""

    ref: str
    input: dict[str, str]
    output: Any
    text: str = ""  # the text embedded for similarity (the shown fields joined)


@dataclass
class DemoPool:
    """A pool of demonstrations of ONE ontology with their embedding matrix."""

    ontology: str
    demos: list[Demonstration] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    coarse: np.ndarray | None = None  # matrix @ projection, for big pools
    projection: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.demos)


def demo_text(fields: Sequence[str], payload: dict[str, Any]) -> str:
    return "\n".join(str(payload.get(f, "") or "") for f in fields)


def build_pool(ontology: str, demos: Sequence[Demonstration], cache: EmbeddingCache) -> DemoPool:
    """Embed the pool once (cached per text); later selections are a matrix product."""
    unique: dict[str, Demonstration] = {}
    for d in demos:
        unique[d.ref] = d  # the latest label for a ref wins (a re-decided item)
    ordered = sorted(unique.values(), key=lambda d: d.ref)
    label_ids: dict[str, int] = {}
    labels = np.array(
        [label_ids.setdefault(_label_key(d.output), len(label_ids)) for d in ordered],
        dtype=np.int64,
    )
    matrix = (
        cache.embed([d.text for d in ordered]) if ordered else np.zeros((0, 1), dtype=np.float32)
    )
    pool = DemoPool(ontology, ordered, matrix, labels)
    if len(ordered) > SHORTLIST and matrix.shape[1] > COARSE_DIM:
        rng = np.random.default_rng(0)  # fixed: the same pool always gives the same choice
        proj = rng.standard_normal((matrix.shape[1], COARSE_DIM)).astype(np.float32)
        pool.projection = proj / np.sqrt(COARSE_DIM)
        pool.coarse = np.ascontiguousarray(matrix @ pool.projection)
    return pool


def _label_key(output: Any) -> str:
    return output if isinstance(output, str) else repr(output)


class DemoSelector:
    """Selects k demonstrations for a query text from a pool (MMR + label diversity)."""

    def __init__(
        self,
        pool: DemoPool,
        cache: EmbeddingCache,
        *,
        k: int = 8,
        diversity: float = 0.3,
        label_penalty: float = 0.15,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.k = k
        self.diversity = diversity
        self.label_penalty = label_penalty
        self._text_index: dict[str, list[int]] = {}
        self._ref_index = {d.ref: i for i, d in enumerate(pool.demos)}
        for i, d in enumerate(pool.demos):
            self._text_index.setdefault(d.text, []).append(i)

    def select(
        self, text: str, *, exclude: Sequence[str] = (), vector: np.ndarray | None = None
    ) -> list[Demonstration]:
        """The k demonstrations for ``text``; never one whose ref is in ``exclude`` nor one
        with the very same text (an item never demonstrates itself, even as a duplicate)."""
        pool = self.pool
        if len(pool) == 0 or self.k <= 0:
            return []
        q = self.cache.embed([text])[0] if vector is None else vector
        sims = pool.matrix @ q
        banned = [self._ref_index[r] for r in exclude if r in self._ref_index]
        banned += self._text_index.get(text, [])
        if banned:
            sims = sims.copy()
            sims[banned] = -np.inf
        n_cand = min(len(pool), max(MIN_CANDIDATES, CANDIDATES_PER_DEMO * self.k))
        cand = (
            np.argpartition(-sims, n_cand - 1)[:n_cand]
            if n_cand < len(pool)
            else np.arange(len(pool))
        )
        cand = cand[np.isfinite(sims[cand])]
        if cand.size == 0:
            return []
        cand = cand[np.argsort(-sims[cand], kind="stable")]
        return [pool.demos[i] for i in self._mmr(cand, sims[cand])]

    def _mmr(self, cand: np.ndarray, rel: np.ndarray) -> list[int]:
        vecs = self.pool.matrix[cand]
        labels = self.pool.labels[cand]
        chosen: list[int] = []
        max_sim = np.zeros(cand.size, dtype=np.float32)
        label_count: dict[int, int] = {}
        available = np.ones(cand.size, dtype=bool)
        lam = 1.0 - self.diversity
        for _ in range(min(self.k, cand.size)):
            penalty = np.array([label_count.get(int(lab), 0) for lab in labels], np.float32)
            score = lam * rel - self.diversity * max_sim - self.label_penalty * penalty
            score[~available] = -np.inf
            best = int(np.argmax(score))
            chosen.append(best)
            available[best] = False
            label_count[int(labels[best])] = label_count.get(int(labels[best]), 0) + 1
            max_sim = np.maximum(max_sim, vecs @ vecs[best])
        # Shown most similar last: small models copy the nearest example most.
        return [int(cand[i]) for i in sorted(chosen, key=lambda i: rel[i])]
