"""CLI commands of the review half: route, queue stats, audit, agreement, review (TUI).

Only ``review`` touches ``autolabel.tui`` (imported inside it), so every other command
works in a headless install.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from autolabel.cli.common import ConfigOption, DbOption, console, open_db, settings_from
from autolabel.errors import ConfigError

QueueOpt = Annotated[str, typer.Option("--queue", "-q", help="Review queue name.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command(rich_help_panel="Review")(route)
    app.command(rich_help_panel="Review")(audit)
    app.command(rich_help_panel="Review")(agreement)
    queue_app = typer.Typer(help="The review queue.", no_args_is_help=True)
    queue_app.command("stats")(queue_stats)
    app.add_typer(queue_app, name="queue", rich_help_panel="Review")
    _register_review_tui(app)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _per_label(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in values:
        name, sep, number = v.rpartition("=")
        try:
            out[name] = float(number)
        except ValueError:
            name = ""
        if not sep or not name:
            raise ConfigError(
                f"bad --per-label {v!r}", hint="write LABEL=THRESHOLD, e.g. neutral=0.9"
            )
    return out


def route(
    runs: Annotated[list[str], typer.Argument(help="Run id(s) or name(s); the first is routed.")],
    queue: QueueOpt = "default",
    threshold: Annotated[
        float | None, typer.Option(help="Auto-accept at or above this confidence.")
    ] = None,
    per_label: Annotated[
        list[str] | None, typer.Option("--per-label", help="LABEL=THRESHOLD (repeatable).")
    ] = None,
    audit_rate: Annotated[
        float | None, typer.Option(help="Share of auto-accepted items sent to audit.")
    ] = None,
    consensus: Annotated[
        int | None, typer.Option(help="Agreeing human decisions that make a label final.")
    ] = None,
    reviewers_per_item: Annotated[
        int | None, typer.Option(help="Decisions taken before a disagreement is adjudicated.")
    ] = None,
    honeypot_rate: Annotated[
        float | None, typer.Option(help="Gold items mixed in, as a share of queued items.")
    ] = None,
    gold_set: Annotated[
        str | None, typer.Option(help="Gold set (name or id) that honeypots come from.")
    ] = None,
    prior_column: Annotated[
        str | None, typer.Option(help="Input column with an existing label to check against.")
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(
            help="Queue order: confidence (lowest first), uncertainty (smallest margin), "
            "active (uncertain and unlike anything reviewed), random or fifo. "
            "Default: the ontology's review.order."
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Ignore the ontology's latest calibrator (autolabel calibrate)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for the audit share, honeypots, order.")] = 0,
    no_disagreement: Annotated[
        bool, typer.Option("--no-disagreement", help="Do not route on disagreements.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Send a run's doubtful predictions to a review queue; auto-accept the rest.

    Policy comes from the ontology's `review:` section; options override it.
    Give several runs to also route items the runs label differently.

    Example:

        autolabel route 3 --threshold 0.9 --audit-rate 0.05

        autolabel route big-model small-model --queue compare
    """
    from autolabel.engine.export import get_run
    from autolabel.learning.live import latest_calibrator
    from autolabel.review.routing import route as do_route

    database = open_db(settings_from(config, db=db))
    found = [get_run(database, ref) for ref in runs]
    run_ids = [int(r.id) for r in found]  # type: ignore[arg-type]
    calibrator = None if raw else latest_calibrator(database, found[0].ontology_name)
    overrides: dict[str, Any] = {
        "threshold": threshold,
        "audit_rate": audit_rate,
        "consensus": consensus,
        "reviewers_per_item": reviewers_per_item,
        "honeypot_rate": honeypot_rate,
        "per_label": _per_label(per_label) if per_label else None,
        "route_on_disagreement": False if no_disagreement else None,
    }
    report = do_route(
        database,
        run_ids,
        queue=queue,
        overrides=overrides,
        prior_column=prior_column,
        gold_set=gold_set,
        order=order,
        seed=seed,
        calibrator=calibrator,
    )
    summary = Table(title=f"routing run {run_ids[0]} → queue '{queue}'")
    if calibrator is not None:
        summary.caption = f"confidences recalibrated ({calibrator.method}); --raw to ignore"
    summary.add_column("")
    summary.add_column("items", justify="right")
    summary.add_row("predictions", f"{report.n_items:,}")
    summary.add_row("auto-accepted", f"{report.auto_accepted:,}")
    summary.add_row("queued for review", f"{report.queued:,}")
    summary.add_row("  new tasks / updated", f"{report.created:,} / {report.updated:,}")
    for reason, n in report.by_reason.items():
        summary.add_row(f"  {reason}", f"{n:,}")
    console.print(summary)
    labels = Table(title="per label")
    for name in ("label", "auto-accepted", "queued"):
        labels.add_column(name, justify="left" if name == "label" else "right")
    for name, counts in sorted(report.per_label.items()):
        labels.add_row(name, f"{counts['auto']:,}", f"{counts['queued']:,}")
    console.print(labels)


