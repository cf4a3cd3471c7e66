"""The ``autolabel`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console

from autolabel.errors import AutolabelError

app = typer.Typer(
    name="autolabel",
    help=(
        "Bootstrap dataset labels from foundation models, with honest confidence, "
        "and route the doubtful ones to human reviewers.\n\n"
        "Start with:  autolabel label sst2 examples/sst2_sample.csv"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
)

err_console = Console(stderr=True)


_registered = False


def _register() -> None:
    # Idempotent: tests call main() many times in one process.
    global _registered
    if _registered:
        return
    _registered = True
    from autolabel.cli import db, doctor, evaluate, interop, labeling, learning, reviewing

    for module in (labeling, reviewing, evaluate, learning, interop, db, doctor):
        module.register(app)


_command: Any = None  # typer's click command


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes print as one clear message, never a traceback."""
    global _command
    _register()
    if _command is None:
        # Built once per process (what app() does on every call): in-process callers
        # such as the fuzz tests invoke main() hundreds of times.
        _command = typer.main.get_command(app)
    try:
        # Standalone mode lets click report usage errors and exit codes itself.
        _command.main(args=argv, prog_name="autolabel", standalone_mode=True)
    except AutolabelError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
