"""A review team at scale: N reviewer processes on one queue, killed and restarted.

Drives the queue API (not the TUI) from separate processes, each with its own
connections, like reviewers on their own machines:

- every reviewer claims, "thinks" for a random time (exponential; a few items take
  longer than the lease, so the reviewer renews it like the TUI's heartbeat), then
  decides and prints ``decided <decision id>`` only after the commit;
- ``--kills`` times (spread over the work) a reviewer holding an item is SIGKILLed
  and restarted after a random pause of up to two leases (sometimes its item has been
  handed to someone else by then, sometimes it gets it back);
- with ``--consensus`` every item needs 2 votes, and a disagreement goes to an
  adjudicator process (which is killed and restarted like the others).

At the end the database is compared with what the processes were told:

    lost      decisions a process printed as committed that the database lacks
    double    more live votes on a task than it asked for, or one reviewer twice
    stuck     tasks not final when every reviewer has run out of work
    hand-over seconds from a dead reviewer's lease expiry until another reviewer
              claimed that item (p50 / max)

    python bench/review_team.py          # 10 reviewers, 5,000 decisions, both databases
    python bench/review_team.py --db sqlite --decisions 1000 --reviewers 4
    python bench/review_team.py --consensus  # 2 votes per item + adjudication

Measured sizes (10 reviewers, 1,000 decisions per database) and figures: README,
"A review team at scale". Exits 1 when anything was lost, doubled or stuck.

PostgreSQL comes from ``tests/pg.py`` (a throwaway server; Debian's postgresql), or
``AUTOLABEL_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = ["positive", "negative", "neutral"]
SPAWNED: list[subprocess.Popen[str]] = []  # killed on the way out, whatever happens


# -- one reviewer process ------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """A reviewer: claim → think (renewing the lease) → decide, until nothing is left."""
    from autolabel.errors import TaskGoneError
    from autolabel.review.queue import ReviewQueue
    from autolabel.store.database import Database

    queue = ReviewQueue(Database(args.url), "team", lease_seconds=args.lease)  # type: ignore[arg-type]
    rng = random.Random(f"{args.name}-{args.seed}-{os.getpid()}")
    say = _printer()
    if args.wait:
        say("ready")
        sys.stdin.readline()
    while True:
        before = time.time()
        task = queue.claim(args.name, adjudicate=args.adjudicate)
        if task is None:
            stats = queue.stats()
            left = stats.remaining + (stats.adjudication + stats.flagged if args.adjudicate else 0)
            if left == 0:
                break
            time.sleep(0.2)  # others hold the rest: wait for decisions or lease expiry
            continue
        say(f"claimed {task.task_id} {before:.6f}")
        think = rng.expovariate(1 / args.think) if args.think > 0 else 0.0
        if rng.random() < args.long_share:
            think = args.lease * 1.5  # longer than the lease: only renewal keeps it ours
        gone = False
        deadline = time.time() + think
        while (left_s := deadline - time.time()) > 0:
            time.sleep(min(left_s, args.lease / 3))
            if deadline - time.time() > 0:
                at = time.time()
                try:
                    queue.renew(task.task_id, args.name)
                    say(f"renewed {task.task_id} {at:.6f}")
                except TaskGoneError as exc:
                    say(f"lost {task.task_id} {exc.reason}")
                    gone = True
                    break
        if args.adjudicate or rng.random() < args.agree:
            label = task.suggestion
        else:
            label = rng.choice(LABELS)
        try:
            decision = queue.decide(task.task_id, args.name, label)
        except TaskGoneError as exc:
            held = time.time() - before  # from asking for the claim to being told
            say(f"gone {task.task_id} {exc.reason} {exc.second_opinion_id} {held:.3f}")
            continue
        say(f"decided {decision.id} {task.task_id}")
        if gone:
            say(f"recovered {task.task_id}")
    say("done")


def _printer():  # type: ignore[no-untyped-def]
    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return say


# -- the controller ---------------------------------------------------------------------------


@dataclass
class Reviewer:
    name: str
    adjudicate: bool
    proc: subprocess.Popen[str] | None = None
    open_task: int | None = None  # claimed, not yet decided (as far as its output says)
    expires: float = 0.0  # lease expiry of open_task (lower bound, from its own clock)
    restarts: int = 0


@dataclass
class Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    decided: list[int] = field(default_factory=list)  # decision ids printed after commit
    claims: list[tuple[float, str, int]] = field(default_factory=list)  # (time, who, task)
    gone: Counter[str] = field(default_factory=Counter)
    gone_after: list[float] = field(default_factory=list)  # seconds from claim to "gone"
    renewals: int = 0
    lost_leases: int = 0


def seed(url: str, n: int, required: int) -> None:
    """``n`` classify items, predictions and pending tasks in queue ``team``."""
    from _fixtures import seed_review_queue

    seed_review_queue(url, n, queue="team", required=required, text="review {i}").dispose()


def spawn(url: str, r: Reviewer, args: argparse.Namespace, *, wait: bool) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--url",
        url,
        "--name",
        r.name,
        "--lease",
        str(args.lease),
        "--think",
        str(args.think),
        "--long-share",
        str(args.long_share),
        "--agree",
        str(args.agree),
        "--seed",
        str(r.restarts),
    ]
    if r.adjudicate:
        cmd.append("--adjudicate")
    if wait:
        cmd.append("--wait")
    r.proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    SPAWNED.append(r.proc)


def read(r: Reviewer, proc: subprocess.Popen[str], log: Log, lease: float) -> None:
    """Collect one process's lines until it exits (or is killed)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        word, *rest = line.split()
        with log.lock:
            if word == "claimed":
                task, at = int(rest[0]), float(rest[1])
                log.claims.append((at, r.name, task))
                r.open_task, r.expires = task, at + lease
            elif word == "renewed":
                log.renewals += 1
                r.expires = float(rest[1]) + lease
            elif word == "decided":
                log.decided.append(int(rest[0]))
                r.open_task = None
            elif word == "gone":
                log.gone[rest[1]] += 1
                if len(rest) > 3:
                    log.gone_after.append(float(rest[3]))
                r.open_task = None
            elif word == "lost":
                log.lost_leases += 1


