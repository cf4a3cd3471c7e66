"""CLI commands: reviewing."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    _register_review_tui(app)


# -- `autolabel review` (the TUI; owned by the TUI engineer) ---------------------------


def _register_review_tui(app: typer.Typer) -> None:
    @app.command("review")
    def review(
        reviewer: str = typer.Option(
            ..., "--reviewer", "-r", help="your name, stored with every decision"
        ),
        queue: str = typer.Option("default", "--queue", "-q", help="review queue to work on"),
        db: str | None = typer.Option(
            None, "--db", help="database URL (default: the data dir's SQLite)"
        ),
        lease: int = typer.Option(
            600, "--lease", min=5, help="seconds an item stays yours while shown"
        ),
    ) -> None:
        """Review queued items in a terminal UI: one keypress per decision.

        Keys: a label's key (shown beside it) picks it, Enter accepts the model's
        suggestion, s skips, f flags with a note, u undoes, e edits spans, / filters
        labels, g shows the guidelines, ? lists every key, q quits (and frees the item).
        Every decision is saved at once; run it again to continue where you left off.

        Example:  autolabel review --reviewer alice --queue default
        """
        from autolabel.settings import load_settings
        from autolabel.tui.launch import run_review

        settings = load_settings(db=db)
        n = run_review(settings.database_url, queue, reviewer, lease_seconds=lease)
        typer.echo(f"{reviewer}: {n} decision(s) saved in queue '{queue}'")
