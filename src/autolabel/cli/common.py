"""Pieces shared by CLI commands: settings, database, provider, options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from autolabel.settings import Settings, load_settings
from autolabel.store.database import Database

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: SQLite in the data dir). "
        "PostgreSQL: postgresql+psycopg://user@host/db",
        envvar="AUTOLABEL_DB",
        show_envvar=True,
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default: ./autolabel.toml).")
]


def settings_from(config: Path | None = None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


def open_db(settings: Settings) -> Database:
    db = Database(settings.database_url)
    state = db.schema
    if state.applied and not state.fresh:
        # Additive revisions are applied on open; say so, since the file changed.
        err_console.print(
            f"note: upgraded the database schema to {state.head} ({', '.join(state.applied)})",
            highlight=False,
        )
    return db
