"""CLI commands of the engine: label, plan, export, runs, prompt show, cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from autolabel.cli.common import (
    ConfigOption,
    DbOption,
    console,
    err_console,
    open_db,
    settings_from,
)
from autolabel.engine.cache import ResponseCache
from autolabel.engine.inputs import read_rows, validator_for
from autolabel.engine.pipeline import LabelJob, RunSummary, arun_job
from autolabel.errors import BadRowError, ConfigError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.loader import load_ontology, resolve_ontology_path
from autolabel.settings import Settings
from autolabel.store.database import Database

OntologyArg = Annotated[
    str, typer.Argument(help="Ontology YAML file, or a name from ./ontologies (e.g. sst2).")
]
DataArg = Annotated[
    Path,
    typer.Argument(
        help="Input data: .csv, .tsv, .jsonl, .parquet, a directory saved by Hugging Face "
        "datasets (save_to_disk), or a folder of images (class sub-folders = optional gold).",
        show_default=False,
    ),
]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        help="'local' (embedded llama.cpp, the default) or 'openai' (any compatible endpoint)."
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Model: for local, 'qwen2.5-coder-1.5b' (default), 'gemma3-270m' or a "
        ".gguf path; for openai, any model name the endpoint serves."
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:11434/v1 (Ollama). Implies --provider openai."
    ),
]
StructuredOpt = Annotated[
    str | None,
    typer.Option(
        help="Structured-output form for an OpenAI-compatible endpoint: auto (negotiate: "
        "json_schema, then json_object with a schema, plain json_object, text), json_schema, "
        "json_object or text. Default: setting 'structured' (auto)."
    ),
]
TemplateOpt = Annotated[
    str | None, typer.Option(help="Prompt template variant from prompts/ (default: the task's).")
]
IdColumnOpt = Annotated[
    str | None,
    typer.Option(
        help="Column with a stable item id (default: 'id' if present, else a content hash)."
    ),
]


def _job(
    settings: Settings,
    ontology: str,
    data: Path,
    *,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    template: str | None,
    id_column: str | None,
    dataset: str | None,
    limit: int | None,
    no_cache: bool,
    on_bad_row: str = "skip",
    run_name: str | None = None,
    new_run: bool = False,
    quiet: bool = False,
    structured: str | None = None,
) -> LabelJob:
    from autolabel.providers.factory import create_provider

    path = resolve_ontology_path(ontology)
    ont = load_ontology(path)
    if on_bad_row not in ("skip", "fail"):
        raise ConfigError(f"--on-bad-row must be 'skip' or 'fail', not {on_bad_row!r}")
    if structured is not None and structured not in ("auto", "json_schema", "json_object", "text"):
        raise ConfigError(
            f"--structured must be auto, json_schema, json_object or text, not {structured!r}"
        )
    prov = create_provider(
        settings,
        provider=provider,
        model=model,
        base_url=base_url,
        structured=structured,
        ontology=ont,
    )
    prices = settings.prices.get(prov.model)
    return LabelJob(
        ontology=ont,
        ontology_path=str(path),
        data=data,
        provider=prov,
        db=open_db(settings),
        cache=None if no_cache else ResponseCache(settings.cache_dir),
        template=template,
        id_column=id_column,
        dataset=dataset,
        limit=limit,
        concurrency=settings.concurrency,
        requests_per_minute=settings.requests_per_minute,
        tokens_per_minute=settings.tokens_per_minute,
        samples=settings.samples,
        temperature=settings.temperature,
        reasks=settings.reasks,
        max_retries=settings.max_retries,
        on_bad_row=on_bad_row,  # type: ignore[arg-type]
        run_name=run_name,
        new_run=new_run,
        progress=not quiet,
        price_in_per_million=prices.input_per_million if prices else 0.0,
        price_out_per_million=prices.output_per_million if prices else 0.0,
    )


def label(
    ontology: OntologyArg,
    data: DataArg,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    structured: StructuredOpt = None,
    template: TemplateOpt = None,
    id_column: IdColumnOpt = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: the data file's name).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Label only the first N rows.")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight at once (default 16).")
    ] = None,
    rpm: Annotated[float | None, typer.Option(help="Max requests per minute.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Max tokens per minute.")] = None,
    samples: Annotated[
        int | None,
        typer.Option(help="Self-consistency samples when the endpoint gives no logprobs (5)."),
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (0).")] = None,
    on_bad_row: Annotated[
        str, typer.Option(help="'skip' bad rows (reported with row numbers) or 'fail' the run.")
    ] = "skip",
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ignore the response cache.")
    ] = False,
    run_name: Annotated[str | None, typer.Option(help="A name to find this run by.")] = None,
    new_run: Annotated[
        bool, typer.Option("--new-run", help="Start a new run instead of resuming.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(help="Also export the labels to this file (.jsonl/.csv/.parquet)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    engine: Annotated[
        str,
        typer.Option(help="'local' (this process) or 'ray' (a Ray cluster; needs autolabel[ray])."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)."),
    ] = None,
    actors: Annotated[
        int, typer.Option(help="Ray engine: labeling actors, each --concurrency wide.")
    ] = 2,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Label DATA with ONTOLOGY and store the labels with their confidence.

    Runs offline on the embedded model by default. A killed run resumes: run the same
    command again and only missing items are labeled. Items that failed (endpoint
    down, invalid answers) are retried the same way: run the same command again and
    only they are asked for again, in the same run. Running a job that finished with
    no failures again makes a new run served from the cache (no model calls);
    --new-run always starts a new run.

    Examples:

        autolabel label sst2 examples/sst2_sample.csv

        autolabel label banking77 tickets.csv \
            --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct

        autolabel label photos eval/data/images
    """
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be 'local' or 'ray', not {engine!r}")
    if engine == "ray":
        from autolabel.scaleout import require_ray

        require_ray()  # before the model is loaded: say what is missing first
    settings = settings_from(
        config,
        db=db,
        concurrency=concurrency,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        samples=samples,
        temperature=temperature,
    )
    job = _job(
        settings,
        ontology,
        data,
        provider=provider,
        model=model,
        base_url=base_url,
        template=template,
        id_column=id_column,
        dataset=dataset,
        limit=limit,
        no_cache=no_cache,
        on_bad_row=on_bad_row,
        run_name=run_name,
        new_run=new_run,
        quiet=quiet,
        structured=structured,
    )
    err_console.print(
        f"labeling [bold]{data}[/] with [bold]{job.ontology.name}[/] v{job.ontology.version} "
        f"on {job.provider.name}:{job.provider.model}",
        highlight=False,
    )
    if engine == "ray":
        from autolabel.scaleout.driver import run_job_on_ray

        summary = run_job_on_ray(job, address=address, actors=actors)
    else:
        summary = asyncio.run(_run_and_close(job))
    print_summary(summary, job)
    if export is not None:
        from autolabel.engine.export import export_run

        n = export_run(job.db, summary.run_id, export)
        console.print(f"exported {n} rows to {export}")
    if summary.n_labeled == 0 and summary.n_failed > 0:
        raise typer.Exit(1)


