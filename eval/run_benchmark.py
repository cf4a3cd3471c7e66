"""Full-size benchmark: the shipped eval sets plus restricted ones found beside the repo.

    python eval/run_benchmark.py                          # default Qwen model, 200 items/set
    python eval/run_benchmark.py --n 500 --model gemma3-270m --out eval/reports/bench-gemma
    python eval/run_benchmark.py --provider openai --base-url http://127.0.0.1:8000/v1 --model m

Shipped sets (eval/data): SST-2 test, TweetEval sentiment test, BANKING77 test, GoEmotions
(multi-label) and WNUT-17 (spans). Restricted sets — AG News, Financial PhraseBank
(AllAgree) and CoNLL-2003 (eng.testb) — are read from ``../shared/datasets`` (or
``--shared``) when present. Their licences forbid redistribution, so they are converted
into a temporary folder outside the repository and never written into it.

Every set is labeled (cached: a re-run only re-evaluates), scored against its gold
labels, and written up as one experiment report (Markdown, HTML, JSON, plots).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from autolabel.evaluation.experiments import (  # noqa: E402
    DatasetSpec,
    Experiment,
    ModelSpec,
    Variant,
    run_experiment,
)
from autolabel.evaluation.gold import read_conll  # noqa: E402
from autolabel.ontology.loader import load_ontology  # noqa: E402
from autolabel.settings import load_settings  # noqa: E402
from autolabel.store.database import Database  # noqa: E402

AG_NEWS_LABELS = {"1": "world", "2": "sports", "3": "business", "4": "sci_tech"}
PHRASEBANK_ONTOLOGY = """\
name: financial_phrasebank
version: 1
task: classify
description: Classify the sentiment a sentence from financial news expresses for investors.
input:
  fields: [text]
labels:
  - name: negative
    description: bad news for the company or its investors (losses, falling sales, layoffs)
  - name: neutral
    description: factual statement with no clear positive or negative implication
  - name: positive
    description: good news for the company or its investors (growth, profit, new contracts)
"""


def sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded random sample, kept in file order."""
    if len(rows) <= n:
        return rows
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def shipped_sets(n: int, seed: int, tmp: Path) -> list[DatasetSpec]:
    """The committed eval subsets (already small enough; sampled down when --n is smaller)."""
    data = REPO / "eval" / "data"
    specs = [
        ("sst2", "sst2_test.csv", "sst2", "label", "sst2_dev.csv"),
        (
            "tweet_sentiment",
            "tweet_sentiment_test.csv",
            "tweet_sentiment",
            "label",
            "tweet_sentiment_val.csv",
        ),
        ("banking77", "banking77_test.csv", "banking77", "label", None),
        ("goemotions", "goemotions_test.jsonl", "goemotions", "labels", None),
        ("wnut17", "wnut17_test.jsonl", "wnut17", "spans", None),
    ]
    out = []
    for name, file, ontology, column, calibration in specs:
        path = data / file
        if not path.exists():
            print(f"skip {name}: {path} missing", file=sys.stderr)
            continue
        out.append(
            DatasetSpec(
                name=name,
                data=str(path),
                ontology=str(REPO / "ontologies" / f"{ontology}.yaml"),
                gold_column=column,
                id_column="id",
                calibration=str(data / calibration) if calibration else None,
                limit=n,
            )
        )
    return out


