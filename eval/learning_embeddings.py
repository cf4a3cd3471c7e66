"""Which offline embedder finds the most useful demonstrations? (prints a table)

Leave-one-out 1-nearest-neighbour label accuracy and top-8 label recall (does a
neighbour among the 8 nearest carry the item's label: what a demonstration set needs)
on the shipped BANKING77 simulate subset (385 items, 77 intents × 5), plus embedding
speed. Compares the lexical HashingEmbedder with mean-pooled embeddings of the embedded
GGUF models through llama.cpp (a separate ``Llama(..., embedding=True)`` instance).

    PYTHONPATH=src python eval/learning_embeddings.py [--models gemma3-270m,qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from autolabel.learning.embeddings import GGUFEmbedder, HashingEmbedder

DATA = Path(__file__).resolve().parent / "data" / "banking77_simulate.csv"


def scores(vectors: np.ndarray, labels: list[str]) -> tuple[float, float]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1)
    lab = np.array(labels)
    top1 = float(np.mean(lab[order[:, 0]] == lab))
    top8 = float(np.mean([(lab[order[i, :8]] == lab[i]).any() for i in range(len(lab))]))
    return top1, top8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gemma3-270m")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    rows = list(csv.DictReader(DATA.open(encoding="utf-8")))[: args.limit]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    print(f"{len(rows)} BANKING77 items, {len(set(labels))} intents")
    print(f"{'embedder':28} {'1-NN acc':>9} {'label in top-8':>15} {'ms/text':>8}")
    t0 = time.perf_counter()
    lexical = HashingEmbedder().fit(texts).embed(texts)
    ms = (time.perf_counter() - t0) / len(texts) * 1000
    print(
        f"{'lexical (hashing tf-idf)':28} {scores(lexical, labels)[0]:9.3f} "
        f"{scores(lexical, labels)[1]:15.3f} {ms:8.2f}"
    )
    from autolabel.providers.models import resolve_model

    for name in [m for m in args.models.split(",") if m]:
        embedder = GGUFEmbedder(str(resolve_model(name)))
        t0 = time.perf_counter()
        vectors = embedder.embed(texts)
        ms = (time.perf_counter() - t0) / len(texts) * 1000
        top1, top8 = scores(vectors, labels)
        print(f"{'gguf ' + name:28} {top1:9.3f} {top8:15.3f} {ms:8.1f}")


if __name__ == "__main__":
    main()