async def _run_and_close(job: LabelJob) -> RunSummary:
    # One event loop for the run and the provider's shutdown: its HTTP client belongs to it.
    try:
        return await arun_job(job)
    finally:
        await job.provider.aclose()


def print_summary(summary: RunSummary, job: LabelJob) -> None:
    table = Table(
        title=f"run {summary.run_id}" + (" (resumed)" if summary.resumed else ""),
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    rate = summary.n_items / summary.elapsed_s if summary.elapsed_s else 0.0
    table.add_row("items in input", f"{summary.n_items:,}")
    if summary.already_done:
        table.add_row("already labeled (resume)", f"{summary.already_done:,}")
    if summary.retried_failed:
        table.add_row("retried (had failed)", f"{summary.retried_failed:,}")
    table.add_row("labeled", f"{summary.n_labeled:,}")
    table.add_row("failed", f"{summary.n_failed:,}")
    table.add_row("model calls", f"{summary.n_model_calls:,}")
    table.add_row("cache hits", f"{summary.n_cache_hits:,}")
    table.add_row("tokens in / out", f"{summary.tokens_in:,} / {summary.tokens_out:,}")
    if summary.cost_usd:
        table.add_row("cost", f"${summary.cost_usd:.4f}")
    table.add_row("time", f"{summary.elapsed_s:.1f} s ({rate:.1f} items/s)")
    if summary.mean_confidence is not None:
        table.add_row("mean confidence", f"{summary.mean_confidence:.3f}")
    if summary.methods:
        table.add_row(
            "confidence from", ", ".join(f"{k} ({v})" for k, v in summary.methods.items())
        )
    if summary.label_counts:
        top = summary.label_counts.most_common(6)
        table.add_row("labels", ", ".join(f"{k} {v}" for k, v in top))
    if summary.n_bad_rows:
        table.add_row("bad rows skipped", f"{summary.n_bad_rows:,}")
    if summary.n_duplicates:
        table.add_row("repeated rows", f"{summary.n_duplicates:,}")
    if summary.n_changed:
        table.add_row("changed since labeled (redone)", f"{summary.n_changed:,}")
    console.print(table)
    for note in summary.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    for bad in summary.bad_rows[:10]:
        err_console.print(f"[yellow]skipped[/] {job.data}: {bad.message}", highlight=False)
    if summary.n_bad_rows > 10:
        err_console.print(f"… and {summary.n_bad_rows - 10} more bad rows")
    if summary.n_failed:
        print_failure_reasons(job.db, summary.run_id)
    if summary.n_model_calls == 0 and summary.n_cache_hits:
        console.print("[green]0 model calls[/]: every answer came from the cache")
    if summary.retried_failed:
        console.print(
            f"retried {summary.retried_failed:,} item(s) that had failed, "
            f"in the same run ({summary.run_id})"
        )
    if summary.n_failed:
        # Failed answers are never cached, so a re-run asks the model for exactly these.
        console.print(
            f"[yellow]{summary.n_failed:,} item(s) failed[/]: run the same command again to "
            f"retry only them in run {summary.run_id} (--new-run starts a new run)"
        )
    console.print(
        f"next: [bold]autolabel export {summary.run_id} -o labels.jsonl[/], "
        f"[bold]autolabel route {summary.run_id}[/]"
    )


def print_failure_reasons(db: Database, run_id: int) -> None:
    """The top reasons items failed, with counts, real attempt counts and what to do."""
    from autolabel.engine.failures import failure_reasons

    reasons = failure_reasons(db, run_id)
    if not reasons:
        return
    # On stdout with the summary table: it is the answer to "what happened", not a log line.
    console.print("[bold red]why items failed[/]:", highlight=False)
    for reason in reasons:
        console.print(f"  {reason.line()}", highlight=False, markup=False, soft_wrap=True)


def plan(
    ontology: OntologyArg,
    data: DataArg,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    template: TemplateOpt = None,
    id_column: IdColumnOpt = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Dry run: items, prompt tokens, expected cache hits and cost. Calls no model.

    Example:

        autolabel plan sst2 examples/sst2_sample.csv
    """
    from autolabel.engine.plan import plan_job

    settings = settings_from(config, db=db)
    job = _job(
        settings,
        ontology,
        data,
        provider=provider,
        model=model,
        base_url=base_url,
        template=template,
        id_column=id_column,
        dataset=dataset,
        limit=limit,
        no_cache=False,
        quiet=True,
    )
    try:
        report = plan_job(job)
    finally:
        asyncio.run(job.provider.aclose())
    table = Table(
        title=f"plan: {job.ontology.name} on {data}", show_header=False, title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("items", f"{report.items:,}")
    table.add_row("bad rows", f"{report.n_bad_rows:,}")
    how = "model tokenizer" if report.tokens_exact else "estimate, ~4 chars/token"
    table.add_row("prompt tokens", f"{report.prompt_tokens:,} ({how})")
    table.add_row("output tokens (est.)", f"{report.output_tokens:,}")
    table.add_row("expected cache hits", f"{report.expected_cache_hits:,}")
    if report.resume_run_id is not None:
        table.add_row("resumes run", f"{report.resume_run_id} ({report.resumable_done:,} done)")
    table.add_row(
        "estimated cost",
        f"${report.cost_usd:.4f}"
        + ("" if report.cost_usd else " (set prices in autolabel.toml for paid endpoints)"),
    )
    table.add_row("prompt hash", report.prompt_hash[:16])
    console.print(table)
    for bad in report.bad_rows[:10]:
        err_console.print(f"[yellow]bad row[/] {data}: {bad.message}", highlight=False)


def export(
    run: Annotated[str, typer.Argument(help="Run id or name (see: autolabel runs).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file.")] = Path(
        "labels.jsonl"
    ),
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="jsonl, csv or parquet (default: from -o).")
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option(
            help="Write a versioned snapshot to this new directory instead: data.jsonl + "
            "manifest.json (ontology hash, runs, counts, per-label provenance, content hash). "
            "RUN may list several runs: 1,4,7."
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a run's labels: id, input fields, label(s), confidence, method, model, prompt hash.

    Examples:

        autolabel export 1 -o labels.csv

        autolabel export 1 --snapshot snapshots/sst2-2025-01
    """
    from autolabel.engine.export import export_run, get_run

    if snapshot is not None:
        from autolabel.interop.snapshot import write_snapshot

        database = open_db(settings_from(config, db=db))
        chosen = [get_run(database, ref.strip()) for ref in run.split(",") if ref.strip()]
        manifest = write_snapshot(database, chosen, snapshot)
        counts = manifest["counts"]["by_provenance"]
        console.print(
            f"snapshot {snapshot}: {manifest['counts']['items']:,} items "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())}), "
            f"data sha256 {manifest['files']['data.jsonl']['sha256'][:16]}…"
        )
        return

    if format is not None and format not in ("jsonl", "csv", "parquet"):
        raise ConfigError(f"unknown format {format!r}", hint="use jsonl, csv or parquet")
    fmt: Literal["jsonl", "csv", "parquet"] | None = format  # type: ignore[assignment]
    settings = settings_from(config, db=db)
    n = export_run(open_db(settings), run, output, fmt)
    console.print(f"exported {n:,} rows to {output}")


