"""``autolabel doctor``: what an OpenAI-compatible endpoint accepts, and what ``label`` will do.

Without ``--base-url`` this is where the embedded runtime's report goes (added separately).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from autolabel.cli.common import ConfigOption, console, settings_from
from autolabel.errors import ConfigError

_MARKS = {True: "[green]ok[/]", False: "[red]no[/]", None: "[yellow]–[/]"}


def doctor(
    base_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible endpoint to check, e.g. http://127.0.0.1:8080/v1."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name the endpoint serves.")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API key (default: AUTOLABEL_API_KEY / OPENAI_API_KEY; local servers need none)."
        ),
    ] = None,
    structured: Annotated[
        str | None,
        typer.Option(help="Check as label would with this --structured choice (default auto)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check an endpoint with a few tiny requests: reachable, auth, structured forms,
    logprobs, n, seed, latency; then print the settings `label` will use.

    Example:

        autolabel doctor --base-url http://127.0.0.1:8080/v1 --model qwen
    """
    if base_url is None:
        console.print(
            "doctor checks an OpenAI-compatible endpoint: pass --base-url URL --model M "
            "(the embedded runtime report is not part of this build yet)."
        )
        return
    settings = settings_from(config)
    from autolabel.providers.capabilities import STRUCTURED_CHOICES, CapabilityCache
    from autolabel.providers.openai import OpenAIProvider
    from autolabel.providers.probe import DoctorReport, probe_endpoint

    model = model or settings.model
    if not model:
        raise ConfigError("doctor needs a model name", hint="pass --model (e.g. --model qwen)")
    choice = structured or settings.structured
    if choice not in STRUCTURED_CHOICES:
        raise ConfigError(
            f"--structured must be one of {', '.join(STRUCTURED_CHOICES)}, not {choice!r}"
        )
    provider = OpenAIProvider(
        model,
        base_url=base_url,
        api_key=api_key or settings.resolved_api_key(),
        timeout_s=settings.timeout_s,
        max_connections=4,
        structured=choice,
    )

    async def run() -> DoctorReport:
        try:
            return await probe_endpoint(provider, CapabilityCache())
        finally:
            await provider.aclose()

    report = asyncio.run(run())
    table = Table(title=f"doctor: {report.base_url} (model '{report.model}')", title_justify="left")
    table.add_column("check", style="bold")
    table.add_column("", justify="center")
    table.add_column("result", overflow="fold")
    table.add_column("latency", justify="right")
    for check in report.checks:
        took = f"{check.latency_s * 1000:.0f} ms" if check.latency_s is not None else ""
        table.add_row(check.name, _MARKS[check.ok], check.detail, took)
    latency = report.latency_s
    if latency is not None:
        table.add_row("latency", "", f"median {latency * 1000:.0f} ms per tiny request", "")
    console.print(table, soft_wrap=False)
    rows = report.label_settings(settings.samples)
    if rows:
        used = Table(title="label will use", show_header=False, title_justify="left")
        used.add_column(style="bold")
        used.add_column()
        for key, value in rows:
            used.add_row(key, value)
        used.add_row("concurrency", str(settings.concurrency))
        used.add_row("timeout", f"{settings.timeout_s:g} s")
        console.print(used)
        console.print(
            f"next: [bold]autolabel label ONTOLOGY DATA --base-url {base_url} --model {model}[/]",
            highlight=False,
        )
    if not report.reachable:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Label")(doctor)


__all__ = ["doctor", "register"]
