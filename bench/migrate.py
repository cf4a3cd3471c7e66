"""Time `autolabel ontology migrate` (rename + merge + split) on a synthetic database.

N items with one prediction each, a review task for a quarter of them (half decided),
and a gold set for a tenth. Prints the seconds taken and the counts the migration reports.

Usage: .venv/bin/python bench/migrate.py [--n 20000] [--db sqlite:///tmp/bench.db]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from autolabel.interop.migrate import migrate_labels  # noqa: E402
from autolabel.interop.versions import load_with_text  # noqa: E402
from autolabel.store.database import Database  # noqa: E402
from autolabel.store.tables import (  # noqa: E402
    Dataset,
    Decision,
    GoldLabel,
    GoldSet,
    Item,
    Prediction,
    ReviewTask,
    Run,
)

OLD = """name: bench
version: 1
task: classify
labels: [{name: pos}, {name: neg}, {name: angry}, {name: neutral}]
"""
NEW = """name: bench
version: 2
task: classify
labels: [{name: positive}, {name: negative}, {name: neutral}, {name: mixed}]
migrate:
  rename: {pos: positive}
  merge: {negative: [neg, angry]}
  split: {neutral: [neutral, mixed]}
"""
LABELS = ["pos", "neg", "angry", "neutral"]


def seed(db: Database, n: int, ontology: dict) -> None:
    rng = random.Random(7)
    with db.session() as s:
        ds = Dataset(name="bench")
        s.add(ds)
        s.flush()
        run = Run(
            run_key="bench",
            dataset_id=ds.id,
            ontology_name="bench",
            ontology_version="1",
            ontology_hash="bench-v1",
            ontology=ontology,
            prompt_hash="p",
            template="t",
            task="classify",
            provider="bench",
            model="m",
            status="completed",
        )
        gold = GoldSet(name="bench-gold", dataset_id=ds.id, ontology_name="bench")
        s.add_all([run, gold])
        s.flush()
        for i in range(n):
            item = Item(
                dataset_id=ds.id,
                external_id=f"i{i}",
                content_hash=f"h{i}",
                payload={"text": f"t{i}"},
            )
            s.add(item)
            s.flush()
            label = rng.choice(LABELS)
            pred = Prediction(run_id=run.id, item_id=item.id, label=label, confidence=rng.random())
            s.add(pred)
            s.flush()
            if i % 4 == 0:
                task = ReviewTask(
                    queue="default",
                    item_id=item.id,
                    run_id=run.id,
                    prediction_id=pred.id,
                    suggestion=label,
                )
                s.add(task)
                s.flush()
                if i % 8 == 0:
                    s.add(
                        Decision(
                            task_id=task.id,
                            item_id=item.id,
                            reviewer="ann",
                            action="decide",
                            label=label,
                        )
                    )
                    task.status, task.final_label, task.final_source = "decided", label, "human"
            if i % 10 == 0:
                s.add(GoldLabel(gold_set_id=gold.id, item_id=item.id, label=label))
        s.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autolabel-bench-"))
    (tmp / "old.yaml").write_text(OLD)
    (tmp / "new.yaml").write_text(NEW)
    old, new = load_with_text(tmp / "old.yaml"), load_with_text(tmp / "new.yaml")
    db = Database(args.db or f"sqlite:///{tmp / 'bench.db'}")
    t0 = time.perf_counter()
    seed(db, args.n, old.ontology.model_dump(mode="json"))
    print(f"seeded {args.n} items in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    result = migrate_labels(db, old, new)
    elapsed = time.perf_counter() - t0
    with db.session() as s:
        open_split = len(s.exec(select(ReviewTask.id).where(ReviewTask.status == "pending")).all())
    print(
        f"migrated in {elapsed:.2f} s ({args.n / elapsed:,.0f} items/s); pending tasks {open_split}"
    )
    for key, value in sorted(result.counts.items()):
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
