"""Schema migrations with Alembic: revisions ship inside the package (``versions/``).

Opening a database (:func:`ensure_schema`) is serialised across processes — a file
lock next to a SQLite file, a transaction-scoped advisory lock on PostgreSQL — so
any number of commands started at once on a fresh home create the schema once.

- A fresh database is created by running every revision (``0001`` is the first
  released schema, the one the pre-Alembic code called "version 1").
- A database made by the pre-Alembic code (``schema_info.version == 1``, no
  ``alembic_version``) is stamped ``0001`` and upgraded.
- Pending revisions that only add things (``AUTO_UPGRADE = True`` in the revision
  file) are applied on open; any other pending revision stops with a message that
  says to back up and run ``autolabel db upgrade``.

How to add a revision: see ``src/autolabel/store/README.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from autolabel.errors import StoreError
from autolabel.store.locking import file_lock

HERE = Path(__file__).resolve().parent
# The revision a pre-Alembic database at schema_info.version 1 is equivalent to.
FIRST_RELEASED = "0001"
LEGACY_VERSION = 1
# pg_advisory_xact_lock key: any constant bigint; this one spells "autolab".
PG_LOCK_KEY = 0x6175746F6C6162

Mode = Literal["auto", "upgrade", "none"]


@dataclass
class SchemaState:
    current: str | None  # revision in alembic_version; None for a fresh or legacy database
    head: str
    pending: list[str] = field(default_factory=list)  # oldest first
    legacy_version: int | None = None  # schema_info.version of a pre-Alembic database
    applied: list[str] = field(default_factory=list)  # what this call upgraded

    @property
    def fresh(self) -> bool:
        return self.current is None and self.legacy_version is None

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    # Loaded once per process: every Database() open consults it.
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None, "no revisions shipped"
    return head


def read_state(conn: Connection) -> SchemaState:
    """Where ``conn``'s database stands; raises StoreError for a newer database."""
    script = script_directory()
    head = head_revision()
    heads = MigrationContext.configure(conn).get_current_heads()
    legacy: int | None = None
    if not heads:
        if inspect(conn).has_table("schema_info"):
            row = conn.execute(text("SELECT version FROM schema_info WHERE id = 1")).first()
            legacy = int(row[0]) if row else LEGACY_VERSION
            if legacy != LEGACY_VERSION:
                raise _newer(f"schema version {legacy}")
        base = FIRST_RELEASED if legacy is not None else "base"
        pending = [s.revision for s in script.iterate_revisions(head, base)][::-1]
        if legacy is not None:
            pending = [r for r in pending if r != FIRST_RELEASED]
        return SchemaState(None, head, pending, legacy)
    if len(heads) > 1:
        raise StoreError(
            f"the database has several schema revisions at once ({', '.join(heads)})",
            hint="restore a backup, or ask for help with the output of: autolabel db status",
        )
    current = heads[0]
    try:
        script.get_revision(current)
        pending = [s.revision for s in script.iterate_revisions(head, current)][::-1]
    except CommandError as exc:
        raise _newer(f"schema revision {current}") from exc
    return SchemaState(current, head, pending)


def _newer(what: str) -> StoreError:
    return StoreError(
        f"the database is at {what}, newer than this autolabel (which knows up to "
        f"{head_revision()})",
        hint="upgrade autolabel, or point --db at another database",
    )


def is_auto(revision: str) -> bool:
    """Whether a revision only adds things, so applying it on open is safe."""
    module = script_directory().get_revision(revision).module
    return bool(getattr(module, "AUTO_UPGRADE", False))


def ensure_schema(engine: Engine, mode: Mode = "auto") -> SchemaState:
    """Create or upgrade the schema as ``mode`` allows; returns the state (``applied`` set).

    ``auto``: create a fresh database, apply pending AUTO_UPGRADE revisions, refuse
    others with the ``autolabel db upgrade`` hint. ``upgrade``: apply everything.
    ``none``: only read the state (backup, check and status must not change a database).
    """
    with engine.connect() as conn:
        state = read_state(conn)  # no lock: the common case (up to date) costs one query
    if state.up_to_date and not state.fresh or mode == "none":
        return state
    with _serialised(engine) as conn:
        state = read_state(conn)  # another process may have done it while we waited
        if state.up_to_date and not state.fresh:
            return state
        if mode == "auto" and not state.fresh:
            blocking = [r for r in state.pending if not is_auto(r)]
            if blocking:
                raise StoreError(
                    f"the database schema is out of date (at "
                    f"{state.current or FIRST_RELEASED}, this autolabel needs {state.head}); "
                    f"revision {blocking[0]} changes existing tables",
                    hint="back it up (autolabel db backup FILE), then run: autolabel db upgrade",
                )
        cfg = alembic_config(conn)
        if state.legacy_version is not None:
            command.stamp(cfg, FIRST_RELEASED)
        command.upgrade(cfg, "head")
        if conn.dialect.name == "sqlite":
            bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if bad:
                raise StoreError(
                    f"upgrade aborted: it would break {len(bad)} references (first: {bad[0]})",
                    hint="the database is unchanged; report this with: autolabel db check",
                )
        state.applied = list(state.pending) if not state.fresh else [state.head]
        return state


@contextmanager
def _serialised(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other autolabel process can be in at once."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db_path = Path(url.database)  # type: ignore[arg-type]
        with file_lock(db_path.with_name(db_path.name + ".lock")):
            # Own engine: driver-level autocommit plus our BEGIN IMMEDIATE makes SQLite's
            # DDL transactional (a killed upgrade rolls back whole), and foreign keys must
            # be off while batch mode copies and renames tables.
            mig = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})
            event.listen(mig, "connect", _sqlite_migration_pragmas)
            event.listen(mig, "begin", lambda c: c.exec_driver_sql("BEGIN IMMEDIATE"))
            try:
                with mig.begin() as conn:
                    yield conn
            finally:
                mig.dispose()
        return
    with engine.begin() as conn:
        if url.get_backend_name() == "postgresql":
            # Held until commit/rollback: concurrent openers queue here, then see head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
        yield conn


def _sqlite_migration_pragmas(dbapi_conn: object, _record: object) -> None:
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()
