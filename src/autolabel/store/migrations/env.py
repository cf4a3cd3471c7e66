"""Alembic environment: always driven from Python with a connection we hand in.

``autolabel.store.migrations.ensure_schema`` (and ``python -m
autolabel.store.migrations new``) put the connection in ``config.attributes``; there
is no alembic.ini and no URL here, so a wheel install migrates the same way.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import autolabel.store.tables  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through autolabel (autolabel db upgrade), not alembic")


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # sqlmodel's AutoString is a plain String: keep revisions free of sqlmodel imports.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String({obj.length})" if obj.length else "sa.String()"
    return False


def process_revision_directives(ctx: Any, revision: Any, directives: list[Any]) -> None:
    hook = config.attributes.get("revision_hook")
    if hook is not None:
        hook(directives)


context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things: batch mode copies the table; on PostgreSQL the
    # same revision emits plain ALTERs.
    render_as_batch=True,
    compare_type=True,
    render_item=render_item,
    process_revision_directives=process_revision_directives,
    template_args=config.attributes.get("template_args", {"auto_upgrade": False}),
)
with context.begin_transaction():
    context.run_migrations()
