"""One run per job at a time: the job lease, in-process and with real processes."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from autolabel.errors import JobBusyError
from autolabel.store import Database
from autolabel.store.leases import acquire_job_lease, holder_of
from autolabel.store.tables import JobLease, Prediction, Run, utcnow
from autolabel.testing import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]


def test_a_live_holder_refuses_a_second_one_naming_itself(db_url: str) -> None:
    db = Database(db_url)
    first = acquire_job_lease(db, "job-a")
    with pytest.raises(JobBusyError) as busy:
        acquire_job_lease(db, "job-a")
    msg = str(busy.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in msg
    assert "already running" in msg
    other = acquire_job_lease(db, "job-b")  # another job is not blocked
    first.release()
    again = acquire_job_lease(db, "job-a")
    assert again.took_over is None
    again.release()
    other.release()
    assert holder_of(db, "job-a") is None
    db.dispose()


def _plant(db: Database, *, host: str, pid: int, expires_in_s: float) -> None:
    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(
            insert(JobLease).values(
                run_key="job",
                run_id=None,
                token="theirs",
                host=host,
                pid=pid,
                started_at=now,
                heartbeat_at=now,
                expires_at=now + timedelta(seconds=expires_in_s),
            )
        )


def test_a_lease_from_another_host_blocks_until_it_expires(db_url: str) -> None:
    db = Database(db_url)
    _plant(db, host="elsewhere", pid=1, expires_in_s=300)
    with pytest.raises(JobBusyError, match="pid 1 on host elsewhere"):
        acquire_job_lease(db, "job")
    with db.engine.begin() as conn:  # it stopped beating long ago
        conn.execute(JobLease.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    lease = acquire_job_lease(db, "job")
    assert lease.took_over is not None and lease.took_over.host == "elsewhere"
    lease.release()
    db.dispose()


def test_a_dead_process_on_this_host_frees_the_job_at_once(db_url: str) -> None:
    db = Database(db_url)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _plant(db, host=socket.gethostname(), pid=gone.pid, expires_in_s=300)
    lease = acquire_job_lease(db, "job")
    assert lease.took_over is not None and lease.took_over.pid == gone.pid
    # The old holder's token no longer renews anything; ours does.
    assert lease.renew()
    lease.release()
    db.dispose()


def _data(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([i, f"review {i}: {'great' if i % 2 else 'awful'} film"])
    return path


def _only_run_key(db: Database) -> str:
    with db.engine.connect() as conn:
        return conn.execute(select(Run.run_key)).scalar() or ""


def _count(db: Database, what) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(what)).scalar_one()


def test_a_second_label_of_a_running_job_is_refused_and_resume_works_after_sigkill(
    db_url: str, tmp_path: Path
) -> None:
    n = 200  # ~50 s at one item at a time: the first run is surely going when killed
    data = _data(tmp_path / "reviews.csv", n)
    env = {
        **os.environ,
        "AUTOLABEL_DB": db_url,
        "AUTOLABEL_CONCURRENCY": "1",
        "COLUMNS": "200",
    }
    db = Database(db_url)
    with FakeOpenAIServer(latency_s=0.25) as srv:
        args = [sys.executable, "-m", "autolabel.cli.main", "label", "sst2", str(data)]
        args += ["--base-url", srv.base_url, "--model", "m", "--no-cache", "--quiet"]
        first = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and first.poll() is None:
            holder = holder_of(db, _only_run_key(db))
            if holder is not None and holder.run_id is not None:  # the lease names its run
                break
            time.sleep(0.1)
        assert first.poll() is None, "the first run must still be going"
        second = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        assert "this job is already running: run 1" in second.stderr
        assert f"pid {first.pid} on host {socket.gethostname()}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the refused invocation must not disturb the first"

        first.send_signal(signal.SIGKILL)
        first.wait()
        done_at_kill = _count(db, Prediction)
        assert done_at_kill < n
        fast = {**env, "AUTOLABEL_CONCURRENCY": "16"}  # not part of the job's identity
        third = subprocess.run(args, cwd=REPO, env=fast, capture_output=True, text=True)
        assert third.returncode == 0, third.stderr
        assert "(resumed)" in third.stdout

    with db.session() as s:
        runs = s.exec(select(Run.id, Run.status)).all()
    assert [tuple(r) for r in runs] == [(1, "completed")]
    with db.engine.connect() as conn:
        total, distinct = conn.execute(
            select(func.count(), func.count(func.distinct(Prediction.item_id)))
        ).one()
    assert total == distinct == n
    assert _count(db, JobLease) == 0  # released on the way out
    db.dispose()
