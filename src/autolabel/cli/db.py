"""``autolabel db``: schema status and upgrades, backups, integrity checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from autolabel.cli.common import ConfigOption, DbOption, console, settings_from
from autolabel.store.database import Database
from autolabel.store.maintenance import backup, check, sqlite_path
from autolabel.store.migrations import is_auto


def status(db: DbOption = None, config: ConfigOption = None) -> None:
    """Show the database's schema revision and what an upgrade would apply."""
    database = Database(settings_from(config, db=db).database_url, schema="none")
    state = database.schema
    current = state.current or (
        f"pre-Alembic version {state.legacy_version}" if state.legacy_version else "empty"
    )
    console.print(f"schema: {current}; this autolabel: {state.head}")
    for rev in state.pending:
        how = "applied automatically" if is_auto(rev) else "needs: autolabel db upgrade"
        console.print(f"  pending {rev} ({how})")
    if not state.pending:
        console.print("up to date")
    database.dispose()


def upgrade(
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the SQLite backup taken before upgrading.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Upgrade the database schema to this autolabel's (a SQLite file is backed up first).

    Example:

        autolabel db upgrade
    """
    url = settings_from(config, db=db).database_url
    database = Database(url, schema="none")
    state = database.schema
    if not state.pending:
        console.print(f"the database is up to date ({state.head})")
        database.dispose()
        return
    path = sqlite_path(database)
    if path is not None and path.exists() and not no_backup:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        dest = path.with_name(f"{path.name}.{state.current or 'v1'}-{stamp}.bak")
        backup(database, dest)
        console.print(f"backed up to {dest}")
    database.dispose()
    upgraded = Database(url, schema="upgrade")
    applied = ", ".join(upgraded.schema.applied) or "nothing"
    console.print(f"upgraded to {upgraded.schema.head}: applied {applied}")
    upgraded.dispose()


def backup_cmd(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Copy the database while it is in use (SQLite online backup; PostgreSQL: pg_dump).

    Example:

        autolabel db backup labels-2024-06-01.db
    """
    database = Database(settings_from(config, db=db).database_url, schema="none")
    try:
        size = backup(database, file, overwrite=force)
    finally:
        database.dispose()
    console.print(f"backed up to {file} ({size / 1e6:.1f} MB)")


def check_cmd(db: DbOption = None, config: ConfigOption = None) -> None:
    """Check the database: integrity, rows pointing at nothing, runs left unfinished.

    Exits 1 when integrity or references are broken; unfinished runs are listed only.
    """
    database = Database(settings_from(config, db=db).database_url, schema="none")
    try:
        report = check(database)
    finally:
        database.dispose()
    if report.integrity == ["ok"]:
        console.print("integrity: ok")
    else:
        console.print(f"integrity: {len(report.integrity)} problems")
        for line in report.integrity[:20]:
            console.print(f"  {line}", highlight=False)
    if report.orphans:
        for what, n in report.orphans.items():
            console.print(f"orphaned rows: {n} in {what}", highlight=False)
    else:
        console.print("references: ok")
    for run in report.unfinished:
        name = f" ({run.name})" if run.name else ""
        if run.holder:
            console.print(f"run {run.run_id}{name}: {run.status}, held by {run.holder}")
        else:
            console.print(
                f"run {run.run_id}{name}: {run.status}; resume it with the same label command"
            )
    if not report.healthy:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(
        help="The database: schema upgrades, backups, checks.", no_args_is_help=True
    )
    db_app.command("status")(status)
    db_app.command("upgrade")(upgrade)
    db_app.command("backup")(backup_cmd)
    db_app.command("check")(check_cmd)
    app.add_typer(db_app, name="db", rich_help_panel="Database")
