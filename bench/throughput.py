"""Throughput of the labeling engine against an OpenAI-protocol endpoint with fixed latency.

Starts the fake OpenAI server (``autolabel.testing.openai_server``) in its own process,
so it does not share this process's CPU/GIL, and prints, per concurrency:

- the engine's items/s (``run_job`` on a generated classify dataset, no cache, SQLite);
- a bare ``AsyncOpenAI`` loop's items/s at the same concurrency (the baseline);
- the Little's-law ideal, concurrency / latency;
- the ratios, the engine's overhead per item (wall ms, and client CPU ms);

then a latency-1s case at concurrency 16 (where CPU is not the bound: target >= 0.9x
ideal), and the peak memory (RSS high-water mark) of a whole run at a small and a
large item count, each in a fresh process (memory should be flat in the item count).

    python bench/throughput.py                 # full run (100k-item memory case: minutes)
    python bench/throughput.py --quick         # < 2 minutes
    python bench/throughput.py --latency 0.05 --items 2000 --concurrency 16,64,256
    python bench/throughput.py --engine ray    # local engine vs Ray with 1 and 2 actors

With ``--engine ray`` it starts a local Ray runtime (needs ``autolabel[ray]``) and runs
the same job on the local engine and on Ray with 1 and 2 labeling actors, at two item
counts: items/s at the larger count, and the per-item CPU cost of each path as the
slope between the two counts (so Ray's fixed start-up — actor processes, imports — is
not charged per item). CPU is that of the whole process tree (driver, Ray's daemons,
its workers and actors, reaped children included), less the fake server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.openai import _HTTP, async_http_client

ONTOLOGY = Ontology(
    name="bench_sentiment",
    task="classify",
    description="Sentiment of a product review.",
    labels=[
        {"name": "positive", "description": "the reviewer likes the product"},
        {"name": "negative", "description": "the reviewer dislikes the product"},
        {"name": "neutral", "description": "neither"},
    ],
)
_WORDS = ["positive", "negative", "neutral", "mixed"]


def write_dataset(path: Path, n: int) -> Path:
    """A JSONL file of ``n`` distinct short reviews (a keyword picks the fake's label)."""
    with path.open("w") as f:
        for i in range(n):
            text = f"review {i}: the product felt {_WORDS[i % 4]} after {i % 97} days of use"
            f.write(json.dumps({"id": f"r{i}", "text": text}) + "\n")
    return path


# -- the server, in its own process ---------------------------------------------------------


@contextmanager
def fake_server(latency: float):
    proc = subprocess.Popen(
        [sys.executable, "-m", "autolabel.testing", "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split()[-1]
    finally:
        if proc.stdin:
            proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the baseline: a bare AsyncOpenAI loop ----------------------------------------------------


@dataclass
class Result:
    items: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.items / self.wall_s


async def _bare(url: str, n: int, concurrency: int, default_client: bool = False) -> int:
    compiler = PromptCompiler(ONTOLOGY)
    # The same HTTP stack the provider uses (httpx2 on openai>=3; see async_http_client),
    # or, with ``default_client``, whatever AsyncOpenAI builds when given none.
    http = None if default_client else async_http_client(concurrency, 60.0)
    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, http_client=http)
    counter = iter(range(n))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in counter:
            text = f"review {i}: the product felt {_WORDS[i % 4]} after {i % 97} days of use"
            prompt = compiler.compile({"text": text})
            # The same request the provider sends: strict json_schema + logprobs.
            resp = await client.chat.completions.create(
                model="fake-model",
                messages=prompt.messages,  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=512,
                seed=0,
                logprobs=True,
                top_logprobs=5,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": prompt.schema, "strict": True},
                },
            )
            json.loads(resp.choices[0].message.content or "")
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return done


def run_bare(url: str, n: int, concurrency: int, default_client: bool = False) -> Result:
    w0, c0 = time.perf_counter(), time.process_time()
    done = asyncio.run(_bare(url, n, concurrency, default_client))
    return Result(done, time.perf_counter() - w0, time.process_time() - c0)


# -- the engine -----------------------------------------------------------------------------


def engine_available() -> bool:
    try:
        import autolabel.engine.pipeline  # noqa: F401
    except ImportError:
        return False
    return True


def make_job(url: str, n: int, concurrency: int, workdir: Path, **options: Any) -> Any:
    """A LabelJob over ``n`` fresh items against the server at ``url``, in a new SQLite file."""
    from autolabel.engine.pipeline import LabelJob
    from autolabel.providers.openai import OpenAIProvider
    from autolabel.store.database import Database

    tag = f"{n}_{concurrency}_{time.monotonic_ns()}"
    data = write_dataset(workdir / f"items_{tag}.jsonl", n)
    db = Database(f"sqlite:///{workdir / f'bench_{tag}.db'}")
    provider = OpenAIProvider("fake-model", base_url=url, max_connections=max(concurrency, 16))
    return LabelJob(
        ontology=ONTOLOGY,
        data=data,
        provider=provider,
        db=db,
        cache=None,
        concurrency=concurrency,
        id_column="id",
        progress=False,
        **options,
    )


def check_all_labeled(summary: Any, n: int) -> None:
    if summary.n_labeled != n:
        raise RuntimeError(f"labeled {summary.n_labeled} of {n} ({summary.n_failed} failed)")


def run_engine(url: str, n: int, concurrency: int, workdir: Path) -> Result:
    from autolabel.engine.pipeline import run_job

    job = make_job(url, n, concurrency, workdir)
    w0, c0 = time.perf_counter(), time.process_time()
    summary = run_job(job)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    check_all_labeled(summary, n)
    return Result(n, wall, cpu)


# -- the Ray engine -----------------------------------------------------------------------------


def _tree_cpu_s(exclude: set[int]) -> float:
    """CPU seconds spent on items: this process and its Ray workers (Linux /proc).

    Counted: this process (the driver, or the local engine), every live Ray worker or
    actor (``ray::…``), and the workers that already exited (reaped by the raylet, so
    in its cutime/cstime). Not counted: the fake server and Ray's daemons' own time
    (GCS, raylet, monitors), which poll at a rate set by the clock, not by the items,
    and on a cluster run on the head node.
    """
    procs: dict[int, tuple[int, bytes, list[int]]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry.name)] = (int(fields[1]), cmd, [int(x) for x in fields[11:15]])
    me = os.getpid()
    total = 0
    for pid, (_, cmd, (ut, st, cut, cst)) in procs.items():
        p = pid
        while p not in (0, 1, me) and p not in exclude:
            p = procs[p][0] if p in procs else 0
        if p != me:
            continue  # not ours, or the server's tree
        if pid == me or cmd.startswith(b"ray::"):
            total += ut + st + cut + cst
        elif b"/raylet" in cmd.split(b"\0")[0]:
            total += cut + cst  # exited workers and actors
    return total / tick


