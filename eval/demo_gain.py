"""Do demonstrations from reviewed items help the embedded model? A paired, sampled check.

The cheap stand-in for a full ``autolabel simulate`` when the machine cannot afford one:
a "reviewed" pool of gold-labelled items (by default the last 20% of the shuffled file),
and, for each of the first items of the file, the zero-shot label and the label with the
k demonstrations ``simulate``'s loop would pick from that pool (same selector, same
embedder, same prompt). Prints per item and a summary: accuracy zero-shot vs with
demonstrations on the *same* items, with 95% Wilson intervals and the paired counts.
Stops cleanly after ``--max-seconds`` (what was measured is kept; the JSON says so).

Differences from ``simulate`` (stated in the output): the pool is a fixed random 20%, not
the first 20% of an active order, and only a sample of the unreviewed items is labelled.

    PYTHONPATH=src python eval/demo_gain.py --k 4 --max-seconds 4000 --out /tmp/gain.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from autolabel.engine.cache import ResponseCache
from autolabel.learning.data import read_labelled
from autolabel.learning.demonstrations import Demonstration, DemoSelector, build_pool
from autolabel.learning.live import default_cache
from autolabel.learning.model_labels import ModelLabels
from autolabel.learning.simulate import cpu_seconds
from autolabel.ontology.loader import load_ontology, resolve_ontology_path
from autolabel.providers.factory import create_provider
from autolabel.settings import load_settings

DATA = Path(__file__).resolve().parent / "data" / "banking77_simulate.csv"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ontology", default="banking77")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--pool-share", type=float, default=0.2)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--n", type=int, default=None, help="most items to label (default: all)")
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--out", type=Path, default=Path("demo_gain.json"))
    args = ap.parse_args()
    started, cpu0 = time.perf_counter(), cpu_seconds()
    settings = load_settings(None)
    ont = load_ontology(resolve_ontology_path(args.ontology))
    items = read_labelled(args.data, ont, "label")
    n_pool = round(args.pool_share * len(items))
    pool_items, rest = items[len(items) - n_pool :], items[: len(items) - n_pool]
    if args.n is not None:
        rest = rest[: args.n]
    cache = default_cache([it.text for it in items])  # as simulate: IDF over the whole set
    pool = build_pool(
        ont.name, [Demonstration(i.ref, i.payload, i.gold, i.text) for i in pool_items], cache
    )
    selector = DemoSelector(pool, cache, k=args.k)
    prov = create_provider(settings)
    labels = ModelLabels(ont, prov, ResponseCache(settings.cache_dir), concurrency=1)
    rows: list[dict] = []
    stopped = "done"
    for it in rest:
        if args.max_seconds is not None and time.perf_counter() - started > args.max_seconds:
            stopped = "time limit"
            break
        demos = selector.select(it.text, exclude=[it.ref])
        zero, shown = labels([it, it], [[], demos])
        rows.append(
            {
                "ref": it.ref,
                "gold": it.gold,
                "zero_shot": zero.label,
                "with_demos": shown.label,
                "demo_labels": [d.output for d in demos],
                "gold_among_demos": any(d.output == it.gold for d in demos),
            }
        )
        r = rows[-1]
        print(
            f"{len(rows):3d} {it.ref}: zero {'+' if r['zero_shot'] == it.gold else '-'} "
            f"demos {'+' if r['with_demos'] == it.gold else '-'} "
            f"(gold among demos: {r['gold_among_demos']}) "
            f"{time.perf_counter() - started:.0f}s",
            flush=True,
        )
        write(args, rows, n_pool, len(items), stopped="running", started=started, cpu0=cpu0)
    summary = write(args, rows, n_pool, len(items), stopped=stopped, started=started, cpu0=cpu0)
    print(json.dumps(summary, indent=2))


def write(args, rows, n_pool, n_items, *, stopped, started, cpu0) -> dict:  # type: ignore[no-untyped-def]
    n = len(rows)
    z = sum(r["zero_shot"] == r["gold"] for r in rows)
    d = sum(r["with_demos"] == r["gold"] for r in rows)
    fixed = sum(r["zero_shot"] != r["gold"] and r["with_demos"] == r["gold"] for r in rows)
    broken = sum(r["zero_shot"] == r["gold"] and r["with_demos"] != r["gold"] for r in rows)
    summary = {
        "ontology": args.ontology,
        "data": str(args.data),
        "n_items_in_file": n_items,
        "pool": f"last {n_pool} rows ({args.pool_share:.0%}), gold labels as human decisions",
        "k": args.k,
        "n_labelled": n,
        "zero_shot_accuracy": z / n if n else None,
        "zero_shot_ci95": wilson(z, n),
        "with_demos_accuracy": d / n if n else None,
        "with_demos_ci95": wilson(d, n),
        "fixed_by_demos": fixed,
        "broken_by_demos": broken,
        "gold_among_demos": sum(r["gold_among_demos"] for r in rows),
        "status": stopped,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(cpu_seconds() - cpu0, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


if __name__ == "__main__":
    main()
