"""CLI commands of the learning loop: simulate, check, calibrate, relabel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autolabel.cli.common import ConfigOption, DbOption, console, open_db, settings_from
from autolabel.cli.labeling import BaseUrlOpt, ModelOpt, OntologyArg, ProviderOpt, TemplateOpt
from autolabel.engine.cache import ResponseCache
from autolabel.errors import ConfigError
from autolabel.ontology.loader import load_ontology, resolve_ontology_path


def _pct(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1%}"


def simulate_cmd(
    ontology: OntologyArg,
    data: Annotated[Path, typer.Argument(help="Gold data: input fields + a gold label column.")],
    gold_column: Annotated[str, typer.Option(help="Column holding the gold label.")] = "label",
    target: Annotated[float, typer.Option(help="Target accuracy of the whole dataset.")] = 0.95,
    batch: Annotated[int, typer.Option(help="Items the reviewer answers per round.")] = 20,
    report: Annotated[Path, typer.Option(help="Report directory.")] = Path("simulate-report"),
    seed: Annotated[int, typer.Option(help="Seed: orders and ties.")] = 0,
    k: Annotated[int, typer.Option(help="Demonstrations per prompt in the loop.")] = 8,
    limit: Annotated[int | None, typer.Option(help="Use only the first N rows.")] = None,
    budget: Annotated[float, typer.Option(help="Most share of items the loop reviews.")] = 1.0,
    strategies: Annotated[
        str, typer.Option(help="Comma-separated: random,confidence,loop.")
    ] = "random,confidence,loop",
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    template: TemplateOpt = None,
    id_column: Annotated[str | None, typer.Option(help="Column with a stable item id.")] = None,
    config: ConfigOption = None,
) -> None:
    """Replay a gold set as the reviewer and plot human effort against dataset accuracy.

    Writes REPORT/report.json (per strategy: points, effort_to_target), effort.png,
    report.md and report.html.
    """
    from autolabel.learning.data import read_labelled
    from autolabel.learning.live import default_cache
    from autolabel.learning.model_labels import ModelLabels
    from autolabel.learning.simulate import STRATEGIES, SimConfig, simulate
    from autolabel.learning.simulate_report import write_report
    from autolabel.providers.factory import create_provider

    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    bad = [s for s in chosen if s not in STRATEGIES]
    if bad or not chosen:
        raise ConfigError(f"unknown strategy {bad}", hint=f"use some of: {', '.join(STRATEGIES)}")
    if not 0 < target <= 1 or batch < 1 or not 0 < budget <= 1:
        raise ConfigError("--target and --budget must be in (0, 1], --batch at least 1")
    settings = settings_from(config)
    ont = load_ontology(resolve_ontology_path(ontology))
    items = read_labelled(data, ont, gold_column, id_column=id_column, limit=limit)
    prov = create_provider(
        settings, provider=provider, model=model, base_url=base_url, ontology=ont
    )
    labels = ModelLabels(
        ont, prov, ResponseCache(settings.cache_dir), template=template, concurrency=4
    )
    cache = default_cache([it.text for it in items])
    cfg = SimConfig(target=target, batch=batch, seed=seed, k=k, budget=budget)

    def progress(info: dict) -> None:
        console.print(
            f"loop: {info['reviewed']} reviewed ({info['share']:.0%}) → accuracy "
            f"{info['accuracy']:.1%}, unreviewed {info['unreviewed_accuracy']:.1%} "
            f"(zero-shot {info['zero_shot_unreviewed_accuracy']:.1%}), {info['relabel_s']}s",
            highlight=False,
        )

    def meta(partial: bool) -> dict:
        return {
            "ontology": ont.name,
            "data": str(data),
            "n_items": len(items),
            "model": prov.model,
            "target": target,
            "targets": [0.9, 0.95],
            "batch": batch,
            "seed": seed,
            "k": k,
            "budget": budget,
            "strategies": chosen,
            "n_threads": settings.n_threads,
            "model_calls": labels.model_calls,
            "cache_hits": labels.cache_hits,
            "partial": partial,
        }

    def checkpoint(results_so_far: dict) -> None:
        # A long run leaves a report after every round (marked partial) if stopped.
        write_report(report, results_so_far, meta(partial=True))

    results = simulate(
        items, labels, cache, cfg, strategies=chosen, on_round=progress, on_checkpoint=checkpoint
    )
    files = write_report(report, results, meta(partial=False))
    table = Table(title=f"effort to {target:.0%} ({len(items)} items)")
    for col in ("strategy", "zero-shot acc.", "effort to 90%", "effort to 95%", "to target"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.extra['zero_shot_accuracy']:.1%}",
            _pct(r.extra["effort"].get("0.9")),
            _pct(r.extra["effort"].get("0.95")),
            _pct(r.effort_to_target),
        )
    console.print(table)
    console.print(f"model calls {labels.model_calls}, cache hits {labels.cache_hits}")
    console.print(f"report: {files[0]}", highlight=False)


def check_cmd(
    labels_file: Annotated[Path, typer.Argument(help="Data with existing labels.")],
    ontology: Annotated[str, typer.Option("--ontology", help="Ontology YAML or name.")],
    label_column: Annotated[str, typer.Option(help="Column holding the labels.")] = "label",
    top: Annotated[int, typer.Option(help="Show this many suspects.")] = 20,
    queue: Annotated[str | None, typer.Option(help="Send suspects to this review queue.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write all suspects as JSONL.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N rows.")] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Rank existing labels most likely wrong (confident learning with cleanlab)."""
    from autolabel.learning.check import check_labels

    settings = settings_from(config, db=db)
    path = resolve_ontology_path(ontology)
    result = check_labels(
        settings,
        path,
        labels_file,
        label_column,
        queue=queue,
        limit=limit,
        provider=provider,
        model=model,
        base_url=base_url,
    )
    table = Table(title=f"{len(result.suspects)} suspected label errors in {result.n} labels")
    for col in ("row id", "given", "model says", "quality"):
        table.add_column(col)
    for s in result.suspects[:top]:
        table.add_row(result.refs[s.index], s.given, s.suggested, f"{s.quality:.3f}")
    console.print(table)
    if queue:
        console.print(f"queued {result.queued} suspects in queue '{queue}' (run {result.run_id})")
    if out is not None:
        with out.open("w", encoding="utf-8") as fh:
            for s in result.suspects:
                row = {"id": result.refs[s.index], "given": s.given, "suggested": s.suggested}
                fh.write(json.dumps({**row, "quality": s.quality}) + "\n")


