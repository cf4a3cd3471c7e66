"""Label-error detection (cleanlab) finds labels flipped on purpose in a shipped set.

The probabilities come from a real, cheap model: a leave-one-out nearest-neighbour
classifier over the lexical embeddings, trained on the (noisy) given labels, the
"older model" situation confident learning is made for. The embedded-LLM variant is
measured by ``eval/label_errors.py`` (too slow for the suite on 2 cores).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder
from autolabel.learning.label_errors import find_suspects, pred_probs_matrix

REPO = Path(__file__).resolve().parents[2]


def knn_distributions(texts: list[str], given: list[str], names: list[str], k: int = 10):  # type: ignore[no-untyped-def]
    vectors = EmbeddingCache(HashingEmbedder().fit(texts)).embed(texts)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)  # leave one out: an item never votes for itself
    out = []
    for i in range(len(texts)):
        votes = {n: 0.1 for n in names}
        for j in np.argsort(-sims[i])[:k]:
            votes[given[j]] += max(float(sims[i, j]), 0.0)
        total = sum(votes.values())
        out.append({n: v / total for n, v in votes.items()})
    return out


def test_flipped_labels_found_well_above_chance() -> None:
    pytest.importorskip("cleanlab")
    rows = list(csv.DictReader((REPO / "eval/data/banking77_test.csv").open(encoding="utf-8")))
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    names = sorted(set(gold))
    rng = np.random.default_rng(0)
    flipped = set(rng.choice(len(rows), len(rows) // 10, replace=False).tolist())
    given = [
        names[(names.index(g) + 1 + int(rng.integers(len(names) - 1))) % len(names)]
        if i in flipped
        else g
        for i, g in enumerate(gold)
    ]
    suspects = find_suspects(given, knn_distributions(texts, given, names), names)
    k = len(flipped)
    top = [s.index for s in suspects[:k]]
    precision = sum(i in flipped for i in top) / k
    chance = k / len(rows)
    print(f"precision@{k} = {precision:.2f} (chance {chance:.2f})")
    assert precision >= 3 * chance
    assert all(s.given == given[s.index] for s in suspects)


def test_probs_matrix_and_unknown_label() -> None:
    m = pred_probs_matrix([{"a": 0.7, "b": 0.3}, None], ["a", "b"])
    assert m.shape == (2, 2) and np.allclose(m.sum(axis=1), 1) and m[1, 0] == pytest.approx(0.5)
    from autolabel.errors import ConfigError

    pytest.importorskip("cleanlab")
    with pytest.raises(ConfigError):
        find_suspects(["zzz"], [None], ["a", "b"])