def run_team(url: str, label: str, args: argparse.Namespace) -> dict[str, float]:
    required = 2 if args.consensus else 1
    n_tasks = args.decisions // required
    seed(url, n_tasks, required)
    team = [Reviewer(f"r{i:02d}", False) for i in range(args.reviewers)]
    if args.consensus:
        team.append(Reviewer("adjudicator", True))
    log = Log()
    readers: dict[int, threading.Thread] = {}  # pid -> its output reader

    def listen(r: Reviewer) -> None:
        assert r.proc is not None
        t = threading.Thread(target=read, args=(r, r.proc, log, args.lease), daemon=True)
        t.start()
        readers[r.proc.pid] = t

    for r in team:
        spawn(url, r, args, wait=True)
    for r in team:  # a start barrier: everyone begins after their (slow) imports
        assert r.proc is not None and r.proc.stdout is not None
        assert r.proc.stdout.readline().strip() == "ready"
    t0 = time.time()
    for r in team:
        assert r.proc is not None and r.proc.stdin is not None
        r.proc.stdin.write("go\n")
        r.proc.stdin.flush()
        listen(r)
    rng = random.Random(args.seed)
    kills: list[tuple[float, str, int | None, float]] = []  # (when, who, open task, expiry)
    restarts: list[tuple[float, Reviewer]] = []
    # Kills are spread over the work (not the clock): a restart costs seconds of
    # imports on a loaded machine, and kills on a timer would starve the team.
    every = args.decisions / (args.kills + 1) if args.kills else float("inf")
    next_kill = every * rng.uniform(0.5, 1.5)
    timed_out = False
    while True:
        now = time.time()
        if now - t0 > args.timeout:
            timed_out = True
            break
        for when, r in list(restarts):
            if now >= when:
                restarts.remove((when, r))
                r.restarts += 1
                spawn(url, r, args, wait=False)
                listen(r)
        alive = [r for r in team if r.proc is not None and r.proc.poll() is None]
        if not alive and not restarts:
            break
        with log.lock:  # kill reviewers mid-item (holding a lease), not while starting up
            working = [r for r in alive if r.open_task is not None]
        with log.lock:
            done = len(log.decided)
        if done >= next_kill and working:
            victim = rng.choice(working)
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            readers[victim.proc.pid].join(timeout=5)  # its last lines are read
            with log.lock:
                kills.append((now, victim.name, victim.open_task, victim.expires))
                victim.open_task = None
            victim.proc = None
            restarts.append((now + rng.uniform(0, 2 * args.lease), victim))
            next_kill = done + every * rng.uniform(0.5, 1.5)
        time.sleep(0.02)
    wall = time.time() - t0
    for r in team:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.send_signal(signal.SIGKILL)
            r.proc.wait()
    for t in readers.values():
        t.join(timeout=5)
    return report(url, label, args, log, kills, wall, timed_out, required)


