"""``autolabel doctor``: what the embedded runtime found on this machine, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autolabel.cli.common import console
from autolabel.providers import llama_guard
from autolabel.providers.models import DEFAULT_MODEL, KNOWN_MODELS, ensure_model, resolve_model

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
    model: Annotated[
        str, typer.Option("--model", "-m", help="Embedded model name or .gguf path.")
    ] = DEFAULT_MODEL,
    reprobe: Annotated[
        bool,
        typer.Option("--reprobe", help="Probe again (e.g. after rebuilding llama-cpp-python)."),
    ] = False,
) -> None:
    """Check the embedded llama.cpp runtime: build, CPU features, safe settings, model file.

    The first use of a model on a machine probes it in a child process (load + one
    batched decode) and caches which llama.cpp settings work; CPUs with Intel AMX
    crash ggml's AMX kernels on many machines, and then the safe settings are used.

    Example:  `autolabel doctor`   ·   `autolabel doctor --model gemma3-270m --reprobe`
    """
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
