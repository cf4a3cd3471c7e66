"""Per-item cost of an embedded classify with k demonstrations vs zero-shot.

Prints wall and CPU seconds per item and prompt tokens, for a few BANKING77 items
(or any ontology + gold file). Demonstrations are chosen from the other items'
gold labels exactly as ``autolabel simulate`` does (similarity + diversity).

    PYTHONPATH=src python bench/demo_cost.py [--n 6] [--k 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from autolabel.learning.data import read_labelled
from autolabel.learning.demonstrations import Demonstration, DemoSelector, build_pool
from autolabel.learning.live import default_cache
from autolabel.learning.model_labels import ModelLabels
from autolabel.ontology.loader import load_ontology, resolve_ontology_path
from autolabel.providers.factory import create_provider
from autolabel.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ontology", default="banking77")
    ap.add_argument("--data", default="eval/data/banking77_simulate.csv")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--pool", type=int, default=80, help="reviewed items the demos come from")
    args = ap.parse_args()
    ont = load_ontology(resolve_ontology_path(args.ontology))
    items = read_labelled(Path(args.data), ont, "label")
    targets, reviewed = items[: args.n], items[args.n : args.n + args.pool]
    prov = create_provider(load_settings(None))
    labels = ModelLabels(ont, prov, None, concurrency=1)
    cache = default_cache([it.text for it in items])
    pool = build_pool(
        "bench", [Demonstration(i.ref, i.payload, i.gold, i.text) for i in reviewed], cache
    )
    selector = DemoSelector(pool, cache, k=args.k)
    demos = [selector.select(it.text, exclude=[it.ref]) for it in targets]
    labels([items[-1]], [[]])  # load the model and decode the shared system prompt
    compiler = labels.labeler.compiler
    for name, ds in (("zero-shot", [[] for _ in targets]), (f"k={args.k}", demos)):
        toks = [
            prov.count_tokens(compiler.compile(it.payload, d).messages)
            for it, d in zip(targets, ds, strict=True)
        ]
        w0, c0 = time.perf_counter(), os.times()
        preds = labels(targets, ds)
        w1, c1 = time.perf_counter(), os.times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        right = sum(p.label == it.gold for p, it in zip(preds, targets, strict=True))
        print(
            f"{name:10s} {len(targets)} items: {(w1 - w0) / len(targets):.2f} s/item wall, "
            f"{cpu / len(targets):.2f} s/item CPU, prompt tokens mean {sum(toks) / len(toks):.0f}, "
            f"right {right}/{len(targets)}, load {os.getloadavg()[0]:.2f}"
        )
    asyncio.run(prov.aclose())


if __name__ == "__main__":
    main()
