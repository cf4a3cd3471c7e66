"""CLI commands: gold import / from-review / list, eval, experiment, history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from autolabel.cli.common import ConfigOption, DbOption
from autolabel.errors import ConfigError

console = Console()

gold_app = typer.Typer(
    help="Gold labels (human truth) to evaluate runs against.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _db(db: str | None = None, config: Path | None = None) -> Any:
    from autolabel.cli.common import open_db, settings_from

    settings = settings_from(config, db=db)
    return open_db(settings), settings


def _num(value: Any, pct: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1%}" if pct else f"{value:.3f}"
    return str(value)


@gold_app.command("import")
def gold_import(
    file: Annotated[Path, typer.Argument(help="CSV/JSONL with a label column, or CoNLL/BIO")],
    ontology: Annotated[str, typer.Option("--ontology", "-o", help="ontology name or file")],
    label_column: Annotated[str, typer.Option(help="column holding the gold label")] = "label",
    name: Annotated[str | None, typer.Option(help="gold set name (default: file stem)")] = None,
    id_column: Annotated[
        str | None, typer.Option(help="column with stable item ids (as used when labeling)")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="dataset name (default: file stem, like `label`)")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv | jsonl | conll (default: by suffix)")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Import gold labels from a file; each import makes a new version of the set.

    Multi-label values may be a JSON list or `a|b`; spans a JSON list of
    {start, end, label}; CoNLL/BIO token files become text joined by single spaces.

    Example:

    `autolabel gold import eval/data/sst2_dev.csv -o sst2 --label-column label --id-column id`
    """
    from autolabel.evaluation.gold import import_gold
    from autolabel.ontology.loader import load_ontology

    ont = load_ontology(ontology)
    database, _ = _db(db, config)
    gold, n = import_gold(
        database,
        ont,
        file,
        label_column=label_column,
        name=name,
        id_column=id_column,
        dataset=dataset,
        fmt=fmt,
    )
    console.print(
        f"gold set [bold]{gold.name}@{gold.version}[/]: {n} labels for ontology "
        f"'{ont.name}' (dataset id {gold.dataset_id})"
    )


