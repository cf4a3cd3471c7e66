"""Finding stored things by what a user types: a run by id or by name."""

from __future__ import annotations

from sqlmodel import Session, col, select

from autolabel.errors import NotFoundError
from autolabel.store.tables import Run


def resolve_run(session: Session, ref: str | int) -> Run:
    """A run by id, else by name (the newest run with that name)."""
    text = str(ref).strip()
    run = session.get(Run, int(text)) if text.isdigit() else None
    if run is None:
        run = session.exec(select(Run).where(Run.name == text).order_by(col(Run.id).desc())).first()
    if run is None:
        raise NotFoundError(f"run '{ref}' not found", hint="list runs with: autolabel runs")
    return run
