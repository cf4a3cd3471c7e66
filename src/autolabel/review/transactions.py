"""Short write transactions that serialise reviewers on both databases.

SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock up front, so two
processes never read the same queue state and then both write on it; the other
waits (``busy_timeout``) for the few milliseconds the transaction lasts.
PostgreSQL: ordinary transactions plus row locks (``SELECT … FOR UPDATE [SKIP
LOCKED]``) taken by the queue on the task rows it reads before writing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlmodel import Session

from autolabel.store.database import Database


@contextmanager
def write_session(db: Database) -> Iterator[Session]:
    """A session whose work commits as one transaction on leaving the block."""
    with db.session() as session:
        if db.is_sqlite:
            # pysqlite would otherwise open a DEFERRED transaction at the first write,
            # after our reads: two reviewers could both see a task as free.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (stored as UTC); make them comparable again."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