@gold_app.command("from-review")
def gold_from_review_cmd(
    queue: Annotated[str, typer.Option("--queue", "-q", help="review queue name")],
    name: Annotated[str | None, typer.Option(help="gold set name (default: QUEUE-review)")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a gold set from the final human decisions of a review queue.

    Example:  `autolabel gold from-review --queue sst2`
    """
    from autolabel.evaluation.gold import gold_from_review

    database, _ = _db(db, config)
    gold, n = gold_from_review(database, queue, name=name)
    console.print(f"gold set [bold]{gold.name}@{gold.version}[/]: {n} human-decided labels")


@gold_app.command("list")
def gold_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List gold sets and versions.

    Example:  `autolabel gold list`
    """
    from sqlmodel import col, func, select

    from autolabel.store.tables import GoldLabel, GoldSet

    database, _ = _db(db, config)
    table = Table("id", "name", "version", "ontology", "labels", "source", "created")
    with database.session() as session:
        counts = dict(
            session.exec(
                select(GoldLabel.gold_set_id, func.count()).group_by(GoldLabel.gold_set_id)
            ).all()
        )
        for g in session.exec(select(GoldSet).order_by(col(GoldSet.id))):
            table.add_row(
                str(g.id),
                g.name,
                str(g.version),
                g.ontology_name,
                str(counts.get(g.id, 0)),
                g.source or "",
                f"{g.created_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)


def _split(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def eval_cmd(
    run: Annotated[str, typer.Argument(help="run id or name")],
    gold: Annotated[
        str | None, typer.Option(help="gold set NAME[@VERSION] (default: newest for the run)")
    ] = None,
    target_precision: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="precision the auto-accept threshold must reach"),
    ] = 0.95,
    calibration_split: Annotated[
        str,
        typer.Option(help="fraction of items to choose the threshold on, or a gold set name"),
    ] = "0.5",
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="write the threshold into the ontology's review: (and, for listed "
            "multi-label scoring, the rule fitted on this run's gold items into multi_label:)",
        ),
    ] = False,
    ontology: Annotated[
        str | None, typer.Option(help="ontology file for --apply (default: the run's)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="write report.md/.html/.json and plots into this folder")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of bootstraps and the split")] = 0,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Score a run against gold: metrics, failures, calibration, threshold, cost.

    The threshold is chosen on the calibration split and reported on the held-out rest.

    Example:  `autolabel eval 3 --gold sst2_dev --target-precision 0.95 --report reports/run3`
    """
    from autolabel.evaluation.evaluate import evaluate_run

    database, settings = _db(db, config)
    result = evaluate_run(
        database,
        run,
        gold_ref=gold,
        target_precision=target_precision,
        calibration_split=_split(calibration_split),
        seed=seed,
        settings=settings,
    )
    print_result(result)
    if apply:
        _apply(result, ontology)
    if report:
        from autolabel.evaluation.report import write_eval_report

        paths = write_eval_report(result, report)
        console.print("report: " + ", ".join(str(p) for p in paths))


def _apply(result: Any, ontology: str | None) -> None:
    from autolabel.evaluation.apply import apply_threshold

    target = ontology or result.run.get("ontology_path") or result.run["ontology"]
    used = result.run.get("multi_label") or {}
    if used.get("method") == "listed" and _apply_listed_rule(result, used, target):
        return
    t = (result.threshold or {}).get("recommended")
    if t is None:
        raise ConfigError("no threshold reaches the target precision: nothing to apply")
    path = apply_threshold(target, t)
    console.print(f"wrote review.threshold: {t:.4f} into {path}")


def _apply_listed_rule(result: Any, used: dict[str, Any], target: str) -> bool:
    """Fit the listed rule on the run's gold items and write it; True when it changed
    (the run's confidences, and so its threshold, belong to the old rule)."""
    from autolabel.evaluation.apply import apply_listed_rule
    from autolabel.evaluation.multilabel_rule import fit_listed_rule, raw_shares

    scored = [p for p in result.pairs if p.pred is not None and p.method == "listed_shares"]
    if not scored:
        raise ConfigError(
            "no item of the run has listed label shares: nothing to fit",
            hint="the listed rule is fitted on runs of the embedded model (--model, no "
            "--base-url); an endpoint's answers carry no shares",
        )
    labels = list(scored[0].distribution)
    priors = used.get("priors") or {}
    shares = [raw_shares(p.distribution, priors, labels) for p in scored]
    rule = fit_listed_rule(labels, shares, [p.gold or [] for p in scored])
    note = (
        f"fitted by `autolabel eval --apply` on run {result.run['id']}: {rule.n_items} "
        f"items, macro-F1 {rule.macro_f1:.3f} on them"
    )
    path = apply_listed_rule(target, rule, note)
    console.print(
        f"wrote multi_label (relative_threshold {rule.relative_threshold:g}, priors at "
        f"power {rule.power:g}; macro-F1 {rule.macro_f1:.3f} on these {rule.n_items} items) "
        f"into {path}"
    )
    # Over both label sets: a fit without correction (no priors) differs from a run with.
    same = used.get("relative_threshold", 1.0) == rule.relative_threshold and all(
        abs(priors.get(n, 1.0) - rule.priors.get(n, 1.0)) <= 1e-4 * rule.priors.get(n, 1.0)
        for n in {*priors, *rule.priors}
    )
    if not same:
        console.print(
            "review.threshold left as it is: this run's confidences come from the old rule. "
            "Label again (the answers come from the cache) and run `eval --apply` on the new "
            "run to choose it. Report on items the rule was not fitted on."
        )
    return not same


def print_result(result: Any) -> None:
    """The rich tables of one evaluation."""
    s, run, gold = result.summary, result.run, result.gold
    console.print(
        f"[bold]run {run['id']}[/] {run['provider']}/{run['model']} · {run['ontology']} "
        f"({run['template']}) vs gold [bold]{gold['name']}@{gold['version']}[/]"
    )
    head = Table(title="summary", show_header=True)
    for col_name in (
        "items",
        "failed",
        "not in run",
        "accuracy",
        "95% CI",
        "macro-F1",
        "ECE",
        "Brier",
        "AUROC",
    ):
        head.add_column(col_name, justify="right")
    ci = result.intervals.get("accuracy", {})
    head.add_row(
        str(result.n),
        str(result.n_failed),
        str(result.n_unmatched),
        _num(s.get("accuracy"), pct=True),
        f"{_num(ci.get('low'), True)}–{_num(ci.get('high'), True)}",
        _num(s.get("macro_f1")),
        _num(s.get("ece")),
        _num(s.get("brier")),
        _num(s.get("auroc")),
    )
    console.print(head)
    rows = result.metrics.get("per_label") or result.metrics.get("per_type") or []
    if rows:
        table = Table("label", "support", "predicted", "P", "R", "F1", title="per label")
        for r in rows:
            table.add_row(
                r["label"],
                str(r["support"]),
                str(r["predicted"]),
                _num(r["precision"]),
                _num(r["recall"]),
                _num(r["f1"]),
            )
        console.print(table)
    boxes = result.metrics.get("per_class") or []
    if boxes:
        table = Table("class", "gold boxes", "predicted", "AP@0.5", "AP@[.5:.95]", title="boxes")
        for r in boxes:
            table.add_row(
                r["label"], str(r["n_gold"]), str(r["n_pred"]), _num(r["ap50"]), _num(r["ap"])
            )
        table.add_row("mAP", "", "", _num(s.get("map50")), _num(s.get("map")), style="bold")
        console.print(table)
    conf = result.metrics.get("top_confusions") or []
    if conf:
        table = Table("gold", "predicted", "count", title="top confusions")
        for g, p, c in conf[:8]:
            table.add_row(g, p, str(c))
        console.print(table)
    if result.n_failed:
        console.print(f"[yellow]failed items: {result.n_failed} (counted as wrong)[/]")
    for note in result.metrics.get("notes", []):
        console.print(f"[dim]note: {note}[/]")
    c = result.cost
    cost = "unpriced" if c["cost_per_item_usd"] is None else f"${c['cost_per_item_usd']:.6f}/item"
    model_ms, wall_ms = c.get("model_ms_per_item"), c.get("wall_ms_per_item")
    console.print(
        f"tokens/item {c['tokens_per_item']:.1f} · model latency "
        f"{'–' if model_ms is None else f'{model_ms:.0f} ms'}/item"
        f"{'' if wall_ms is None else f' (wall {wall_ms:.0f} ms with queueing)'} · {cost}"
    )
    if result.threshold:
        console.print(f"[bold]threshold:[/] {result.threshold['sentence']}")
    r = getattr(result, "recalibration", None)
    if r:
        console.print(
            f"[bold]recalibration[/] v{r['calibrator_version']} ({r['method']}, fitted on "
            f"{r['n_fitted']} decisions): ECE {r['ece_before']:.3f} → {r['ece_after']:.3f} on "
            f"{r['n_held_out']} items not used for fitting ({r['n_excluded']} excluded)"
        )


def experiment_cmd(
    file: Annotated[Path, typer.Argument(help="experiment YAML (see eval/*.yaml)")],
    report: Annotated[
        Path | None, typer.Option(help="report folder (default: eval/reports/<name>)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="items per dataset (overrides the file)")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Run prompt variants × models × datasets, evaluate each and write a comparison report.

    Example:  `autolabel experiment eval/compare_prompts_models.yaml`
    """
    from autolabel.evaluation.experiments import load_experiment, run_experiment

    exp = load_experiment(file)
    database, settings = _db(db, config)
    result = run_experiment(
        exp, db=database, settings=settings, report_dir=report, limit=limit, log=console.print
    )
    table = Table(
        "dataset",
        "variant",
        "model",
        "acc",
        "macro-F1",
        "ECE",
        "cov@P",
        "items/s",
        title=f"experiment {exp.name}",
    )
    for row in result.rows:
        table.add_row(
            row["dataset"],
            row["variant"],
            row["model"],
            _num(row["accuracy"], True),
            _num(row["macro_f1"]),
            _num(row["ece"]),
            _num(row["coverage_at_target"], True),
            _num(row["items_per_s"]),
        )
    console.print(table)
    console.print(f"report: {result.report_dir}")


def history_cmd(
    metric: Annotated[
        list[str] | None, typer.Option(help="metric column(s) to show (repeatable)")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="only this experiment")] = None,
    run: Annotated[str | None, typer.Option(help="only this run")] = None,
    limit: Annotated[int, typer.Option(help="newest N evaluations")] = 50,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Show how metrics moved across evaluations (oldest first) with the change per row.

    Example:  `autolabel history --metric accuracy --metric ece`
    """
    from autolabel.evaluation.evaluate import history

    database, _ = _db(db, config)
    rows = history(database, run=run, experiment=experiment, limit=limit)
    if not rows:
        console.print("no evaluations yet: run `autolabel eval RUN`")
        return
    metrics = metric or ["accuracy", "macro_f1", "ece", "coverage_at_target"]
    table = Table(
        "eval",
        "when",
        "run",
        "model",
        "ontology",
        "gold",
        "experiment",
        *metrics,
        title="evaluation history",
    )
    last: dict[str, float] = {}
    for row in rows:
        cells = []
        for name in metrics:
            value = row.get(name)
            text = _num(value)
            key = f"{row['ontology']}|{row['gold']}|{name}"
            if isinstance(value, int | float) and key in last:
                delta = value - last[key]
                if abs(delta) > 1e-12:
                    text += f" ({'+' if delta > 0 else ''}{delta:.3f})"
            if isinstance(value, int | float):
                last[key] = value
            cells.append(text)
        table.add_row(
            str(row["eval_id"]),
            f"{row['when']:%m-%d %H:%M}",
            row["run"],
            row["model"],
            row["ontology"],
            row["gold"],
            row["experiment"] or "",
            *cells,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    panel = "Evaluate"
    app.add_typer(gold_app, name="gold", rich_help_panel=panel)
    app.command("eval", rich_help_panel=panel)(eval_cmd)
    app.command("experiment", rich_help_panel=panel)(experiment_cmd)
    app.command("history", rich_help_panel=panel)(history_cmd)
