"""Demonstration selection speed at a pool of 10,000 reviewed items (prints ms/item).

    PYTHONPATH=src python bench/demonstrations.py [--pool 10000] [--queries 500] [--k 8]

The pool is BANKING77's train split when ../shared/datasets is present, else synthetic
texts; the per-item cost is embedding the item (cached in real use) plus selection.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

from autolabel.learning.demonstrations import Demonstration, DemoSelector, build_pool
from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"


def _texts(n: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name in ("train.csv", "test.csv"):
        path = SHARED / name
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                rows += [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    rng = random.Random(0)
    words = "card top up transfer pending refund exchange rate cash atm pin app fee".split()
    while len(rows) < n:
        rows.append((" ".join(rng.choices(words, k=10)), f"L{rng.randrange(77)}"))
    return rows[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=8)
    args = ap.parse_args()
    rows = _texts(args.pool + args.queries)
    pool_rows, queries = rows[: args.pool], [t for t, _ in rows[args.pool :]]
    embedder = HashingEmbedder().fit(t for t, _ in rows)
    cache = EmbeddingCache(embedder)
    t0 = time.perf_counter()
    demos = [
        Demonstration(f"item:{i}", {"text": t}, lab, t) for i, (t, lab) in enumerate(pool_rows)
    ]
    pool = build_pool("bench", demos, cache)
    build_s = time.perf_counter() - t0
    selector = DemoSelector(pool, cache, k=args.k)
    timings = []
    for _ in ("cold", "warm"):
        t0, c0 = time.perf_counter(), time.process_time()
        for i, q in enumerate(queries):
            selector.select(q, exclude=[f"item:{i}"])
        wall = (time.perf_counter() - t0) / len(queries) * 1000
        cpu = (time.process_time() - c0) / len(queries) * 1000
        timings.append(f"{wall:.2f} ms wall / {cpu:.2f} ms CPU")
    print(f"pool {len(pool):,} items, dim {embedder.dim}, k {args.k}")
    print(f"pool build (embed + matrix): {build_s:.2f} s once")
    # CPU time is the cost; wall time also counts waiting for a core on a shared machine.
    print(f"selection per item, item embedding not cached: {timings[0]}")
    print(f"selection per item, item embedding cached:     {timings[1]}")


if __name__ == "__main__":
    main()
