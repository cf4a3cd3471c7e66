"""One run per job at a time: a lease row per ``run_key``, renewed by a heartbeat.

A second ``label`` of a job that is running is refused with the run and the process
holding it. A holder that dies stops renewing: its lease is taken over once it
expires, or at once when the holder was on this host and its pid is gone (so resume
right after SIGKILL works). Only the token's owner can renew or release a lease.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from autolabel.errors import JobBusyError, StoreError
from autolabel.store.database import Database
from autolabel.store.tables import JobLease, Run, utcnow

DEFAULT_TTL_S = 60.0


def lease_ttl_s() -> float:
    # An environment knob so chaos tests and shared PostgreSQL setups can tune it.
    try:
        return max(1.0, float(os.environ.get("AUTOLABEL_LEASE_TTL", DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written as UTC.
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True  # cannot tell (e.g. Windows quirks): let the TTL decide
    return True


@dataclass
class Holder:
    run_key: str
    run_id: int | None
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    token: str

    def is_dead(self, now: datetime) -> bool:
        if _aware(self.expires_at) <= now:
            return True
        return self.host == socket.gethostname() and not pid_alive(self.pid)


class Lease:
    """A held job lease. ``lost`` is set if the heartbeat finds it taken over."""

    def __init__(self, db: Database, run_key: str, ttl_s: float, token: str) -> None:
        self.db = db
        self.run_key = run_key
        self.ttl_s = ttl_s
        self.token = token
        self.took_over: Holder | None = None  # the dead holder we replaced, if any
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, run_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(JobLease)
                .where(JobLease.run_key == self.run_key, JobLease.token == self.token)  # type: ignore[arg-type]
                .values(run_id=run_id)
            )

    def renew(self) -> bool:
        now = utcnow()
        with self.db.engine.begin() as conn:
            done = conn.execute(
                update(JobLease)
                .where(JobLease.run_key == self.run_key, JobLease.token == self.token)  # type: ignore[arg-type]
                .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl_s))
            ).rowcount
        if not done:
            self.lost.set()
        return bool(done)

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.ttl_s / 3):
                try:
                    if not self.renew():
                        return
                except Exception:  # noqa: BLE001 - a busy database: try again next beat
                    continue

        self._thread = threading.Thread(target=beat, name="job-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    delete(JobLease).where(
                        JobLease.run_key == self.run_key,  # type: ignore[arg-type]
                        JobLease.token == self.token,  # type: ignore[arg-type]
                    )
                )
        except SQLAlchemyError:
            # Runs in a finally: never mask the run's own error. Unreleased, the lease
            # frees itself (dead pid or expiry).
            pass

    def lost_error(self) -> StoreError:
        return StoreError(
            "another process took over this job's lease (this one stopped renewing it "
            "for longer than its lifetime); stopping so two processes never label one run",
            hint="the items done so far are saved; see who holds it with: autolabel runs",
        )


def holder_of(db: Database, run_key: str) -> Holder | None:
    with db.engine.connect() as conn:
        row = conn.execute(select(JobLease).where(JobLease.run_key == run_key)).first()  # type: ignore[arg-type]
    if row is None:
        return None
    return Holder(
        row.run_key,
        row.run_id,
        row.host,
        row.pid,
        row.started_at,
        row.heartbeat_at,
        row.expires_at,
        row.token,
    )


def acquire_job_lease(db: Database, run_key: str, ttl_s: float | None = None) -> Lease:
    """Take the job's lease (and start its heartbeat) or raise :class:`JobBusyError`."""
    ttl = ttl_s or lease_ttl_s()
    lease = Lease(db, run_key, ttl, secrets.token_hex(16))
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": lease.token}
    for _ in range(20):  # each pass either decides or saw the row change under it
        now = utcnow()
        fresh = {**mine, "started_at": now, "heartbeat_at": now}
        fresh["expires_at"] = now + timedelta(seconds=ttl)
        try:
            with db.engine.begin() as conn:
                conn.execute(insert(JobLease).values(run_key=run_key, run_id=None, **fresh))
            lease.start_heartbeat()
            return lease
        except IntegrityError:
            pass  # someone holds it (or held it and died)
        holder = holder_of(db, run_key)
        if holder is None:
            continue  # released between our insert and our look
        if not holder.is_dead(now):
            raise _busy(db, holder, ttl)
        with db.engine.begin() as conn:
            taken = conn.execute(
                update(JobLease)
                .where(
                    JobLease.run_key == run_key,  # type: ignore[arg-type]
                    JobLease.token == holder.token,  # type: ignore[arg-type]
                )
                .values(**fresh)
            ).rowcount
        if taken:
            lease.took_over = holder
            lease.start_heartbeat()
            return lease
    raise StoreError(f"could not take the lease of job {run_key[:12]}: it keeps changing hands")


def _busy(db: Database, holder: Holder, ttl: float) -> JobBusyError:
    run = "a run being opened"
    if holder.run_id is not None:
        with db.session() as s:
            found = s.get(Run, holder.run_id)
        name = f" ('{found.name}')" if found is not None and found.name else ""
        run = f"run {holder.run_id}{name}"
    age = (utcnow() - _aware(holder.heartbeat_at)).total_seconds()
    here = holder.host == socket.gethostname()
    return JobBusyError(
        f"this job is already running: {run} is held by pid {holder.pid} on host "
        f"{holder.host} (since {_aware(holder.started_at):%Y-%m-%d %H:%M:%S} UTC, "
        f"last heartbeat {age:.0f} s ago)",
        hint=(
            "wait for it to finish, or stop it"
            + (f" (kill {holder.pid})" if here else "")
            + f"; a holder that dies frees the job within {ttl:.0f} s and the next "
            "invocation resumes where it stopped"
        ),
    )
