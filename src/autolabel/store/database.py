"""Opening databases: one place knows the SQLite and PostgreSQL differences."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

from autolabel.errors import StoreError
from autolabel.store.migrations import Mode, SchemaState, ensure_schema


class Database:
    """An engine plus session factory, migrated on open.

    ``schema``: ``auto`` creates a fresh database and applies additive revisions,
    refusing others with the ``autolabel db upgrade`` hint; ``upgrade`` applies all;
    ``none`` leaves the schema as it is (backup, check, status).
    """

    def __init__(self, url: str, *, echo: bool = False, schema: Mode = "auto") -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(
                f"invalid database URL {url!r}",
                hint="use sqlite:///path.db or postgresql+psycopg://user@host/db",
            ) from exc
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            # Reviewers in separate processes share the file: wait on locks instead of failing.
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"no driver for {parsed.drivername}: {exc.name} is not installed",
                hint="pip install 'autolabel[postgres]' for PostgreSQL",
            ) from exc
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self.schema: SchemaState = ensure_schema(self.engine, schema)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(
                f"cannot open database {parsed.render_as_string(hide_password=True)}: {reason}"
            ) from exc

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; synchronous=NORMAL is durable across process
    # kills (only an OS crash can lose the last transactions).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_database(url: str, *, schema: Mode = "auto") -> Database:
    return Database(url, schema=schema)
