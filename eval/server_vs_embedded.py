"""The same GGUF, two ways: embedded (llama.cpp in-process) vs llama-cpp-python's server.

Starts ``python -m llama_cpp.server`` with the model the embedded path uses, labels the
same items both ways with the same ontology and prompt, and prints for each set: items,
failed, confidence methods, the structured form the endpoint negotiated, accuracy of
each path against the gold labels, their agreement, and wall and CPU seconds. The
numbers in the README's "OpenAI-compatible servers" section come from

    python eval/server_vs_embedded.py --sets sst2:100,banking77:60 --threads 1 --parallel

``--parallel`` runs the embedded path in a child process while the parent drives the
server, so the two share the machine (their times then include each other's load; the
accuracies do not depend on it). Needs ``pip install -e '.[local,server]'``. Slow on
CPUs: every item is a model call on each path (the server handles one request at a time,
so the server path uses concurrency 1).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
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


def parse_sets(spec: str, default_limit: int) -> list[tuple[str, int]]:
    """``sst2:100,banking77:60`` (or bare names, which take ``--limit``)."""
    out = []
    for part in spec.split(","):
        name, _, n = part.partition(":")
        if name not in SETS:
            raise SystemExit(f"unknown set {name!r}: choose from {', '.join(SETS)}")
        out.append((name, int(n) if n else default_limit))
    return out


def read_slice(path: Path, limit: int, out: Path, skip: int = 0) -> dict[str, str]:
    """Write the first ``limit`` rows but the first ``skip`` (id, text) to ``out``; return
    id -> gold label."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[skip:limit]
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for r in rows:
            w.writerow([r["id"], r["text"]])
    return {r["id"]: r["label"] for r in rows}


def proc_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of another process so far (Linux ``/proc``; 0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def label_with(
    provider: Provider, ontology_path: Path, data: Path, db_url: str, concurrency: int
) -> dict[str, Any]:
    """Label ``data``; return labels by id, methods, failures, wall and own CPU seconds."""
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
    started, cpu0 = time.perf_counter(), time.process_time()
    summary = run_job(job)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu0
    with db.session() as s:
        rows = s.exec(
            select(Prediction, Item.external_id)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == summary.run_id)
        ).all()
    return {
        "labels": {ext: p.label for p, ext in rows},
        "confidence": {ext: p.confidence for p, ext in rows},
        "methods": dict(Counter(p.method or "failed" for p, _ in rows)),
        "errors": sorted({p.error for p, _ in rows if p.error}),
        "failed": summary.n_failed,
        "seconds": took,
        "cpu_s": cpu,
    }


def read_partial(db_path: Path) -> dict[str, Any]:
    """What a run (perhaps stopped early) stored: labels by id, methods, failures, seconds."""
    db = Database(f"sqlite:///{db_path}")
    with db.session() as s:
        rows = s.exec(select(Prediction, Item.external_id).join(Item)).all()
    return {
        "labels": {ext: p.label for p, ext in rows},
        "methods": dict(Counter(p.method or "failed" for p, _ in rows)),
        "errors": sorted({p.error for p, _ in rows if p.error}),
        "failed": sum(p.error is not None for p, _ in rows),
        "seconds": sum(p.latency_ms for p, _ in rows) / 1000,
        "cpu_s": float("nan"),  # not recorded in the database
    }