def restricted_sets(shared: Path, n: int, seed: int, tmp: Path) -> list[DatasetSpec]:
    """AG News, Financial PhraseBank and CoNLL-2003, converted into ``tmp`` when present."""
    out: list[DatasetSpec] = []
    ag = shared / "ag_news" / "test.csv"
    if ag.exists():
        with ag.open(newline="", encoding="utf-8") as fh:
            rows = [
                {
                    "id": f"ag-{i:05d}",
                    "title": r[1],
                    "description": r[2].replace("\\n", " "),
                    "label": AG_NEWS_LABELS[r[0]],
                }
                for i, r in enumerate(csv.reader(fh))
            ]
        out.append(
            DatasetSpec(
                name="ag_news",
                data=str(write_csv(tmp / "ag_news.csv", sample(rows, n, seed))),
                ontology=str(REPO / "ontologies" / "ag_news.yaml"),
                id_column="id",
            )
        )
    fpb = shared / "financial_phrasebank" / "Sentences_AllAgree.txt"
    if fpb.exists():
        rows = []
        for i, line in enumerate(fpb.read_text(encoding="utf-8").splitlines()):
            text, _, label = line.rpartition("@")
            if text:
                rows.append({"id": f"fpb-{i:05d}", "text": text.strip(), "label": label.strip()})
        ontology = tmp / "financial_phrasebank.yaml"
        ontology.write_text(PHRASEBANK_ONTOLOGY, encoding="utf-8")
        out.append(
            DatasetSpec(
                name="financial_phrasebank",
                data=str(write_csv(tmp / "fpb.csv", sample(rows, n, seed))),
                ontology=str(ontology),
                id_column="id",
            )
        )
    conll = shared / "conll2003" / "eng.testb"
    if conll.exists():
        ont = load_ontology(REPO / "ontologies" / "conll2003.yaml")
        gold = read_conll(conll, ont)
        rows = [
            {"id": f"conll-{g.row:05d}", "text": g.payload["text"], "spans": g.label}
            for g in gold
            if len(g.payload["text"].split()) >= 4  # headlines like "SOCCER -" say little
        ]
        out.append(
            DatasetSpec(
                name="conll2003",
                data=str(write_jsonl(tmp / "conll2003.jsonl", sample(rows, n, seed))),
                ontology=str(REPO / "ontologies" / "conll2003.yaml"),
                gold_column="spans",
                id_column="id",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="items per set (default 200)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--provider", default="local")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--target-precision", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--sets", nargs="*", help="only these sets (by name)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "reports" / "benchmark")
    parser.add_argument("--db", default=None, help="database URL (default: the data dir's)")
    args = parser.parse_args(argv)

    settings = load_settings(db=args.db)
    db = Database(settings.database_url)
    with tempfile.TemporaryDirectory(prefix="autolabel-bench-") as folder:
        tmp = Path(folder)
        datasets = shipped_sets(args.n, args.seed, tmp)
        if args.shared.exists():
            datasets += restricted_sets(args.shared, args.n, args.seed, tmp)
        else:
            print(f"restricted sets skipped: {args.shared} not found", file=sys.stderr)
        if args.sets:
            datasets = [d for d in datasets if d.name in args.sets]
        if not datasets:
            print("no data sets to run", file=sys.stderr)
            return 1
        exp = Experiment(
            name=f"benchmark-{Path(args.model).stem}",
            description=(
                f"{args.provider}/{args.model}, up to {args.n} items per set, default prompts. "
                "Restricted sets (AG News, Financial PhraseBank, CoNLL-2003) are evaluated from "
                "a local copy and never redistributed."
            ),
            target_precision=args.target_precision,
            seed=args.seed,
            concurrency=args.concurrency,
            variants=[Variant(name="default")],
            models=[
                ModelSpec(
                    name=Path(args.model).stem,
                    provider=args.provider,
                    model=args.model,
                    base_url=args.base_url,
                )
            ],
            datasets=datasets,
            base_dir=REPO,
        )
        result = run_experiment(exp, db=db, settings=settings, report_dir=args.out)
    print(
        f"{'set':<22}{'n':>5}{'failed':>8}{'acc':>8}{'macro-F1':>10}{'ECE':>8}"
        f"{'cov@P':>8}{'items/s':>9}"
    )
    for row in result.rows:
        print(
            f"{row['dataset']:<22}{row['n']:>5}{row['n_failed']:>8}"
            f"{_f(row['accuracy'])}{_f(row['macro_f1'], 10)}{_f(row['ece'])}"
            f"{_f(row['coverage_at_target'])}{_f(row['items_per_s'], 9)}"
        )
    print(f"report: {result.report_dir}")
    return 0


def _f(value: float | None, width: int = 8) -> str:
    return f"{'–':>{width}}" if value is None else f"{value:>{width}.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