def runs(
    run: Annotated[
        str | None,
        typer.Argument(
            help="Show one run (id or name) with why its items failed.", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List recent runs with their status and counts; with RUN, that run and its failures.

    Examples:

        autolabel runs --limit 5

        autolabel runs 3
    """
    from sqlalchemy import select

    from autolabel.store.tables import Dataset, Run

    database = open_db(settings_from(config, db=db))
    if run is not None:
        _show_run(database, run)
        return
    table = Table(title="runs")
    for col in (
        "id",
        "name",
        "dataset",
        "ontology",
        "model",
        "status",
        "labeled",
        "failed",
        "cache hits",
        "started",
    ):
        table.add_column(col)
    with database.session() as s:
        rows = s.execute(
            select(Run, Dataset.name).join(Dataset).order_by(Run.id.desc()).limit(limit)  # type: ignore[union-attr]
        ).all()
        for run, ds in rows:
            table.add_row(
                str(run.id),
                run.name or "",
                ds,
                f"{run.ontology_name} v{run.ontology_version}",
                f"{run.provider}:{run.model}",
                run.status,
                str(run.n_labeled),
                str(run.n_failed),
                str(run.n_cache_hits),
                run.started_at.strftime("%Y-%m-%d %H:%M"),
            )
    console.print(table)


def _show_run(database: Database, ref: str) -> None:
    from autolabel.store.lookup import resolve_run

    with database.session() as s:
        found = resolve_run(s, ref)
        run_id = int(found.id or 0)
        table = Table(title=f"run {run_id}", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        table.add_row("name", found.name or "")
        table.add_row("ontology", f"{found.ontology_name} v{found.ontology_version}")
        table.add_row("model", f"{found.provider}:{found.model}")
        if found.base_url:
            table.add_row("endpoint", found.base_url)
        table.add_row("status", found.status)
        table.add_row("labeled", f"{found.n_labeled:,}")
        table.add_row("failed", f"{found.n_failed:,}")
        table.add_row("cache hits", f"{found.n_cache_hits:,}")
        table.add_row("started", found.started_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)
    print_failure_reasons(database, run_id)


def prompt_show(
    ontology: OntologyArg,
    data: Annotated[Path | None, typer.Argument(help="Data file to take an item from.")] = None,
    item: Annotated[int, typer.Option(help="Which data row (1-based).")] = 1,
    template: TemplateOpt = None,
) -> None:
    """Print the compiled prompt (messages + answer schema) and its hash.

    Examples:

        autolabel prompt show sst2

        autolabel prompt show sst2 examples/sst2_sample.csv --item 3
    """
    ont = load_ontology(ontology)
    compiler = PromptCompiler(ont, template=template)
    payload: dict[str, object] = {name: f"<{name}>" for name in ont.input.fields}
    if data is not None:
        validator = validator_for(ont, data)
        for row_number, row in read_rows(data, ont.input.image):
            if row_number == item:
                try:
                    payload = validator.validate(row_number, row).payload
                except BadRowError as exc:
                    raise ConfigError(f"{data}: {exc.message}") from None
                break
        else:
            raise ConfigError(f"{data} has no row {item}")
    compiled = compiler.compile(payload)
    console.print(compiled.to_text(), markup=False, highlight=False)
    console.print(f"\nprompt hash: {compiled.prompt_hash}", highlight=False)


def cache_stats(config: ConfigOption = None) -> None:
    """Show the response cache's location, entries and size."""
    settings = settings_from(config)
    stats = ResponseCache(settings.cache_dir).stats()
    console.print(f"{stats.directory}: {stats.entries:,} entries, {stats.size_bytes / 1e6:.1f} MB")


def cache_clear(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete every cached response (labels in the database are kept)."""
    settings = settings_from(config)
    if not yes:
        typer.confirm(f"clear {settings.cache_dir}?", abort=True)
    n = ResponseCache(settings.cache_dir).clear()
    console.print(f"removed {n:,} cached responses")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Label")(label)
    app.command(rich_help_panel="Label")(plan)
    app.command(rich_help_panel="Label")(export)
    app.command(rich_help_panel="Label")(runs)
    prompt_app = typer.Typer(help="Inspect compiled prompts.", no_args_is_help=True)
    prompt_app.command("show")(prompt_show)
    app.add_typer(prompt_app, name="prompt", rich_help_panel="Label")
    cache_app = typer.Typer(help="The on-disk response cache.", no_args_is_help=True)
    cache_app.command("stats")(cache_stats)
    cache_app.command("clear")(cache_clear)
    app.add_typer(cache_app, name="cache", rich_help_panel="Label")