def report(
    url: str,
    label: str,
    args: argparse.Namespace,
    log: Log,
    kills: list[tuple[float, str, int | None, float]],
    wall: float,
    timed_out: bool,
    required: int,
) -> dict[str, float]:
    from sqlmodel import col, select

    from autolabel.store.database import Database
    from autolabel.store.tables import Decision, ReviewTask

    db = Database(url)
    with db.session() as s:
        rows = s.exec(select(Decision).where(col(Decision.undone).is_(False))).all()
        tasks = s.exec(
            select(ReviewTask.id, ReviewTask.status).where(ReviewTask.queue == "team")
        ).all()
    db.dispose()
    votes = [d for d in rows if d.action == "decide"]
    adjudications = [d for d in rows if d.action == "adjudicate"]
    seconds = [d for d in rows if d.action == "second_opinion"]
    stored = {d.id for d in votes + adjudications}
    lost = len(set(log.decided) - stored)
    unreported = len(stored - set(log.decided))  # committed, then killed before printing
    per_task = Counter(d.task_id for d in votes)
    double = sum(1 for n in per_task.values() if n > required)
    double += sum(1 for n in Counter((d.task_id, d.reviewer) for d in votes).values() if n > 1)
    double += sum(1 for n in Counter(d.task_id for d in adjudications).values() if n > 1)
    stuck = sum(1 for _, status in tasks if status != "decided")
    exact = sum(1 for task_id, _ in tasks if per_task.get(task_id, 0) == required)
    # Hand-over: a killed reviewer's open item, first claimed by someone else afterwards.
    handover: list[float] = []
    handed_back = 0
    for when, who, task, expires in kills:
        if task is None:
            continue
        later = sorted((at, name) for at, name, t in log.claims if t == task and at >= when)
        if not later:
            continue  # decided in the kill's instant (committed, unprinted) or never reclaimed
        if later[0][1] == who:
            handed_back += 1  # restarted in time and got its own claim back
        else:
            handover.append(later[0][0] - expires)
    decisions = len(votes) + len(adjudications)
    print(
        f"\n== {label}: {args.reviewers} reviewers, {len(tasks):,} tasks, "
        f"{'2 votes per item + adjudication' if required == 2 else '1 vote per item'}"
    )
    print(
        f"decisions            {decisions:,} in {wall:.1f} s = {decisions / wall:.1f} decisions/s"
        + ("  (TIMED OUT)" if timed_out else "")
    )
    print(f"lost                 {lost}   (printed as committed, missing in the database)")
    print(f"double               {double}")
    print(f"stuck                {stuck}   (tasks not final at the end)")
    if required == 2:
        disputed = len({d.task_id for d in adjudications})
        print(
            f"exact votes          {exact:,} of {len(tasks):,} tasks have exactly {required} "
            "votes; "
            f"{disputed:,} disagreements adjudicated"
        )
    print(
        f"kills                {len(kills)} SIGKILLs; {unreported} decision(s) committed but not "
        "yet printed when killed (kept, not lost)"
    )
    if handover:
        print(
            f"lease hand-over      n={len(handover)} p50={statistics.median(handover):.2f} s "
            f"max={max(handover):.2f} s after expiry (lease {args.lease:g} s); "
            f"{handed_back} handed back to the restarted reviewer"
        )
    else:
        print(
            f"lease hand-over      none observed; {handed_back} handed back to the "
            "restarted reviewer"
        )
    print(f"renewals             {log.renewals} lease renewals; {log.lost_leases} failed")
    print(
        f"recovered            {sum(log.gone.values())} decide(s) found the task gone "
        f"({dict(log.gone)}); {len(seconds)} second opinion(s) kept"
    )
    if log.gone_after:
        print(
            f"                     those items were held {min(log.gone_after):.1f} to "
            f"{max(log.gone_after):.1f} s between claim and decide (lease {args.lease:g} s)"
        )
    return {"lost": lost, "double": double, "stuck": stuck}


def with_postgres(fn) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO))
    from tests.pg import start_postgres

    server, why = start_postgres()
    if server is None:
        print(f"PostgreSQL skipped: {why}")
        return
    try:
        fn(server)
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--reviewers", type=int, default=10)
    p.add_argument("--decisions", type=int, default=5000)
    p.add_argument("--consensus", action="store_true", help="2 votes per item + adjudicator")
    p.add_argument("--lease", type=float, default=15.0, help="lease seconds")
    p.add_argument("--think", type=float, default=0.05, help="mean think time (s)")
    p.add_argument("--long-share", type=float, default=0.01, help="share of items > lease")
    p.add_argument("--agree", type=float, default=0.85, help="P(vote = suggestion)")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs, spread over the work")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--seed", type=int, default=0)
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--adjudicate", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--wait", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    # A timeout or Ctrl-C of the controller must not leave reviewers running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_all(args)
    finally:
        for proc in SPAWNED:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_all(args: argparse.Namespace) -> None:
    failures: list[str] = []

    def check(label: str, result: dict[str, float]) -> None:
        failures.extend(f"{label}: {k}={v}" for k, v in result.items() if v)

    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            check("sqlite", run_team(f"sqlite:///{tmp}/team.db", "SQLite", args))
    if args.db in ("postgres", "both"):

        def on_pg(server) -> None:  # type: ignore[no-untyped-def]
            url = server.create_database(f"team{os.getpid()}")
            check("postgres", run_team(url, "PostgreSQL", args))

        with_postgres(on_pg)
    if failures:
        print("\nFAILED: " + ", ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
