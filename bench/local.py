"""Throughput of the embedded provider's choice scoring vs a bare llama.cpp loop.

On the same N SST-2 dev prompts (compiled by PromptCompiler from ontologies/sst2.yaml):

  bare      llama-cpp-python alone: for every label, reset and evaluate the whole
            prompt + label + '"}' from scratch, sum the label's logprobs
  bare-once llama-cpp-python alone, the fair baseline: per item, reset and evaluate the
            prompt once, then score each label after it (no reuse across items)
  provider  LocalProvider.complete() (prefix reuse across labels and items)
  pipeline  autolabel.engine.pipeline.run_job on a CSV of the same items (when present)

Usage: .venv/bin/python bench/local.py [--model qwen2.5-coder-1.5b] [--n 60]
Prints items/s, the ratio to the bare loop, and accuracy against the gold labels.

Task sections (--task banking77 | goemotions | all), on the shipped eval slices: the
engine (LocalProvider: classify by best-first search over the label token trie,
multi-label questions in one batched decode) vs the previous engine (label-level
bounding, classify only) and today's method (the same provider scoring labels one after
another, batched=False), on the same items, with accuracy (classify) or macro-F1 and
subset accuracy (multi-label). --n-slow caps the items of the slower methods.

--task wnut17 (spans, see bench_spans): the engine's copy-only decoding vs today's GBNF
grammar sampling (copy_spans=False), exact-match entity F1 beside each; --split dev|test
and --ontology / --template pick the prompt (choose on dev, report on test).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from autolabel.ontology.compiler import PromptCompiler  # noqa: E402
from autolabel.ontology.loader import load_ontology  # noqa: E402
from autolabel.providers.base import ProviderRequest  # noqa: E402
from autolabel.providers.local import LocalProvider  # noqa: E402
from autolabel.providers.models import DEFAULT_MODEL, resolve_model  # noqa: E402

EVAL_DEV = REPO / "eval" / "data" / "sst2_dev.csv"


def load_items(n: int) -> list[dict[str, str]]:
    """SST-2 dev sentences shipped in eval/data (natural text, gold labels)."""
    with EVAL_DEV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{"text": r["text"], "gold": r["label"]} for r in rows[:n]]


def _last_logprobs(llama):  # type: ignore[no-untyped-def]
    """Log-softmax of the logits after the last evaluated token."""
    n_vocab = llama.n_vocab()

    def read() -> np.ndarray:
        row = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(n_vocab,))
        row = row.astype(np.float64) - row.max()
        return row - np.log(np.exp(row).sum())

    return read


def _bare_llama(model_path: Path, n_threads: int):  # type: ignore[no-untyped-def]
    """A plain ``llama_cpp.Llama``, with the settings the guard found safe on this machine
    (the defaults crash llama.cpp on CPUs with AMX), as the engine loads it."""
    from autolabel.providers.llama_guard import choose_settings, load_llama

    settings = choose_settings(model_path).settings
    return load_llama(str(model_path), settings, n_ctx=2048, n_threads=n_threads, verbose=False)


def bench_bare(model_path: Path, prompts, labels, n_threads: int) -> tuple[float, list[str]]:
    """Per label, from scratch: eval the prompt, then each label token, reading the logits."""
    # logits_all=False: logits_all would copy n_tokens x n_vocab floats per eval, which is
    # far slower than this loop; the fair baseline reads the last row after each eval.
    llama = _bare_llama(model_path, n_threads)
    last_logprobs = _last_logprobs(llama)

    preds = []
    start = time.perf_counter()
    for text in prompts:
        scores = []
        prefix = llama.tokenize(text.encode(), add_bos=False, special=True)
        for label in labels:
            full = llama.tokenize((text + label + '"}').encode(), add_bos=False, special=True)
            k = 0
            while k < len(prefix) and prefix[k] == full[k]:
                k += 1
            llama.reset()  # no reuse: the whole prompt again for every label
            llama.eval(full[:k])
            total = 0.0
            for pos in range(k, len(full)):
                total += last_logprobs()[full[pos]]
                if pos + 1 < len(full):
                    llama.eval([full[pos]])
            scores.append(total)
        preds.append(labels[int(np.argmax(scores))])
    elapsed = time.perf_counter() - start
    llama.close()
    return elapsed, preds


def bench_bare_once(model_path: Path, prompts, labels, n_threads: int) -> tuple[float, list[str]]:
    """Per item, from scratch: eval the prompt once, then score each label after it."""
    llama = _bare_llama(model_path, n_threads)
    last_logprobs = _last_logprobs(llama)

    preds = []
    start = time.perf_counter()
    for text in prompts:
        prefix = llama.tokenize(text.encode(), add_bos=False, special=True)
        fulls = [
            llama.tokenize((text + label + '"}').encode(), add_bos=False, special=True)
            for label in labels
        ]
        # The longest token prefix every label continuation shares with the prompt.
        k = min(
            next(
                (i for i, (a, b) in enumerate(zip(prefix, f, strict=False)) if a != b),
                min(len(prefix), len(f)),
            )
            for f in fulls
        )
        llama.reset()  # nothing reused from the previous item
        llama.eval(prefix[:k])
        after_prompt = last_logprobs().copy()
        scores = []
        for full in fulls:
            llama.n_tokens = k  # back to the prompt; eval drops the KV cells after it
            total = after_prompt[full[k]]
            for pos in range(k + 1, len(full)):
                llama.eval([full[pos - 1]])
                total += last_logprobs()[full[pos]]
            scores.append(total)
        preds.append(labels[int(np.argmax(scores))])
    elapsed = time.perf_counter() - start
    llama.close()
    return elapsed, preds


async def bench_provider(provider: LocalProvider, requests) -> tuple[float, list[str]]:
    preds = []
    start = time.perf_counter()
    for req in requests:
        resp = await provider.complete(req)
        preds.append(json.loads(resp.samples[0].text)["label"])
    return time.perf_counter() - start, preds


def bench_pipeline(provider, ontology, items) -> tuple[float, list[str]] | None:
    try:
        from autolabel.engine.pipeline import LabelJob, run_job
        from autolabel.store.database import Database
        from autolabel.store.tables import Item, Prediction
    except ImportError as exc:
        print(f"(pipeline skipped: {exc})")
        return None
    from sqlmodel import select

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sst2.csv"
        with data.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "text"])
            for i, it in enumerate(items):
                w.writerow([f"i{i}", it["text"]])
        db = Database(f"sqlite:///{tmp}/bench.db")
        job = LabelJob(
            ontology=ontology, data=data, provider=provider, db=db, cache=None,
            id_column="id", concurrency=4, samples=1, progress=False,
        )  # fmt: skip
        start = time.perf_counter()
        run_job(job)
        elapsed = time.perf_counter() - start
        with db.session() as s:
            rows = s.exec(select(Item, Prediction).where(Prediction.item_id == Item.id)).all()
            by_ext = {item.external_id: pred.label for item, pred in rows}
        preds = [_label(by_ext.get(f"i{i}")) for i in range(len(items))]
    return elapsed, preds


def _label(value) -> str:  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return str(value)


TASKS = {
    "banking77": ("banking77.yaml", "banking77_test.csv", "label"),
    "goemotions": ("goemotions.yaml", "goemotions_test.jsonl", "labels"),
}


def load_task_items(task: str, n: int, split: str = "test") -> list[dict]:
    _, data, gold = TASKS[task]
    path = REPO / "eval" / "data" / data.replace("_test.", f"_{split}.")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    else:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    return [{"text": r["text"], "gold": r[gold]} for r in rows[:n]]


def _answer(resp):  # type: ignore[no-untyped-def]
    return json.loads(resp.samples[0].text)


def _scores(resp):  # type: ignore[no-untyped-def]
    """Multi-label: the label scores of one answer (P(applies), or listed shares)."""
    return resp.label_scores


async def _run(provider: LocalProvider, requests, read=_answer, **setting):  # type: ignore[no-untyped-def]
    """Run ``requests`` with provider options changed by ``setting`` (restored after);
    ``read`` picks what to keep of each response."""
    outs = []
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    with provider.using(**setting):
        for req in requests:
            resp = await provider.complete(req)
            outs.append(read(resp))
            print(".", end="", flush=True, file=sys.stderr)
    # CPU seconds too: on a shared, overloaded machine wall time mostly measures the queue.
    loads = f"{load:.1f}-{os.getloadavg()[0]:.1f}"
    return time.perf_counter() - start, time.process_time() - cpu, outs, loads


def _multi_label_quality(
    labels: list[str], preds: list[set], golds: list[set]
) -> tuple[float, float]:
    """Macro-F1 (the project's definition: labels seen in gold or predictions) and subset
    (exact-match) accuracy."""
    from autolabel.evaluation.metrics import multilabel_metrics

    m = multilabel_metrics([sorted(g) for g in golds], [sorted(p) for p in preds], labels)
    return m.macro.f1, m.subset_accuracy


def bench_multi_label(
    task: str, provider: LocalProvider, n: int, n_dev: int, n_slow: int, n_seq: int
) -> None:
    """Multi-label: the listed rule fitted on the dev file, reported on the test slice,
    against the yes/no questions (batched, and one by one)."""
    from autolabel.engine.confidence import listed_decision
    from autolabel.evaluation.multilabel_rule import fit_listed_rule
    from autolabel.ontology.schema import MultiLabelScoring

    shipped = load_ontology(REPO / "ontologies" / TASKS[task][0])
    listed = shipped.model_copy(update={"multi_label": MultiLabelScoring(method="listed")})
    questions = shipped.model_copy(update={"multi_label": None})
    test = load_task_items(task, n)
    dev = load_task_items(task, n_dev, split="dev")
    labels = list(shipped.label_names)

    def reqs(ontology, items):  # type: ignore[no-untyped-def]
        compiler = PromptCompiler(ontology)
        return [ProviderRequest(compiler.compile({"text": it["text"]})) for it in items]

    def row(name: str, k: int, loads: str, elapsed: float, cpu: float, quality: str) -> None:
        k = max(1, k)
        print(f"{name:<40}{k:>6}{loads:>10}{elapsed / k:>8.2f}{cpu / k:>11.2f}  {quality}")

    def decide(ontology, scores):  # type: ignore[no-untyped-def]
        return [set(listed_decision(ontology, sc).label) for sc in scores]

    print(f"\n## {task}: {len(labels)} labels, multi-label, {n} test items, {len(dev)} dev items")
    print(f"{'method':<40}{'items':>6}{'load':>10}{'s/item':>8}{'cpu s/item':>11}  quality")
    asyncio.run(_run(provider, reqs(listed, dev[-1:]), _scores))  # warm-up: the label list
    # Dev: every label's raw share, for the rule (no correction yet).
    el, cpu, dev_scores, loads = asyncio.run(_run(provider, reqs(listed, dev), _scores))
    dev_golds = [set(it["gold"]) for it in dev]
    f1, subset = _multi_label_quality(labels, decide(listed, dev_scores), dev_golds)
    row("listed (dev)", len(dev), loads, el, cpu, f"likeliest only: {f1:.3f}, {subset:.1%}")
    rule = fit_listed_rule(labels, dev_scores, [sorted(g) for g in dev_golds])
    fitted = listed.model_copy(
        update={
            "multi_label": MultiLabelScoring(
                method="listed", priors=rule.priors, relative_threshold=rule.relative_threshold
            )
        }
    )
    golds = [set(it["gold"]) for it in test]
    runs = {
        "engine: listed + dev rule": (fitted, n, {}),
        "questions, batched": (questions, n_slow, {}),
        "questions one by one": (questions, n_seq, {"batched": False}),
    }
    for name, (ontology, k, setting) in runs.items():
        if not k:
            continue
        elapsed, cpu, out, loads = asyncio.run(
            _run(provider, reqs(ontology, test[:k]), _scores, **setting)
        )
        if ontology.listed_scoring:
            preds = decide(ontology, out)
        else:
            preds = [{label for label, p in sc.items() if p >= 0.5} for sc in out]
        f1, subset = _multi_label_quality(labels, preds, golds[:k])
        row(name, k, loads, elapsed, cpu, f"macro-F1 {f1:.3f}, subset acc {subset:.1%}")
    print(
        f"dev rule: shares / mean share**{rule.power}, labels within "
        f"{rule.relative_threshold} of the top (dev macro-F1 {rule.macro_f1:.3f})"
    )


def bench_task(task: str, provider: LocalProvider, n: int, n_slow: int, n_seq: int) -> None:
    """One task section: the batched engine vs today's one-after-another scoring."""
    ontology = load_ontology(REPO / "ontologies" / TASKS[task][0])
    compiler = PromptCompiler(ontology)
    items = load_task_items(task, n)
    requests = [ProviderRequest(compiler.compile({"text": it["text"]})) for it in items]
    labels = list(ontology.label_names)
    print(f"\n## {task}: {len(labels)} labels, {ontology.task.value}, {n} items")
    print(f"{'method':<30}{'items':>6}{'load':>10}{'s/item':>8}{'cpu s/item':>11}  quality")
    # Warm-up: the system prompt (the label list) is decoded once and then reused by
    # every item, so no method pays for it inside the timing.
    asyncio.run(_run(provider, requests[-1:]))
    methods = {"engine": (n, {})}
    if ontology.task.value == "classify":
        # The previous engine: label-level bounding (the likeliest labels decoded whole).
        methods["previous (label bounding)"] = (n_slow, {"search": False})
    methods["today (one by one)"] = (n_seq, {"batched": False})
    rows = {}
    for name, (k, setting) in methods.items():
        if k:
            rows[name] = (k, *asyncio.run(_run(provider, requests[:k], **setting)))
    for name, (k, elapsed, cpu, outs, loads) in rows.items():
        gold = [it["gold"] for it in items[:k]]
        if "label" in (outs[0] if outs else {}):
            acc = sum(o["label"] == g for o, g in zip(outs, gold, strict=True)) / k
            quality = f"accuracy {acc:.1%}"
            same = sum(a == b for a, b in zip(outs, rows["engine"][3], strict=False))
            if name != "engine":  # the engine on the same items, like for like
                first = rows["engine"][3][:k]
                eng = sum(o["label"] == g for o, g in zip(first, gold, strict=True)) / k
                quality += f" (engine on these {k}: {eng:.1%}; same label {same}/{k})"
        else:
            preds = [set(o["labels"]) for o in outs]
            golds = [set(g) for g in gold]
            f1, subset = _multi_label_quality(labels, preds, golds)
            quality = f"macro-F1 {f1:.3f}, subset acc {subset:.1%}"
        print(f"{name:<30}{k:>6}{loads:>10}{elapsed / k:>8.2f}{cpu / k:>11.2f}  {quality}")


def _span_f1(preds: list[set], golds: list[set]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 of exact (start, end, type) matches."""
    tp = sum(len(p & g) for p, g in zip(preds, golds, strict=True))
    n_pred, n_gold = sum(map(len, preds)), sum(map(len, golds))
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return prec, rec, (2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)


def bench_spans(provider: LocalProvider, args: argparse.Namespace) -> None:
    """WNUT-17: copy-only span decoding (engine) vs GBNF grammar sampling (today)."""
    from autolabel.errors import AnswerError
    from autolabel.ontology.answers import parse_answer

    ontology = load_ontology(REPO / "ontologies" / f"{args.ontology or 'wnut17'}.yaml")
    compiler = PromptCompiler(ontology, template=args.template)
    path = REPO / "eval" / "data" / f"wnut17_{args.split}.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x][: args.n]
    requests = [
        ProviderRequest(compiler.compile({"text": r["text"]}), max_tokens=256) for r in rows
    ]
    golds = [{(s["start"], s["end"], s["label"]) for s in r["spans"]} for r in rows]

    async def run(copy: bool, k: int):  # type: ignore[no-untyped-def]
        preds, invalid = [], 0
        start, cpu = time.perf_counter(), time.process_time()
        for req, row in zip(requests[:k], rows[:k], strict=False):
            with provider.using(copy_spans=copy):
                resp = await provider.complete(req)
            try:
                spans = parse_answer(ontology, resp.samples[0].text, {"text": row["text"]})
            except AnswerError:  # the engine would re-ask; here it counts as no entities
                spans, invalid = [], invalid + 1
            preds.append({(s["start"], s["end"], s["label"]) for s in spans})
            # One line per item: on a starved machine a partial run still says something.
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            f1 = _span_f1(preds, golds[: len(preds)])[2]
            n = len(preds)
            print(
                f"  {'engine' if copy else 'today'} {n}/{k}: {wall / n:.1f} s/item"
                f", {used / n:.1f} cpu s/item, F1 so far {f1:.3f}",
                flush=True,
                file=sys.stderr,
            )
        return time.perf_counter() - start, time.process_time() - cpu, preds, invalid

    label = f"{ontology.name}/{args.template or 'spans'}"
    print(f"\n## wnut17 ({args.split}, prompt {label}, load avg {os.getloadavg()[0]:.1f})")
    asyncio.run(run(True, 1))  # warm-up: the system prompt is decoded once, then reused
    results = {"engine (copy-only)": (len(rows), *asyncio.run(run(True, len(rows))))}
    if args.n_slow != 0:
        k = min(args.n_slow or len(rows), len(rows))
        results["today (GBNF grammar)"] = (k, *asyncio.run(run(False, k)))
    print(f"{'method':<24}{'items':>6}{'s/item':>9}{'cpu s/item':>11}   entity P / R / F1")
    for name, (k, elapsed, cpu, preds, invalid) in results.items():
        p, r, f1 = _span_f1(preds, golds[:k])
        quality = f"{p:.2f} / {r:.2f} / {f1:.3f}"
        if k < len(rows):  # the engine on the same items, like for like
            _, _, f1_same = _span_f1(results["engine (copy-only)"][3][:k], golds[:k])
            quality += f" (engine on these {k}: F1 {f1_same:.3f})"
        if invalid:
            quality += f", {invalid} invalid"
        print(f"{name:<24}{k:>6}{elapsed / k:>9.2f}{cpu / k:>11.2f}   {quality}")
    print(f"(load avg after: {os.getloadavg()[0]:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--task", choices=["sst2", *TASKS, "wnut17", "all"], default="sst2")
    ap.add_argument("--n-slow", type=int, default=None, help="items, slower methods (0: none)")
    ap.add_argument("--n-dev", type=int, default=40, help="multi-label dev items (thresholds)")
    ap.add_argument("--n-seq", type=int, default=None, help="items, one by one (default n-slow)")
    ap.add_argument("--split", choices=["dev", "test"], default="test", help="wnut17 slice")
    ap.add_argument("--template", default=None, help="wnut17: prompt template (prompts/*.j2)")
    ap.add_argument("--ontology", default=None, help="wnut17: e.g. wnut17_fewshot")
    args = ap.parse_args()
    if args.task == "wnut17":
        provider = LocalProvider(
            resolve_model(args.model), model_name=args.model, n_ctx=2048, n_threads=args.threads
        )
        bench_spans(provider, args)
        return
    if args.task != "sst2":
        provider = LocalProvider(
            resolve_model(args.model), model_name=args.model, n_ctx=2048, n_threads=args.threads
        )
        for task in TASKS if args.task == "all" else [args.task]:
            n_slow = args.n if args.n_slow is None else args.n_slow
            n_seq = n_slow if args.n_seq is None else args.n_seq
            if TASKS[task][2] == "labels":
                bench_multi_label(task, provider, args.n, args.n_dev, n_slow, n_seq)
            else:
                bench_task(task, provider, args.n, n_slow, n_seq)
        if args.task != "all":
            return

    ontology = load_ontology(REPO / "ontologies" / "sst2.yaml")
    compiler = PromptCompiler(ontology)
    items = load_items(args.n)
    gold = [it["gold"] for it in items]
    path = resolve_model(args.model)
    provider = LocalProvider(path, model_name=args.model, n_ctx=2048, n_threads=args.threads)
    requests = [ProviderRequest(compiler.compile({"text": it["text"]})) for it in items]
    rt = provider.runtime
    prompts = [rt.chat_text(r.messages()) + r.prompt.answer_prefix for r in requests]
    labels = list(ontology.label_names)

    results: dict[str, tuple[float, list[str]]] = {}
    results["bare llama.cpp"] = bench_bare(path, prompts, labels, args.threads)
    results["bare-once"] = bench_bare_once(path, prompts, labels, args.threads)
    results["LocalProvider"] = asyncio.run(bench_provider(provider, requests))
    if not args.skip_pipeline:
        piped = bench_pipeline(provider, ontology, items)
        if piped is not None:
            results["run_job"] = piped

    n = len(items)
    base = n / results["bare llama.cpp"][0]
    print(f"\nmodel {args.model}, {n} SST-2 dev items, {args.threads} threads")
    print("vs bare: ratio to the per-label bare loop; vs once: to the fair bare-once loop")
    once = n / results["bare-once"][0]
    print(f"{'method':<16}{'items/s':>9}{'s/item':>9}{'vs bare':>9}{'vs once':>9}{'accuracy':>10}")
    for name, (elapsed, preds) in results.items():
        rate = n / elapsed
        acc = sum(p == g for p, g in zip(preds, gold, strict=True)) / n
        print(
            f"{name:<16}{rate:>9.2f}{elapsed / n:>9.2f}{rate / base:>8.2f}x"
            f"{rate / once:>8.2f}x{acc:>10.1%}"
        )


if __name__ == "__main__":
    main()
