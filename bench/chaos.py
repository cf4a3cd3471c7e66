"""Chaos: kill, fault and interrupt the real CLI and count what survives.

Three phases, each against the loopback OpenAI-protocol server (in this process) and
the real CLI in subprocesses, on SQLite or on the PostgreSQL given with ``--db``:

1. **SIGKILL resume**: a ``label`` of ``--items`` items is SIGKILLed at ``--kills``
   random moments (startup, schema creation and lease taking included) and started
   again each time; then it runs to the end.
2. **Fault storm**: ~30% of requests get a 429 with Retry-After, a 500/503, a hung
   connection (past the client timeout), truncated JSON, or a label outside the set.
3. **Reviewer killed mid-decision**: a reviewer process decides tasks in a loop and
   prints each decision once ``decide`` returned; it is SIGKILLed at random moments.

Prints: kills survived, faults injected, items lost, duplicates, acknowledged
decisions lost, and tracebacks seen in any process's output (all but the first two
must be 0).

    python bench/chaos.py                          # 2,000 items, 20 kills (minutes)
    python bench/chaos.py --items 200 --kills 3 --storm-items 100 --decisions-kills 2
    python bench/chaos.py --db postgresql+psycopg://user@127.0.0.1:5432/chaos
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from autolabel.store import Database
from autolabel.store.tables import Decision, Prediction, Run
from autolabel.testing import FakeOpenAIServer
from autolabel.testing.openai_server import (
    chat_reply,
    default_responder,
    error_reply,
    hang_reply,
    raw_reply,
)

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    kills: int = 0
    kills_survived: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    items: int = 0
    items_lost: int = 0
    duplicates: int = 0
    export_rows: int = 0
    storm_items: int = 0
    storm_labeled: int = 0
    storm_failed_with_reason: int = 0
    storm_unaccounted: int = 0
    storm_exit: int | None = None
    reviewer_kills: int = 0
    decisions_acknowledged: int = 0
    decisions_lost: int = 0
    tracebacks: int = 0
    notes: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not (
            self.items_lost
            or self.duplicates
            or self.storm_unaccounted
            or self.decisions_lost
            or self.tracebacks
            or self.storm_exit not in (0, None)
        )


def _data(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(n):
            mood = rng.choice(["positive", "negative", "so-so"])
            w.writerow([f"c{i}", f"review {i}: a {mood} film, {rng.random():.6f}"])
    return path


class CLI:
    """Runs ``autolabel`` subprocesses and counts tracebacks in everything they print."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.n = 0
        self.tracebacks = 0

    def start(self, *args: str, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        self.n += 1
        log = (self.logdir / f"p{self.n}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "autolabel.cli.main", *args],
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = Path(log.name)  # type: ignore[attr-defined]
        log.close()
        return proc

    def finish(self, proc, timeout: float = 900) -> int:  # type: ignore[no-untyped-def]
        rc = proc.wait(timeout=timeout)
        out = proc.log_path.read_text(errors="replace")
        self.tracebacks += out.count("Traceback")
        return rc

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
        proc = self.start(*args, extra_env=extra_env)
        rc = self.finish(proc)
        return rc, proc.log_path.read_text(errors="replace")


def _count(db: Database, stmt: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def phase_kills(fig: Figures, cli: CLI, db: Database, args: argparse.Namespace, tmp: Path) -> int:
    data = _data(tmp / "chaos.csv", args.items, args.seed)
    rng = random.Random(args.seed)
    fig.items = args.items
    with FakeOpenAIServer(latency_s=args.latency, record=False) as srv:
        label = ["label", "sst2", str(data), "--base-url", srv.base_url, "--model", "m"]
        label += ["--no-cache", "--quiet", "--concurrency", "16"]
        while fig.kills < args.kills:
            proc = cli.start(*label)
            time.sleep(rng.uniform(0.2, args.max_kill_delay))
            if proc.poll() is not None:  # finished before the kill: the job is done
                cli.finish(proc)
                fig.notes.append(f"the run completed after {fig.kills} kills")
                break
            proc.send_signal(signal.SIGKILL)
            cli.finish(proc)
            fig.kills += 1
        rc, out = cli.run(*label)
        if rc == 0:
            fig.kills_survived = fig.kills
        else:
            fig.notes.append(f"final resume exited {rc}: {out[-400:]}")
    with db.engine.connect() as conn:
        runs = conn.execute(select(Run.id, Run.status)).all()
        run_id = runs[-1][0] if runs else 0
        good, total, distinct = conn.execute(
            select(
                func.count(Prediction.id).filter(Prediction.error.is_(None)),  # type: ignore[union-attr]
                func.count(Prediction.id),
                func.count(func.distinct(Prediction.item_id)),
            ).where(Prediction.run_id == run_id)
        ).one()
    if len(runs) != 1:
        fig.notes.append(f"{len(runs)} runs for one job: {runs}")
    fig.items_lost = args.items - int(good)
    fig.duplicates = int(total) - int(distinct)
    out_file = tmp / "export.jsonl"
    rc, _ = cli.run("export", str(run_id), "-o", str(out_file))
    fig.export_rows = sum(1 for _ in out_file.open()) if rc == 0 and out_file.exists() else -1
    if fig.export_rows != args.items:
        fig.notes.append(f"export has {fig.export_rows} rows for {args.items} items")
    return run_id


def _storm_responder(rng: random.Random, faults: dict[str, int], rate: float):  # type: ignore[no-untyped-def]
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Any:
        with lock:
            roll = rng.random()
            kind = rng.choice(["429", "500", "503", "hang", "truncated", "bad_label"])
        if roll >= rate:
            return default_responder(request)
        with lock:
            faults[kind] = faults.get(kind, 0) + 1
        if kind == "429":
            return error_reply(429, "slow down", headers={"Retry-After": "0.1"})
        if kind in ("500", "503"):
            return error_reply(int(kind), "the fake server failed on purpose")
        if kind == "hang":
            return hang_reply(3.0)  # past the 1 s client timeout set below
        if kind == "truncated":
            return raw_reply(200, '{"id": "chatcmpl-x", "object": "chat.completion", "choi')
        return chat_reply(request, '{"label": "banana"}')

    return respond


def phase_storm(fig: Figures, cli: CLI, db: Database, args: argparse.Namespace, tmp: Path) -> None:
    data = _data(tmp / "storm.csv", args.storm_items, args.seed + 1)
    fig.storm_items = args.storm_items
    responder = _storm_responder(random.Random(args.seed), fig.faults, args.fault_rate)
    with FakeOpenAIServer(responder, latency_s=0.005, record=False) as srv:
        rc, out = cli.run(
            "label", "sst2", str(data), "--base-url", srv.base_url, "--model", "m",
            "--no-cache", "--quiet", "--concurrency", "16",
            extra_env={"AUTOLABEL_TIMEOUT_S": "1"},
        )  # fmt: skip
    fig.storm_exit = rc
    if rc != 0:
        fig.notes.append(f"storm run exited {rc}: {out[-600:]}")
    with db.engine.connect() as conn:
        run_id = conn.execute(select(func.max(Run.id))).scalar_one()
        rows = conn.execute(
            select(Prediction.error).where(Prediction.run_id == run_id)  # type: ignore[arg-type]
        ).all()
    fig.storm_labeled = sum(1 for (e,) in rows if e is None)
    fig.storm_failed_with_reason = sum(1 for (e,) in rows if e)
    fig.storm_unaccounted = args.storm_items - fig.storm_labeled - fig.storm_failed_with_reason


REVIEWER = """
import sys
from autolabel.store import Database
from autolabel.review.queue import ReviewQueue
q = ReviewQueue(Database(sys.argv[1]), lease_seconds=5)
while True:
    task = q.claim("chaos")
    if task is None:
        break
    label = task.suggestion or "positive"
    q.decide(task.task_id, "chaos", label)
    print(f"ACK {task.task_id}", flush=True)   # acknowledged: decide() returned
print("DONE", flush=True)
"""


def phase_reviewer(
    fig: Figures, cli: CLI, db: Database, args: argparse.Namespace, run_id: int, url: str
) -> None:
    rc, out = cli.run("route", str(run_id), "--threshold", "1.0")
    if rc != 0:
        fig.notes.append(f"route exited {rc}: {out[-300:]}")
        return
    rng = random.Random(args.seed + 2)
    acked: set[int] = set()
    for attempt in range(args.decisions_kills + 1):
        proc = subprocess.Popen(
            [sys.executable, "-c", REVIEWER, url],
            cwd=REPO,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        killer = None
        if attempt < args.decisions_kills:
            delay = rng.uniform(2.0, args.max_kill_delay + 2.0)
            killer = threading.Timer(delay, lambda p=proc: p.send_signal(signal.SIGKILL))
            killer.start()
        out, _ = proc.communicate(timeout=900)
        if killer is not None:
            killer.cancel()
            if proc.returncode == -signal.SIGKILL:
                fig.reviewer_kills += 1
        cli.tracebacks += out.count("Traceback")
        if "Traceback" in out:
            fig.notes.append(f"reviewer: {out[-500:]}")
        acked |= {int(line.split()[1]) for line in out.splitlines() if line.startswith("ACK ")}
        if "DONE" in out:
            break
    with db.engine.connect() as conn:
        decided = {
            row[0]
            for row in conn.execute(
                select(Decision.task_id).where(
                    Decision.reviewer == "chaos",  # type: ignore[arg-type]
                    Decision.action == "decide",  # type: ignore[arg-type]
                )
            )
        }
    fig.decisions_acknowledged = len(acked)
    fig.decisions_lost = len(acked - decided)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=2000)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.05, help="server seconds per answer")
    p.add_argument("--max-kill-delay", type=float, default=6.0)
    p.add_argument("--storm-items", type=int, default=1000)
    p.add_argument("--fault-rate", type=float, default=0.3)
    p.add_argument("--decisions-kills", type=int, default=5)
    p.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="autolabel-chaos-") as tmpdir:
        tmp = Path(tmpdir)
        url = args.db or f"sqlite:///{tmp / 'chaos.db'}"
        env = {**os.environ, "AUTOLABEL_DB": url, "AUTOLABEL_HOME": str(tmp / "home")}
        env["COLUMNS"] = "200"
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        logs = tmp / "logs"
        logs.mkdir()
        cli = CLI(env, logs)
        db = Database(url)
        fig = Figures()
        started = time.perf_counter()
        run_id = phase_kills(fig, cli, db, args, tmp)
        phase_storm(fig, cli, db, args, tmp)
        if args.decisions_kills >= 0 and run_id:
            phase_reviewer(fig, cli, db, args, run_id, url)
        fig.tracebacks = cli.tracebacks
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db.dispose()
        elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(fig.__dict__, indent=2))
    else:
        backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(f"chaos on {backend} ({elapsed:.0f} s)")
        print(f"  kills survived:            {fig.kills_survived}/{fig.kills} (SIGKILL, resume)")
        print(f"  items:                     {fig.items} (export rows {fig.export_rows})")
        print(f"  items lost:                {fig.items_lost}")
        print(f"  duplicates:                {fig.duplicates}")
        faults = ", ".join(f"{k} {v}" for k, v in sorted(fig.faults.items()))
        print(f"  faults injected:           {sum(fig.faults.values())} ({faults})")
        print(
            f"  storm items:               {fig.storm_items}: labeled {fig.storm_labeled}, "
            f"failed with a reason {fig.storm_failed_with_reason}, "
            f"unaccounted {fig.storm_unaccounted}, exit {fig.storm_exit}"
        )
        print(
            f"  reviewer kills:            {fig.reviewer_kills}; acknowledged decisions "
            f"{fig.decisions_acknowledged}, lost {fig.decisions_lost}"
        )
        print(f"  tracebacks:                {fig.tracebacks}")
        for note in fig.notes:
            print(f"  note: {note}")
    return 0 if fig.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
