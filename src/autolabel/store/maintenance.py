"""Keeping a database healthy: online backups and integrity checks."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from autolabel.errors import StoreError
from autolabel.store.database import Database
from autolabel.store.leases import holder_of
from autolabel.store.tables import Run


def sqlite_path(db: Database) -> Path | None:
    name = db.engine.url.database
    return Path(name) if db.is_sqlite and name not in (None, "", ":memory:") else None


def pg_dump_hint(db: Database) -> str:
    url = db.engine.url.set(drivername="postgresql")
    return f"pg_dump --format=custom --file=FILE '{url.render_as_string(hide_password=True)}'"


def backup(db: Database, dest: Path, *, overwrite: bool = False) -> int:
    """Copy a SQLite database with the online backup API (safe while others write).

    Returns the size in bytes. Written to a temporary name first, so ``dest`` is
    either the old file or a complete backup, never half of one.
    """
    src_path = sqlite_path(db)
    if src_path is None:
        if db.is_sqlite:
            raise StoreError("an in-memory database cannot be backed up")
        raise StoreError(
            "autolabel db backup copies SQLite databases; PostgreSQL has its own tool",
            hint=pg_dump_hint(db),
        )
    if dest.exists() and not overwrite:
        raise StoreError(f"{dest} already exists", hint="choose another FILE or pass --force")
    if dest.resolve() == src_path.resolve():
        raise StoreError("the backup FILE is the database itself", hint="choose another FILE")
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        src = sqlite3.connect(src_path, timeout=30)
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)  # page by page; writers in other processes keep going
            finally:
                out.close()
        finally:
            src.close()
        os.replace(tmp, dest)
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup to {dest} failed: {exc}") from exc
    return dest.stat().st_size


@dataclass
class UnfinishedRun:
    run_id: int
    name: str | None
    status: str
    holder: str | None  # "pid N on HOST" while a process holds the job


@dataclass
class CheckReport:
    integrity: list[str]  # ["ok"] when the engine's own check passes
    orphans: dict[str, int] = field(default_factory=dict)  # "child.col -> parent": rows
    unfinished: list[UnfinishedRun] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.integrity == ["ok"] and not self.orphans


def check(db: Database) -> CheckReport:
    with db.engine.connect() as conn:
        if db.is_sqlite:
            integrity = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
        else:
            integrity = ["ok"]  # PostgreSQL checks pages itself; amcheck is an extension
        present = set(inspect(conn).get_table_names())
        orphans: dict[str, int] = {}
        # Every foreign key of the models, so tables added later are checked too.
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in present:
                continue
            for fk in table.foreign_keys:
                parent = fk.column.table.name
                if parent not in present:
                    continue
                child_col, parent_col = fk.parent.name, fk.column.name
                n = conn.execute(
                    text(
                        f"SELECT COUNT(*) FROM {table.name} c WHERE c.{child_col} IS NOT NULL "
                        f"AND NOT EXISTS (SELECT 1 FROM {parent} p "
                        f"WHERE p.{parent_col} = c.{child_col})"
                    )
                ).scalar_one()
                if n:
                    orphans[f"{table.name}.{child_col} -> {parent}"] = int(n)
    report = CheckReport(integrity, orphans)
    with db.session() as s:
        from sqlmodel import select

        for run in s.exec(select(Run).where(Run.status != "completed").order_by(Run.id)):
            # A database not yet upgraded (db check must not upgrade) has no leases.
            holder = holder_of(db, run.run_key) if "job_leases" in present else None
            held = None
            if holder is not None and holder.run_id == run.id:
                from autolabel.store.tables import utcnow

                if not holder.is_dead(utcnow()):
                    held = f"pid {holder.pid} on {holder.host}"
            report.unfinished.append(UnfinishedRun(int(run.id), run.name, run.status, held))  # type: ignore[arg-type]
    return report