def run_job_measured(url: str, n: int, concurrency: int, workdir: Path, actors: int, server: int):
    """One job (``actors`` 0 = the local engine): (wall s, tree CPU s)."""
    from autolabel.engine.pipeline import run_job
    from autolabel.scaleout.driver import run_job_on_ray

    # Ray's batch is the unit of commit and of retry: the local engine commits alike.
    job = make_job(url, n, concurrency, workdir, commit_every=256)
    w0, c0 = time.perf_counter(), _tree_cpu_s({server})
    summary = run_job(job) if actors == 0 else run_job_on_ray(job, actors=actors)
    wall, cpu = time.perf_counter() - w0, _tree_cpu_s({server}) - c0
    check_all_labeled(summary, n)
    return wall, cpu


def ray_section(args: argparse.Namespace) -> None:
    from autolabel.scaleout import ray_available
    from autolabel.scaleout.driver import init_ray

    if not ray_available():
        print("ray is not installed: pip install 'autolabel[ray]'")
        return
    small, large = (int(x) for x in args.ray_items.split(","))
    c = int(args.concurrency.split(",")[0])
    print(
        f"\n== local engine vs Ray, latency {args.latency * 1000:.0f} ms, concurrency {c} "
        f"(per actor), items {small} and {large}, best of {args.repeat} =="
    )
    with fake_server(args.latency) as url, tempfile.TemporaryDirectory() as tmp:
        server = _server_pid()
        run_bare(url, 32, 8)  # warm-up
        rows = []
        for actors in (0, 1, 2):
            if actors == 1:
                # The local engine ran before Ray existed: its daemons did not compete.
                t0 = time.perf_counter()
                init_ray(None)
                print(f"(local Ray runtime started in {time.perf_counter() - t0:.1f} s)")
                # Ray's first job starts its worker processes: not a per-job cost.
                t0 = time.perf_counter()
                run_job_measured(url, 64, c, Path(tmp), 2, server)
                print(f"(Ray warm-up job: {time.perf_counter() - t0:.1f} s)", flush=True)
            runs = {
                n: [
                    run_job_measured(url, n, c, Path(tmp), actors, server)
                    for _ in range(args.repeat)
                ]
                for n in (small, large)
            }
            rows.append((actors, runs))
        print(
            _row("engine", "items/s", "steady/s", "ideal/s", "wall s", "cpu s", "cpu ms/item")
            + _row("vs local")
        )
        local_slope = None
        for actors, runs in rows:
            name = "local" if actors == 0 else f"ray x{actors}"
            best = {n: min(r, key=lambda x: x[0]) for n, r in runs.items()}
            cpu_small = min(cpu for _, cpu in runs[small])
            cpu_large = min(cpu for _, cpu in runs[large])
            slope = (cpu_large - cpu_small) / (large - small) * 1000
            local_slope = local_slope or slope
            wall, cpu = best[large]
            # The rate once running: the extra items over the extra time (start-up excluded).
            steady = (large - small) / max(wall - best[small][0], 1e-9)
            ideal = c * max(actors, 1) / args.latency
            print(
                _row(name, f"{large / wall:.1f}", f"{steady:.1f}", f"{ideal:.0f}")
                + _row(f"{wall:.2f}", f"{cpu:.2f}", f"{slope:.2f}", f"{slope / local_slope:.2f}x"),
                flush=True,
            )
            fixed = cpu_small - slope * small / 1000
            print(
                f"{'':>11} per job: {best[small][0]:.1f} s wall for {small} items, "
                f"fixed CPU (intercept) {fixed:.2f} s; cpu ms/item at {large}: "
                f"{cpu / large * 1000:.2f}",
                flush=True,
            )