def report_partial(workdir: Path) -> None:
    """``--report DIR``: the table over the items both paths finished in DIR (a stopped run)."""
    for name, (gold_path, _) in SETS.items():
        s_db, e_db = workdir / f"s-{name}.db", workdir / f"e-{name}.db"
        if not (s_db.exists() and e_db.exists()):
            continue
        s, e = read_partial(s_db), read_partial(e_db)
        both = sorted(set(s["labels"]) & set(e["labels"]))
        with gold_path.open(newline="", encoding="utf-8") as fh:
            gold = {r["id"]: r["label"] for r in csv.DictReader(fh) if r["id"] in both}
        n = len(gold)
        if not n:
            continue
        (sr, sa), (er, ea) = accuracy(s["labels"], gold), accuracy(e["labels"], gold)
        agree = sum(s["labels"][k] == e["labels"][k] for k in gold)
        failed_s = sum(s["labels"][k] is None for k in gold)
        print(
            f"| {name} | {n} (server {len(s['labels'])}, embedded {len(e['labels'])} done) | "
            f"{failed_s} | {s['methods']} | {sa:.1%} ({sr}/{n}) | {ea:.1%} ({er}/{n}) | "
            f"{(sa - ea) * 100:+.1f} | {agree / n:.1%} ({agree}/{n}) | "
            f"{s['seconds'] / len(s['labels']):.1f} | {e['seconds'] / len(e['labels']):.1f} |"
        )
        for k in gold:
            sl, el = s["labels"][k], e["labels"][k]
            if sl != el:
                mark = "server" if sl == gold[k] else "embedded" if el == gold[k] else "neither"
                print(f"  {name} differs {k}: server={sl} embedded={el} gold={gold[k]} ({mark})")


def accuracy(labels: dict[str, Any], gold: dict[str, str]) -> tuple[int, float]:
    right = sum(labels.get(k) == v for k, v in gold.items())
    return right, right / len(gold)


