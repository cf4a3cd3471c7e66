"""The ``autolabel`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import sys

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


def _register() -> None:
    from autolabel.cli import evaluate, labeling, learning, reviewing

    for module in (labeling, reviewing, evaluate, learning):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes print as one clear message, never a traceback."""
    _register()
    try:
        # Standalone mode lets click report usage errors and exit codes itself.
        app(args=argv, standalone_mode=True)
    except AutolabelError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