def _server_pid() -> int:
    """The fake server's pid, a child of this process (its CPU is the endpoint's)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if b"autolabel.testing" in cmd and ppid == os.getpid():
                return int(entry.name)
    raise RuntimeError("the fake server process was not found")


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def memory_child(n: int, latency: float, concurrency: int) -> None:
    """Run one engine job in this (fresh) process and print its peak RSS as JSON."""
    with fake_server(latency) as url, tempfile.TemporaryDirectory() as tmp:
        baseline = _peak_rss_mb()
        res = run_engine(url, n, concurrency, Path(tmp))
        print(
            json.dumps(
                {"items": n, "rate": res.rate, "peak_mb": _peak_rss_mb(), "start_mb": baseline}
            )
        )


def measure_memory(n: int, latency: float, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--_memory-child",
            str(n),
            "--latency",
            str(latency),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory run for {n} items failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report ---------------------------------------------------------------------------------


def _row(*cells: Any) -> str:
    return " ".join(f"{c!s:>11}" for c in cells)


def _best(results: list[Result]) -> Result:
    """Best of the repeats: on a shared machine, noise only ever slows a run down."""
    return max(results, key=lambda r: r.rate)


def _pair(
    url: str, n: int, c: int, repeat: int, engine: bool, tmp: Path
) -> tuple[Result, Result | None]:
    """Bare and engine runs, interleaved so drifting machine load hits both alike."""
    bares: list[Result] = []
    engines: list[Result] = []
    for _ in range(repeat):
        bares.append(run_bare(url, n, c))
        if engine:
            engines.append(run_engine(url, n, c, tmp))
    return _best(bares), (_best(engines) if engines else None)


def throughput_section(args: argparse.Namespace, levels: list[int], engine: bool) -> None:
    print(f"\n== latency {args.latency * 1000:.0f} ms (best of {args.repeat}) ==")
    head = ["concurrency", "items", "ideal/s", "bare/s", "engine/s", "bare/ideal"]
    head += ["engine/bare", "ovh ms/item", "cpu ms bare", "cpu ms eng"]
    print(_row(*head))
    with fake_server(args.latency) as url, tempfile.TemporaryDirectory() as tmp:
        run_bare(url, 32, 8)  # warm up imports, the server and the connection path
        for c in levels:
            n = args.items or (10 if args.quick else 40) * c
            ideal = c / args.latency
            bare, eng = _pair(url, n, c, args.repeat, engine, Path(tmp))
            cells: list[Any] = [c, n, f"{ideal:.1f}", f"{bare.rate:.1f}"]
            if eng is not None:
                # Wall-clock overhead per item; when CPU-bound it equals extra CPU per item.
                overhead_ms = (1 / eng.rate - 1 / bare.rate) * 1000
                cells += [f"{eng.rate:.1f}", f"{bare.rate / ideal:.2f}x"]
                cells += [f"{eng.rate / bare.rate:.2f}x", f"{overhead_ms:.2f}"]
                cells += [f"{bare.cpu_s / n * 1000:.2f}", f"{eng.cpu_s / n * 1000:.2f}"]
            else:
                cells += ["-", f"{bare.rate / ideal:.2f}x", "-", "-"]
                cells += [f"{bare.cpu_s / n * 1000:.2f}", "-"]
            print(_row(*cells), flush=True)
        if args.default_client:
            for c in levels:
                n = args.items or (10 if args.quick else 40) * c
                d = _best([run_bare(url, n, c, default_client=True) for _ in range(args.repeat)])
                print(
                    f"  bare loop with AsyncOpenAI's default HTTP client, c={c}: {d.rate:.1f}/s "
                    f"({d.cpu_s / n * 1000:.2f} cpu ms/item)",
                    flush=True,
                )


def slow_section(args: argparse.Namespace, engine: bool) -> None:
    c = 16
    print(f"\n== latency {args.slow_latency * 1000:.0f} ms, concurrency {c} (not CPU-bound) ==")
    with fake_server(args.slow_latency) as url, tempfile.TemporaryDirectory() as tmp:
        ideal = c / args.slow_latency
        run_bare(url, c, c)  # warm-up
        bare, eng = _pair(url, args.slow_items, c, args.repeat, engine, Path(tmp))
        line = (
            f"items {args.slow_items}  ideal {ideal:.1f}/s  "
            f"bare {bare.rate:.1f}/s ({bare.rate / ideal:.2f}x ideal)"
        )
        if eng is not None:
            line += f"  engine {eng.rate:.1f}/s ({eng.rate / ideal:.2f}x ideal, target >= 0.90x)"
        print(line, flush=True)


def memory_section(args: argparse.Namespace) -> None:
    small, large = (int(x) for x in args.mem_items.split(","))
    print(
        f"\n== peak RSS, latency {args.mem_latency * 1000:.0f} ms, "
        f"concurrency {args.mem_concurrency}, fresh process each =="
    )
    for n in (small, large):
        m = measure_memory(n, args.mem_latency, args.mem_concurrency)
        print(
            f"items {n:>7}  peak RSS {m['peak_mb']:7.1f} MB  "
            f"(high-water mark before the run {m['start_mb']:.1f} MB)  {m['rate']:.0f} items/s",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, seconds")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated levels")
    parser.add_argument("--items", type=int, default=0, help="items per run (default: 40 x c)")
    parser.add_argument("--repeat", type=int, default=0, help="runs per case, best kept")
    parser.add_argument("--slow-latency", type=float, default=1.0)
    parser.add_argument("--slow-items", type=int, default=160)
    parser.add_argument("--mem-items", default="1000,100000", help="small,large item counts")
    parser.add_argument("--mem-latency", type=float, default=0.002)
    parser.add_argument("--mem-concurrency", type=int, default=128)
    parser.add_argument(
        "--only", choices=["throughput", "slow", "memory"], help="run one section only"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--default-client",
        action="store_true",
        help="also time the bare loop with AsyncOpenAI's own default HTTP client",
    )
    parser.add_argument("--skip-engine", action="store_true", help="baseline only")
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: compare the local engine with Ray (1 and 2 actors) instead",
    )
    parser.add_argument("--ray-items", default="300,2000", help="small,large item counts (ray)")
    parser.add_argument("--quick", action="store_true", help="small sizes: < 2 minutes")
    parser.add_argument("--_memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]

    if args._memory_child:
        # measure_memory passes the memory case's latency and concurrency as the usual flags.
        memory_child(args._memory_child, args.latency, levels[0])
        return
    if args.quick:
        args.slow_items = 48
        args.mem_items = "500,5000"
    args.repeat = args.repeat or (1 if args.quick else 3)
    engine = engine_available() and not args.skip_engine
    if not engine:
        print("(engine not available: baseline only)")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, openai {openai.__version__} "
        f"over {_HTTP.__name__} {_HTTP.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    if args.engine == "ray":
        ray_section(args)
        return
    if args.only in (None, "throughput"):
        throughput_section(args, levels, engine)
    if args.only in (None, "slow"):
        slow_section(args, engine)
    if engine and (args.only == "memory" or (args.only is None and not args.skip_memory)):
        memory_section(args)
    print(f"\n(load average at the end {os.getloadavg()[0]:.1f}; numbers are noisy when > CPUs)")


if __name__ == "__main__":
    main()
