"""What the AMX guard's settings cost: default vs safe llama.cpp model params, same items.

The guard (src/autolabel/providers/llama_guard.py) loads with ``use_extra_bufts=false``
only where the default settings crash a probe. This script measures what that choice
costs on this machine, on the embedded provider's real path (LocalProvider), for
SST-2 (2 labels) and BANKING77 (77 labels) shipped eval slices. Each setting runs in
its own child process (one loaded model per process, ``AUTOLABEL_LLAMA_SAFE=0|1``),
one after the other, so they never share the cores.

Usage: .venv/bin/python bench/llama_settings.py [--model qwen2.5-coder-1.5b] [--n 20]
Prints s/item and accuracy per setting and task, and the verdict the guard chose here.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

TASKS = {
    "sst2": ("ontologies/sst2.yaml", "eval/data/sst2_dev.csv"),
    "banking77": ("ontologies/banking77.yaml", "eval/data/banking77_test.csv"),
}


def _child(model: str, n: int, threads: int) -> dict[str, dict[str, float]]:
    from autolabel.ontology.compiler import PromptCompiler
    from autolabel.ontology.loader import load_ontology
    from autolabel.providers.base import ProviderRequest
    from autolabel.providers.local import LocalProvider
    from autolabel.providers.models import resolve_model

    path = resolve_model(model)
    load_start = time.perf_counter()
    provider = LocalProvider(path, model_name=model, n_ctx=2048, n_threads=threads)
    out: dict[str, dict[str, float]] = {"load": {"seconds": time.perf_counter() - load_start}}
    for task, (onto_path, data_path) in TASKS.items():
        ontology = load_ontology(REPO / onto_path)
        compiler = PromptCompiler(ontology)
        with (REPO / data_path).open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        # Spread over the file: BANKING77's rows are grouped by class.
        step = max(1, len(rows) // n)
        rows = rows[::step][:n]

        async def run(rows=rows, compiler=compiler) -> tuple[float, float, int]:
            right = 0
            start, cpu_start = time.perf_counter(), time.process_time()
            for row in rows:
                resp = await provider.complete(ProviderRequest(compiler.compile(row)))
                right += json.loads(resp.samples[0].text)["label"] == row["label"]
            return time.perf_counter() - start, time.process_time() - cpu_start, right

        elapsed, cpu, right = asyncio.run(run())
        out[task] = {
            "s_per_item": elapsed / len(rows),
            # CPU seconds are less disturbed than wall time when the machine is shared.
            "cpu_s_per_item": cpu / len(rows),
            "accuracy": right / len(rows),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.model, args.n, args.threads)))
        return

    from autolabel.providers.llama_guard import build_info, choose_settings, cpu_flags
    from autolabel.providers.models import resolve_model

    verdict = choose_settings(resolve_model(args.model))
    build = build_info()
    amx = [f for f in cpu_flags() if f.startswith("amx")]
    print(f"llama-cpp-python {build.version}; CPU AMX flags: {', '.join(amx) or 'none'}")
    print(f"guard's choice here: {verdict.settings.describe()}")
    print(f"  ({verdict.source}: {verdict.reason})")
    results = {}
    for name, flag in (("default", "0"), ("safe", "1")):
        env = {**os.environ, "AUTOLABEL_LLAMA_SAFE": flag}
        cmd = [sys.executable, __file__, "--child", "--model", args.model, "--n", str(args.n)]
        cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nmodel {args.model}, {args.n} items per task, {args.threads} threads")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    head = f"{'settings':<10}{'load s':>8}{'task':>11}{'s/item':>9}{'cpu s/item':>12}"
    print(head + f"{'accuracy':>10}")
    for name, res in results.items():
        for task in TASKS:
            r = res[task]
            print(
                f"{name:<10}{res['load']['seconds']:>8.2f}{task:>11}{r['s_per_item']:>9.2f}"
                f"{r['cpu_s_per_item']:>12.2f}{r['accuracy']:>10.1%}"
            )


if __name__ == "__main__":
    main()