def run_embedded(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every set through the embedded provider (in this process)."""
    from autolabel.providers.local import LocalProvider

    gguf = resolve_model(args.model)
    out = {}
    for name, _ in parse_sets(args.sets, args.limit):
        local = LocalProvider(gguf, model_name=args.model, n_ctx=args.n_ctx, n_threads=args.threads)
        res = label_with(
            local, SETS[name][1], tmp / f"{name}.csv", f"sqlite:///{tmp}/e-{name}.db", 1
        )
        print(f"embedded {name}: {res['seconds']:.0f} s wall, {res['cpu_s']:.0f} s CPU", flush=True)
        out[name] = res
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedded model name or GGUF")
    parser.add_argument("--limit", type=int, default=50, help="items per set without :N")
    parser.add_argument("--sets", default="sst2:100,banking77:60", help="name[:items],...")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for both paths (default: all cores). On a machine shared with "
        "other jobs use 1: llama.cpp's threads wait for each other at every layer, and a "
        "descheduled thread stalls the rest (here: 2 s per generated token with 2 threads "
        "at load 8, 0.2 s with 1)",
    )
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        help="leave out each set's first N items (measured by an earlier run: combine the "
        "two --report tables)",
    )
    parser.add_argument("--n-ctx", type=int, default=4096, help="embedded model context")
    parser.add_argument(
        "--server-n-ctx",
        type=int,
        default=None,
        help="the server's --n_ctx (default: --n-ctx; BANKING77's prompt needs > 2048). "
        "llama-cpp-python 0.3 keeps n_ctx × vocabulary floats of logits for logprobs",
    )
    parser.add_argument(
        "--parallel", action="store_true", help="run the embedded path at the same time"
    )
    parser.add_argument("--embedded-only", metavar="JSON", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="print the comparison over the items both paths finished in the work folder "
        "DIR of an earlier (perhaps stopped) run, and exit",
    )
    args = parser.parse_args(argv)
    if args.report:
        report_partial(Path(args.report))
        return

    if args.embedded_only:  # the child of --parallel
        res = run_embedded(args, Path(args.workdir))
        Path(args.embedded_only).write_text(json.dumps(res))
        return

    from autolabel.providers.capabilities import CapabilityCache
    from autolabel.providers.openai import OpenAIProvider
    from autolabel.testing.llama_server import LlamaCppServer

    gguf = resolve_model(args.model)
    sets = parse_sets(args.sets, args.limit)
    for name, n in sets:
        if args.skip >= n:
            parser.error(f"--skip {args.skip} leaves no items of {name}:{n}; ask for more")
    tmp = Path(tempfile.mkdtemp(prefix="server-vs-embedded-"))
    print(f"work folder (for --report): {tmp}", flush=True)
    golds = {name: read_slice(SETS[name][0], n, tmp / f"{name}.csv", args.skip) for name, n in sets}
    load0 = os.getloadavg()
    child = None
    if args.parallel:
        cmd = [sys.executable, __file__, "--embedded-only", str(tmp / "embedded.json")]
        cmd += ["--workdir", str(tmp), "--sets", args.sets, "--limit", str(args.limit)]
        cmd += ["--model", args.model, "--n-ctx", str(args.n_ctx)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        child = subprocess.Popen(cmd)
    served: dict[str, dict[str, Any]] = {}
    forms: dict[str, str] = {}
    server_ctx = args.server_n_ctx or args.n_ctx
    with LlamaCppServer(gguf, alias="m", n_ctx=server_ctx, n_threads=args.threads) as srv:
        version = srv.version()
        print(
            f"llama-cpp-python {version} serving {gguf.name} (n_ctx {server_ctx}, "
            f"{srv.n_threads} threads) at {srv.base_url}",
            flush=True,
        )
        for name, _ in sets:
            remote = OpenAIProvider(
                "m",
                base_url=srv.base_url,
                timeout_s=1800,
                capability_cache=CapabilityCache(tmp / "endpoints"),
            )
            server_cpu0 = proc_cpu_s(srv.pid)
            res = label_with(
                remote, SETS[name][1], tmp / f"{name}.csv", f"sqlite:///{tmp}/s-{name}.db", 1
            )
            res["cpu_s"] += proc_cpu_s(srv.pid) - server_cpu0  # client + server
            rejected = ", ".join(remote.capabilities.rejected) or "none"
            forms[name] = f"{remote.capabilities.form} (rejected: {rejected})"
            served[name] = res
            took = f"{res['seconds']:.0f} s wall, {res['cpu_s']:.0f} s CPU"
            print(f"server {name}: {took}", flush=True)
    if child is not None:
        if child.wait() != 0:
            raise SystemExit(f"the embedded run failed (exit {child.returncode})")
        embedded = json.loads((tmp / "embedded.json").read_text())
    else:
        embedded = run_embedded(args, tmp)
    load1 = os.getloadavg()

    lines = []
    for name, _ in sets:
        gold, s, e = golds[name], served[name], embedded[name]
        (sr, sa), (er, ea) = accuracy(s["labels"], gold), accuracy(e["labels"], gold)
        agree = sum(s["labels"].get(k) == e["labels"].get(k) for k in gold)
        n = len(gold)
        lines.append(
            f"| {name} | {n} | {s['failed']} / {e['failed']} | {s['methods']} | {forms[name]} | "
            f"{sa:.1%} ({sr}/{n}) | {ea:.1%} ({er}/{n}) | {(sa - ea) * 100:+.1f} | "
            f"{agree / n:.1%} ({agree}/{n}) | "
            f"{s['seconds'] / n:.1f} ({s['cpu_s'] / n:.1f}) | "
            f"{e['seconds'] / n:.1f} ({e['cpu_s'] / n:.1f}) |"
        )
        for err in s["errors"]:
            print(f"  {name} server error: {err}")
        for k in gold:
            sl, el = s["labels"].get(k), e["labels"].get(k)
            if sl != el:
                mark = "server" if sl == gold[k] else "embedded" if el == gold[k] else "neither"
                print(f"  {name} differs {k}: server={sl} embedded={el} gold={gold[k]} ({mark})")
    print()
    print(
        f"llama-cpp-python {version}, {gguf.name}, threads {args.threads or 'all'}, "
        f"{'parallel' if args.parallel else 'one path after the other'}, "
        f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at end"
    )
    print(
        "| set | items | failed server / embedded | confidence (server) | structured form | "
        "accuracy server | accuracy embedded | Δ points | agreement | "
        "server s/item (CPU s) | embedded s/item (CPU s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