def calibrate_cmd(
    ontology_name: Annotated[str, typer.Argument(help="Ontology name (as in autolabel runs).")],
    queue: Annotated[str | None, typer.Option(help="Only decisions of this queue.")] = None,
    method: Annotated[str, typer.Option(help="auto, temperature, platt or isotonic.")] = "auto",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Fit a calibrator on human decisions; route, relabel and the TUI then use it."""
    from autolabel.learning.calibrators import fit_and_store

    if method not in ("auto", "temperature", "platt", "isotonic"):
        raise ConfigError(f"unknown method {method!r}", hint="auto, temperature, platt, isotonic")
    record = fit_and_store(
        open_db(settings_from(config, db=db)),
        ontology_name,
        queue=queue,
        method=method,  # type: ignore[arg-type]
    )
    console.print(
        f"calibrator v{record.version} for '{ontology_name}': {record.method}, fitted on "
        f"{record.n_fitted} decisions (autolabel eval reports ECE on other items)"
    )


def relabel_cmd(
    run: Annotated[str, typer.Argument(help="Run id or name to re-label from.")],
    queue: Annotated[str, typer.Option(help="Review queue to re-route into.")] = "default",
    order: Annotated[str | None, typer.Option(help="Queue order (default: review.order).")] = None,
    k: Annotated[int | None, typer.Option(help="Demonstrations per prompt.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the order and audit share.")] = 0,
    raw: Annotated[bool, typer.Option("--raw", help="Do not apply the calibrator.")] = False,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Re-label every item no human decided, with demonstrations from the decisions and the
    latest calibrator, as a new run; withdraw tasks now confident, queue new doubtful ones."""
    from autolabel.engine.export import get_run
    from autolabel.learning.relabel import relabel
    from autolabel.providers.factory import create_provider

    settings = settings_from(config, db=db)
    database = open_db(settings)
    parent = get_run(database, run)
    from autolabel.ontology.schema import Ontology

    prov = create_provider(
        settings,
        provider=provider,
        model=model or parent.model,
        base_url=base_url,
        ontology=Ontology.model_validate(parent.ontology),
    )
    report = relabel(
        database,
        int(parent.id),  # type: ignore[arg-type]
        prov,
        ResponseCache(settings.cache_dir),
        queue=queue,
        order=order,
        seed=seed,
        k=k,
        use_calibrator=not raw,
        concurrency=settings.concurrency,
    )
    console.print(
        f"run {report.run_id} (parent {report.parent_run_id}): re-labelled "
        f"{report.n_relabelled} items with {report.n_demonstrations} demonstrations in the "
        f"pool; {report.n_kept_human} human decisions kept; calibrator "
        f"{'v' + str(report.calibrator_version) if report.calibrator_version else 'none'}"
    )
    if report.routing is not None:
        console.print(
            f"queue '{queue}': {report.routing.queued} queued ({report.routing.created} new), "
            f"{len(report.withdrawn)} withdrawn as now confident; model calls "
            f"{report.model_calls}, cache hits {report.cache_hits}"
        )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
    app.command("check")(check_cmd)
    app.command("calibrate")(calibrate_cmd)
    app.command("relabel")(relabel_cmd)
