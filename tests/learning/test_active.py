"""Active ordering: uncertain and novel first, deterministic with a seed."""

from __future__ import annotations

import numpy as np

from autolabel.learning.active import active_order, mix_audit, novelty, uncertainty
from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder

TEXTS = [
    "card not arrived",
    "card not arrived yet",
    "card has not arrived",
    "top up failed",
    "exchange rate for euros",
    "lost my phone",
]


def _order(seed: int, audit: float = 0.0) -> list[int]:
    vecs = EmbeddingCache(HashingEmbedder()).embed(TEXTS)
    unc = [0.9, 0.9, 0.9, 0.7, 0.6, 0.1]
    return active_order(
        [f"r{i}" for i in range(len(TEXTS))],
        unc,
        vecs,
        np.zeros((0, vecs.shape[1]), np.float32),
        seed=seed,
        audit_share=audit,
    )


def test_deterministic_with_seed_and_diverse() -> None:
    assert _order(3) == _order(3)
    order = _order(3)
    assert sorted(order) == list(range(len(TEXTS)))
    # The three paraphrases are equally uncertain, but the second pick is not another one.
    assert order[0] in (0, 1, 2)
    assert order[1] not in (0, 1, 2)
    assert order[-1] == 5  # confident and lonely: last


def test_uncertainty_and_novelty() -> None:
    assert uncertainty(None) == 1.0
    assert uncertainty(0.9) < uncertainty(0.6)
    assert uncertainty(0.5, {"a": 0.5, "b": 0.49}) > uncertainty(0.5, {"a": 0.5, "b": 0.1})
    vecs = EmbeddingCache(HashingEmbedder()).embed(TEXTS)
    nov = novelty(vecs, vecs[:1])
    assert nov[0] < 1e-5 and nov[1] < nov[5]


def test_audit_share_kept_and_seeded() -> None:
    refs = [f"r{i}" for i in range(200)]
    order = list(range(200))
    mixed = mix_audit(order, refs, seed=1, share=0.1)
    assert sorted(mixed) == order and mixed != order
    assert mixed == mix_audit(order, refs, seed=1, share=0.1)
    assert mixed != mix_audit(order, refs, seed=2, share=0.1)
