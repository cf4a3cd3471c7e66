"""``autolabel doctor``: what this machine and an endpoint can do, and what ``label`` will use.

Without ``--base-url``: the embedded llama.cpp runtime (build, CPU features, the settings
the crash guard chose and why, the model file and its hash). With ``--base-url``: an
OpenAI-compatible endpoint, checked with a few tiny requests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autolabel.cli.common import ConfigOption, console, settings_from
from autolabel.errors import ConfigError
from autolabel.providers import llama_guard
from autolabel.providers.models import DEFAULT_MODEL, KNOWN_MODELS, ensure_model, resolve_model

_MARKS = {True: "[green]ok[/]", False: "[red]no[/]", None: "[yellow]–[/]"}
# CPU features that decide which ggml kernels run (AMX is the one known to crash).
_FEATURES = (
    ("AVX2", "avx2", "AVX2"),
    ("AVX512F", "avx512f", "AVX512"),
    ("AVX512_VNNI", "avx512_vnni", "AVX512_VNNI"),
    ("AMX_TILE", "amx_tile", None),
    ("AMX_INT8", "amx_int8", "AMX_INT8"),
    ("AMX_BF16", "amx_bf16", "AMX_BF16"),
)


def doctor(
    base_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible endpoint to check, e.g. http://127.0.0.1:8080/v1."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="With --base-url: the model name the endpoint serves. Without: the embedded "
            f"model name or .gguf path (default {DEFAULT_MODEL}).",
        ),
    ] = None,
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
    reprobe: Annotated[
        bool,
        typer.Option(
            "--reprobe", help="Embedded: probe again (e.g. after rebuilding llama-cpp-python)."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Check the embedded runtime, or an endpoint, and print what `label` will use.

    Embedded (no --base-url): llama-cpp-python build, CPU features (AVX2/AVX512/AMX),
    the llama.cpp settings chosen and why, the model file and its hash. The first use
    of a model on a machine probes it in a child process (load + one batched decode):
    ggml's AMX kernels crash on many CPUs with Intel AMX, and then safe settings are used.

    Endpoint (--base-url): a few tiny requests: reachable, auth, structured forms,
    logprobs, n, seed, latency.

    Examples:

        autolabel doctor
        autolabel doctor --model gemma3-270m --reprobe
        autolabel doctor --base-url http://127.0.0.1:8080/v1 --model qwen
    """
    if base_url is None:
        _embedded(model or DEFAULT_MODEL, reprobe)
        return
    _endpoint(base_url, model, api_key, structured, config)


def _embedded(model: str, reprobe: bool) -> None:
    build = llama_guard.build_info()
    flags = set(llama_guard.cpu_flags())

    runtime = Table(title="embedded runtime", show_header=False, title_justify="left")
    runtime.add_column(style="bold")
    runtime.add_column()
    runtime.add_row("llama-cpp-python", build.version)
    runtime.add_row("library", build.library)
    runtime.add_row("CPU", llama_guard.cpu_name())
    console.print(runtime)

    features = Table(title="CPU features", title_justify="left")
    for col in ("feature", "CPU has it", "build uses it"):
        features.add_column(col)
    for label, flag, sysinfo in _FEATURES:
        used = build.feature(sysinfo) if sysinfo else None
        features.add_row(
            label,
            _yes_no(flag in flags if flags else None),
            _yes_no(used),
        )
    console.print(features)

    path = _model_file(model)
    verdict = llama_guard.choose_settings(path, reprobe=reprobe)
    chosen = Table(title="settings", show_header=False, title_justify="left")
    chosen.add_column(style="bold")
    chosen.add_column()
    chosen.add_row("chosen", verdict.settings.describe())
    chosen.add_row("why", verdict.reason)
    source = verdict.source
    if verdict.source == "probed":
        source += f" now ({verdict.probe_seconds:.1f} s), cached for later runs"
    chosen.add_row("source", source)
    chosen.add_row("verdict file", str(llama_guard.verdict_file()))
    console.print(chosen)


def _endpoint(
    base_url: str,
    model: str | None,
    api_key: str | None,
    structured: str | None,
    config: Path | None,
) -> None:
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


def _model_file(model: str) -> Path:
    """Resolve the model, printing where it is and whether its hash checks out."""
    table = Table(title="model file", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    spec = KNOWN_MODELS.get(model.lower())
    if spec is not None:
        path = ensure_model(spec)  # raises with a fix when missing or corrupt
        table.add_row("name", spec.name)
        table.add_row("path", str(path))
        table.add_row("size", f"{path.stat().st_size:,} bytes")
        table.add_row("sha256", f"{spec.sha256} (verified)")
    else:
        path = resolve_model(model)
        table.add_row("path", str(path))
        table.add_row("size", f"{path.stat().st_size:,} bytes")
        table.add_row("sha256", "not checked (a file of your own; no known hash)")
    console.print(table)
    return path


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Setup")(doctor)


__all__ = ["doctor", "register"]
