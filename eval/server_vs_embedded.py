"""The same GGUF, two ways: embedded (llama.cpp in-process) vs llama-cpp-python's server.

Starts ``python -m llama_cpp.server`` with the model the embedded path uses, labels the
same items both ways with the same ontology and prompt, and prints for each set: items,
failed, confidence methods, structured form the endpoint negotiated, accuracy of each
path against the gold labels and their agreement. The numbers in the README's
"OpenAI-compatible servers" section come from

    python eval/server_vs_embedded.py --limit 50

Needs ``pip install -e '.[local,server]'``. Slow on CPUs: every item is a model call on
each path (the server handles one request at a time, so the run uses concurrency 1).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sqlmodel import select  # noqa: E402

from autolabel.engine.pipeline import LabelJob, run_job  # noqa: E402
from autolabel.ontology.loader import load_ontology  # noqa: E402
from autolabel.providers.base import Provider  # noqa: E402
from autolabel.providers.models import DEFAULT_MODEL, resolve_model  # noqa: E402
from autolabel.store.database import Database  # noqa: E402
from autolabel.store.tables import Item, Prediction  # noqa: E402

SETS = {
    # name: (data with gold labels, ontology)
    "sst2": (REPO / "examples/sst2_sample_gold.csv", REPO / "ontologies/sst2.yaml"),
    "banking77": (REPO / "eval/data/banking77_test.csv", REPO / "ontologies/banking77.yaml"),
}


def read_slice(path: Path, limit: int, out: Path) -> dict[str, str]:
    """Write the first ``limit`` rows (id, text) to ``out``; return id -> gold label."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for r in rows:
            w.writerow([r["id"], r["text"]])
    return {r["id"]: r["label"] for r in rows}


def label_with(
    provider: Provider, ontology_path: Path, data: Path, db_url: str, concurrency: int
) -> dict[str, Any]:
    """Label ``data``; return labels by id, methods, failures and seconds."""
    db = Database(db_url)
    job = LabelJob(
        ontology=load_ontology(ontology_path),
        ontology_path=str(ontology_path),
        data=data,
        provider=provider,
        db=db,
        cache=None,
        id_column="id",
        concurrency=concurrency,
        progress=False,
        new_run=True,
    )
    started = time.perf_counter()
    summary = run_job(job)
    took = time.perf_counter() - started
    with db.session() as s:
        rows = s.exec(
            select(Prediction, Item.external_id)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == summary.run_id)
        ).all()
    return {
        "labels": {ext: p.label for p, ext in rows},
        "confidence": {ext: p.confidence for p, ext in rows},
        "methods": Counter(p.method or "failed" for p, _ in rows),
        "failed": summary.n_failed,
        "seconds": took,
    }


def accuracy(labels: dict[str, Any], gold: dict[str, str]) -> float:
    return sum(labels.get(k) == v for k, v in gold.items()) / len(gold)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedded model name or GGUF")
    parser.add_argument("--limit", type=int, default=50, help="items per set")
    parser.add_argument("--sets", default="sst2,banking77")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-ctx", type=int, default=4096, help="embedded model context")
    parser.add_argument(
        "--server-n-ctx",
        type=int,
        default=None,
        help="the server's --n_ctx (default: --n-ctx). Keep it small: llama-cpp-python "
        "0.3 takes a log-softmax over n_ctx × vocabulary floats on every request with "
        "logprobs, so a request costs time in proportion to it",
    )
    args = parser.parse_args(argv)

    from autolabel.providers.capabilities import CapabilityCache
    from autolabel.providers.local import LocalProvider
    from autolabel.providers.openai import OpenAIProvider
    from autolabel.testing.llama_server import LlamaCppServer

    gguf = resolve_model(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="server-vs-embedded-"))
    lines = []
    server_ctx = args.server_n_ctx or args.n_ctx
    with LlamaCppServer(gguf, alias="m", n_ctx=server_ctx, n_threads=args.threads) as srv:
        print(
            f"llama-cpp-python {srv.version()} serving {gguf.name} (n_ctx {server_ctx}) "
            f"at {srv.base_url}",
            flush=True,
        )
        for name in args.sets.split(","):
            data_path, ontology_path = SETS[name]
            data = tmp / f"{name}.csv"
            gold = read_slice(data_path, args.limit, data)
            remote = OpenAIProvider(
                "m",
                base_url=srv.base_url,
                timeout_s=600,
                capability_cache=CapabilityCache(tmp / "endpoints"),
            )
            served = label_with(remote, ontology_path, data, f"sqlite:///{tmp}/s-{name}.db", 1)
            form = remote.capabilities.form
            rejected = ", ".join(remote.capabilities.rejected) or "none"
            local = LocalProvider(gguf, model_name=args.model, n_ctx=args.n_ctx)
            embedded = label_with(local, ontology_path, data, f"sqlite:///{tmp}/e-{name}.db", 1)
            agree = sum(served["labels"].get(k) == embedded["labels"].get(k) for k in gold) / len(
                gold
            )
            row = (
                f"| {name} | {len(gold)} | {served['failed']} | "
                f"{dict(served['methods'])} | {form} (rejected: {rejected}) | "
                f"{accuracy(served['labels'], gold):.1%} | "
                f"{accuracy(embedded['labels'], gold):.1%} ({dict(embedded['methods'])}) | "
                f"{agree:.1%} | {served['seconds']:.0f} s / {embedded['seconds']:.0f} s |"
            )
            print(row, flush=True)
            lines.append(row)
            for k in gold:
                s, e = served["labels"].get(k), embedded["labels"].get(k)
                if s != e:
                    print(f"  differs {k}: server={s} embedded={e} gold={gold[k]}", flush=True)
    print()
    print(
        "| set | items | failed (server) | confidence (server) | structured form | "
        "accuracy server | accuracy embedded | agreement | time server / embedded |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