def queue_stats(
    queue: QueueOpt = "default",
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", "-r", help="Pace for one reviewer.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Counts by status, decisions per reviewer, pace and agreement with the model.

    Example:

        autolabel queue stats --queue default --reviewer alice
    """
    from autolabel.review.queue import ReviewQueue

    stats = ReviewQueue(open_db(settings_from(config, db=db)), queue).stats(reviewer)
    table = Table(title=f"queue '{queue}'")
    table.add_column("status")
    table.add_column("tasks", justify="right")
    for name in ("pending", "claimed", "skipped", "flagged", "adjudication", "decided", "total"):
        table.add_row(name, f"{getattr(stats, name):,}")
    console.print(table)
    if stats.done_by_reviewer:
        people = Table(title="decisions by reviewer")
        people.add_column("reviewer")
        people.add_column("decisions", justify="right")
        for name, n in sorted(stats.done_by_reviewer.items(), key=lambda kv: -kv[1]):
            people.add_row(name, f"{n:,}")
        console.print(people)
    who = reviewer or "all reviewers"
    pace = "–" if stats.pace_per_min is None else f"{stats.pace_per_min:.1f}/min"
    console.print(f"{who}: pace {pace}, agreement with model {_pct(stats.agreement_with_model)}")


def audit(
    item: Annotated[str, typer.Argument(help="The item's external id (or numeric item id).")],
    dataset: Annotated[
        int | None, typer.Option(help="Dataset id, when the external id is in several.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Show an item's history: every model prediction, routing reasons, every human action.

    Example:

        autolabel audit review-0042
    """
    from autolabel.review.audit import item_history

    h = item_history(open_db(settings_from(config, db=db)), item, dataset)
    console.print(f"[bold]item {h.external_id}[/] (id {h.item_id}, dataset {h.dataset_id})")
    for key, value in h.payload.items():
        console.print(f"  {key}: {_short(value, 200)}", highlight=False, markup=False)
    preds = Table(title="predictions")
    for name in ("run", "model", "label", "confidence", "method", "error"):
        preds.add_column(name)
    for p in h.predictions:
        preds.add_row(
            f"{p.run_id}" + (f" ({p.run_name})" if p.run_name else ""),
            p.model,
            _short(p.label) + ("" if p.on_current_content else " (earlier content)"),
            "–" if p.confidence is None else f"{p.confidence:.3f}",
            p.method or "",
            _short(p.error or "", 40),
        )
    console.print(preds)
    stale = [p.run_id for p in h.predictions if not p.on_current_content]
    if stale:
        console.print(
            f"[yellow]flag:[/] the prediction(s) of run {', '.join(map(str, stale))} were made "
            "on earlier content of this item (it changed under the same id)"
        )
    for ch in h.changes:
        console.print(
            f"[yellow]content changed[/] {ch.created_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" (seen by run {ch.run_id})" if ch.run_id else "")
            + f"; before: {_short(ch.old_payload, 120)}",
            highlight=False,
        )
    tasks = Table(title="review tasks")
    for name in ("task", "queue", "reasons", "status", "final", "source", "honeypot"):
        tasks.add_column(name)
    for t in h.tasks:
        tasks.add_row(
            str(t.task_id),
            t.queue,
            ", ".join(t.reasons),
            t.status,
            "" if t.final_label is None else _short(t.final_label),
            t.final_source or "",
            f"gold: {_short(t.gold_label)}" if t.is_honeypot else "",
        )
    console.print(tasks)
    acts = Table(title="decisions (append-only)")
    for name in ("#", "time (UTC)", "reviewer", "action", "before", "after", "seconds", "note"):
        acts.add_column(name)
    for d in h.decisions:
        action = d.action + (f" of #{d.undoes_id}" if d.undoes_id else "")
        acts.add_row(
            str(d.id),
            d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.reviewer,
            f"[strike]{action}[/] (undone)" if d.undone else action,
            "" if d.label_before is None else _short(d.label_before, 30),
            "" if d.label is None else _short(d.label, 30),
            "" if d.seconds is None else f"{d.seconds:.1f}",
            _short(d.note or "", 40),
        )
    console.print(acts)


def agreement(
    queue: Annotated[
        str | None, typer.Option("--queue", "-q", help="Review queue (default: all queues).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Inter-annotator agreement: Cohen's κ per reviewer pair, Fleiss' κ, Krippendorff's α,
    model-vs-human agreement per label and each reviewer's honeypot accuracy.

    Labels compare as whole answers (a multi-label set is one nominal value).

    Example:

        autolabel agreement --queue default
    """
    from autolabel.review.agreement import agreement_report

    r = agreement_report(open_db(settings_from(config, db=db)), queue)
    where = f"queue '{queue}'" if queue else "all queues"
    second = f" (+ {r.n_second_opinions:,} second opinions)" if r.n_second_opinions else ""
    console.print(f"[bold]{where}[/]: {r.n_decisions:,} decisions{second} on {r.n_items:,} items")
    if r.pairs:
        pairs = Table(title="reviewer pairs")
        for name in ("reviewer A", "reviewer B", "shared items", "agreement", "Cohen's κ"):
            pairs.add_column(name)
        for p in r.pairs:
            pairs.add_row(p.a, p.b, str(p.items), _pct(p.percent), f"{p.kappa:.3f}")
        console.print(pairs)
    if r.fleiss_kappa is not None:
        console.print(f"Fleiss' κ: {r.fleiss_kappa:.3f} ({r.fleiss_items} items)")
    if r.krippendorff_alpha is not None:
        console.print(f"Krippendorff's α (nominal): {r.krippendorff_alpha:.3f}")
    if not r.pairs:
        console.print("no item has two reviewers yet: use --consensus 2 when routing")
    if r.model_vs_human:
        mvh = Table(title="model vs human, by model label")
        for name in ("model label", "human decisions", "humans agreed"):
            mvh.add_column(name)
        for label, (n, same) in sorted(r.model_vs_human.items()):
            mvh.add_row(_short(label, 40), str(n), _pct(same / n))
        console.print(mvh)
    if r.honeypot_accuracy:
        hp = Table(title="honeypot accuracy")
        for name in ("reviewer", "honeypots", "correct", "accuracy"):
            hp.add_column(name)
        for who, (n, ok) in sorted(r.honeypot_accuracy.items()):
            hp.add_row(who, str(n), str(ok), _pct(ok / n))
        console.print(hp)


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
        adjudicate: bool = typer.Option(
            False,
            "--adjudicate",
            help="settle flagged and disputed items; your decision is final",
        ),
        idle_release: float | None = typer.Option(
            None,
            "--idle-release",
            help="give the shown item back after this many seconds without a key "
            "(default: the review_idle_release setting; unset: never)",
        ),
    ) -> None:
        """Review queued items in a terminal UI: one keypress per decision.

        Keys: a label's key (shown beside it) picks it, Enter accepts the model's
        suggestion, s skips, f flags with a note, u undoes, e edits spans, / filters
        labels, g shows the guidelines, ? lists every key, q quits (and frees the item).
        Every decision is saved at once; run it again to continue where you left off.
        The shown item's lease is renewed while the app runs; --idle-release gives it
        back after that many idle seconds.

        Example:  autolabel review --reviewer alice --queue default
        """
        from autolabel.settings import load_settings
        from autolabel.tui.launch import run_review

        settings = load_settings(db=db)
        n = run_review(
            settings.database_url,
            queue,
            reviewer,
            lease_seconds=lease,
            adjudicate=adjudicate,
            idle_release_s=idle_release
            if idle_release is not None
            else settings.review_idle_release,
        )
        typer.echo(f"{reviewer}: {n} decision(s) saved in queue '{queue}'")
