"""Schema versions. Version 1 is created from the models; later versions are steps.

To change a table: edit ``tables.py``, append a step to ``MIGRATIONS`` that brings
a database from the previous version to the new one (plain SQL that works on both
SQLite and PostgreSQL), and bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from autolabel.errors import StoreError
from autolabel.store import tables

SCHEMA_VERSION = 1

# version N -> function taking a database at version N-1 to version N
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(tables.SchemaInfo.__tablename__):
        return None
    row = conn.execute(text("SELECT version FROM schema_info WHERE id = 1")).first()
    return int(row[0]) if row else None


def migrate(engine: Engine) -> int:
    """Create or upgrade the schema; returns the version now in force."""
    with engine.begin() as conn:
        version = current_version(conn)
        if version is None:
            SQLModel.metadata.create_all(conn)
            conn.execute(
                text("INSERT INTO schema_info (id, version) VALUES (1, :v)"), {"v": SCHEMA_VERSION}
            )
            return SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database is at schema version {version}, newer than this autolabel "
                f"({SCHEMA_VERSION})",
                hint="upgrade autolabel, or point --db at another database",
            )
        # create_all adds tables new since this version was made; steps alter existing ones.
        SQLModel.metadata.create_all(conn)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](conn)
            conn.execute(text("UPDATE schema_info SET version = :v WHERE id = 1"), {"v": step})
        return SCHEMA_VERSION
