"""Reviewers in separate processes on one queue, on SQLite and PostgreSQL.

Each worker (``reviewer_worker.py``) has its own connections and prints every
decision id after it committed; the database must agree with those prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlmodel import select

from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import Decision, ReviewTask
from tests.review.factories import seed_queue

REPO = Path(__file__).resolve().parents[2]


def _spawn(db_url: str, reviewer: str, *args: str) -> subprocess.Popen[str]:
    """Start a reviewer process (pass ``--wait`` to hold it at the start barrier)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "tests.review.reviewer_worker", db_url, reviewer, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_together(procs: list[subprocess.Popen[str]], signal_word: str = "ready") -> None:
    """Wait until every worker has printed ``signal_word`` (``ready`` for ``--wait``,
    ``holding`` for ``--hold-first``), then release them at once."""
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == signal_word
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def _finish(proc: subprocess.Popen[str]) -> list[str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.split()


def _decided_ids(lines: list[str]) -> list[int]:
    return [int(lines[i + 1]) for i, word in enumerate(lines) if word == "decided"]


def _live_decisions(db: Database) -> list[Decision]:
    with db.session() as s:
        return list(
            s.exec(
                select(Decision).where(Decision.action == "decide", Decision.undone == False)  # noqa: E712
            ).all()
        )


def test_two_reviewer_processes_never_double_decide(db_url: str) -> None:
    db = Database(db_url)
    tasks = seed_queue(db, 30)
    args = ("--pause", "0.005", "--wait", "--hold-first")
    procs = [_spawn(db_url, name, *args) for name in ("ann", "bob")]
    _start_together(procs)
    # Both hold a lease before either decides: under load SQLite's busy handler can
    # otherwise let one process drain the queue while the other sleeps.
    _start_together(procs, "holding")
    printed = [_decided_ids(_finish(p)) for p in procs]
    rows = _live_decisions(db)
    per_task = Counter(r.task_id for r in rows)
    assert set(per_task) == set(tasks) and max(per_task.values()) == 1
    # no decision lost: what the processes were told committed is exactly what is stored
    assert sorted(printed[0] + printed[1]) == sorted(r.id for r in rows)  # type: ignore[misc]
    assert all(printed)  # both got work (each held a lease before deciding)
    assert ReviewQueue(db).stats().decided == 30


def test_consensus_across_processes_stops_at_required(db_url: str) -> None:
    db = Database(db_url)
    tasks = seed_queue(db, 12, required=2, reviewers=2)
    procs = [_spawn(db_url, name, "--pause", "0.005", "--wait") for name in ("a", "b", "c")]
    _start_together(procs)
    printed = [_decided_ids(_finish(p)) for p in procs]
    rows = _live_decisions(db)
    per_task = Counter(r.task_id for r in rows)
    assert set(per_task) == set(tasks)
    assert set(per_task.values()) == {2}  # exactly as many as consensus needs, never three
    pairs = Counter((r.task_id, r.reviewer) for r in rows)
    assert max(pairs.values()) == 1  # no reviewer twice on one item
    assert sorted(sum(printed, [])) == sorted(r.id for r in rows)  # type: ignore[misc]
    with db.session() as s:
        finals = s.exec(select(ReviewTask.final_source).where(ReviewTask.id.in_(tasks))).all()  # type: ignore[union-attr]
    assert set(finals) == {"consensus"}


def test_expired_lease_of_another_process_returns_the_item(db_url: str) -> None:
    db = Database(db_url)
    tasks = seed_queue(db, 1)
    assert _finish(_spawn(db_url, "ann", "--claim-only", "--max", "1")) == [
        "claimed",
        str(tasks[0]),
        "done",
    ]
    # bob, now: ann's lease is live, nothing for him
    assert _decided_ids(_finish(_spawn(db_url, "bob"))) == []
    # bob, 11 minutes later (his clock): the 10-minute lease has run out
    later = _decided_ids(_finish(_spawn(db_url, "bob", "--clock-offset", "660")))
    assert len(later) == 1
    assert [r.reviewer for r in _live_decisions(db)] == ["bob"]


def test_sigkilled_reviewer_loses_no_committed_decision(db_url: str) -> None:
    db = Database(db_url)
    seed_queue(db, 200)
    proc = _spawn(db_url, "ann", "--pause", "0.002")
    assert proc.stdout is not None
    seen: list[int] = []
    for line in proc.stdout:
        word, *rest = line.split()
        if word == "decided":
            seen.append(int(rest[0]))
        if len(seen) == 25:
            proc.send_signal(signal.SIGKILL)  # mid-stream, no chance to clean up
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    seen += _decided_ids(proc.stdout.read().split())  # lines still in the pipe
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        assert pipe is not None
        pipe.close()
    stored = {r.id for r in _live_decisions(db)}
    assert len(seen) >= 25 and set(seen) <= stored  # all it reported is in the database
    assert len(stored - set(seen)) <= 1  # at most one committed but killed before printing
    with db.session() as s:
        decided = s.exec(select(ReviewTask).where(ReviewTask.status == "decided")).all()
    assert len(decided) == len(stored)  # each decision and its task update committed together
