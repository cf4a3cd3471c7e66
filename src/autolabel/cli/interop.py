"""CLI for working with other tools: Label Studio, Hugging Face datasets, spaCy, CoNLL,
and ontology versions (diff, migrate). The work is in ``autolabel.interop``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autolabel.cli.common import ConfigOption, DbOption, console, open_db, settings_from
from autolabel.errors import ConfigError

RunArg = Annotated[str, typer.Argument(help="Run id or name (see: autolabel runs).")]
LabelsOpt = Annotated[
    str,
    typer.Option(
        "--labels",
        help="'final': reviewed items carry the human label (default); 'model': predictions only.",
    ),
]
OntologyOpt = Annotated[str, typer.Option("--ontology", "-o", help="Ontology name or YAML file.")]

labelstudio_app = typer.Typer(
    help="Label Studio: tasks with pre-annotations out, annotations back in.",
    no_args_is_help=True,
)
hf_app = typer.Typer(help="Hugging Face datasets (no Hub access).", no_args_is_help=True)
spacy_app = typer.Typer(help="spaCy DocBin (.spacy) for entity spans.", no_args_is_help=True)
conll_app = typer.Typer(help="CoNLL/BIO token files for entity spans.", no_args_is_help=True)
coco_app = typer.Typer(help="COCO JSON for image runs (boxes and labels).", no_args_is_help=True)
yolo_app = typer.Typer(help="YOLO txt label files for boxes runs.", no_args_is_help=True)
ontology_app = typer.Typer(
    help="Ontology versions: diff two versions, migrate labels.", no_args_is_help=True
)


def _db(db: str | None, config: Path | None) -> Any:
    return open_db(settings_from(config, db=db))


def _labels_choice(value: str) -> Any:
    if value not in ("final", "model"):
        raise ConfigError(f"--labels must be 'final' or 'model', not {value!r}")
    return value


# -- Label Studio ---------------------------------------------------------


@labelstudio_app.command("export")
def labelstudio_export(
    run: RunArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Tasks JSON (the config goes to .xml beside it).")
    ] = Path("labelstudio_tasks.json"),
    labels: LabelsOpt = "model",
    image_prefix: Annotated[
        str,
        typer.Option(
            "--image-prefix",
            help="Image runs: prepended to each image path to make its URL in Label Studio "
            "(default: Label Studio's local-files route; e.g. https://host/images/).",
        ),
    ] = "/data/local-files/?d=",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a run as Label Studio tasks with predictions, plus the labeling config XML.

    Import the JSON into a Label Studio project whose labeling interface is the XML;
    the model's labels show as pre-annotations with their score. With `--labels final`,
    items a human already settled arrive as finished annotations instead.

    Example:  `autolabel labelstudio export 1 -o tasks.json`
    """
    from autolabel.interop import labelstudio, records

    database = _db(db, config)
    run_row = records.load_run(database, run)
    ont = records.run_ontology(run_row)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    config_path, n = labelstudio.export_tasks(ont, recs, output, image_prefix=image_prefix)
    console.print(f"wrote {n:,} tasks to {output} and the labeling config to {config_path}")


@labelstudio_app.command("import")
def labelstudio_import(
    file: Annotated[Path, typer.Argument(help="Label Studio JSON export (list of tasks).")],
    ontology: OntologyOpt,
    as_: Annotated[
        str, typer.Option("--as", help="'gold' (a new gold set version) or 'decisions'.")
    ] = "gold",
    name: Annotated[str | None, typer.Option(help="Gold set name (default: file stem).")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset for gold items (default: file stem).")
    ] = None,
    run: Annotated[
        str | None, typer.Option(help="--as decisions: the run whose items were labeled.")
    ] = None,
    queue: Annotated[str, typer.Option(help="--as decisions: review queue.")] = "labelstudio",
    reviewer: Annotated[
        str, typer.Option(help="Reviewer name when an annotation has no annotator.")
    ] = "labelstudio",
    id_column: Annotated[
        str | None, typer.Option(help="Data key with item ids (default: autolabel_id, id).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Import a Label Studio JSON export as a gold set or as human review decisions.

    Labels are mapped through the ontology; an unknown label is reported with the file
    and record, and nothing is written until every record is valid.

    Examples:

    `autolabel labelstudio import export.json -o sst2 --as gold --name sst2-ls`

    `autolabel labelstudio import export.json -o sst2 --as decisions --run 1`
    """
    from autolabel.interop import labelstudio, records
    from autolabel.ontology.loader import load_ontology

    if as_ not in ("gold", "decisions"):
        raise ConfigError(f"--as must be 'gold' or 'decisions', not {as_!r}")
    ont = load_ontology(ontology)
    recs = labelstudio.read_export(file, ont, id_column=id_column)
    database = _db(db, config)
    if as_ == "gold":
        gold, n = records.store_as_gold(
            database,
            ont,
            labelstudio.latest_per_item(recs),
            name=name or file.stem,
            dataset=dataset or file.stem,
            source=str(file),
        )
        console.print(f"gold set [bold]{gold.name}@{gold.version}[/]: {n} labels from {file}")
        return
    if run is None:
        raise ConfigError("--as decisions needs --run RUN", hint="the run you exported")
    result = records.store_as_decisions(
        database, recs, run_ref=run, queue=queue, reviewer=reviewer, source=str(file)
    )
    console.print(
        f"queue [bold]{result.queue}[/] (run {result.run_id}): {result.added} decisions "
        f"recorded, {result.unchanged} already there"
    )


# -- Hugging Face datasets ---------------------------------------------------------


@hf_app.command("export")
def hf_export(
    run: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for save_to_disk.")],
    parquet: Annotated[
        Path | None, typer.Option(help="Also write the dataset as this Parquet file.")
    ] = None,
    labels: LabelsOpt = "final",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a run as a `datasets.Dataset` (ClassLabel features, confidence columns).

    Load it with `datasets.load_from_disk(DIR)`. Needs `pip install 'autolabel[hf]'`.

    Example:  `autolabel hf export 1 -o sst2_labels --parquet sst2_labels.parquet`
    """
    from autolabel.interop import hf, records

    database = _db(db, config)
    run_row = records.load_run(database, run)
    ont = records.run_ontology(run_row)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    n = hf.export_dataset(ont, recs, output, parquet=parquet)
    console.print(f"saved {n:,} rows to {output}" + (f" and {parquet}" if parquet else ""))


# -- entities: spaCy and CoNLL ---------------------------------------------------------

MisalignedOpt = Annotated[
    str,
    typer.Option(
        "--misaligned",
        help="Spans off token boundaries: 'fail' (report, write nothing), 'skip' or 'expand'.",
    ),
]


def _misaligned(value: str) -> Any:
    if value not in ("fail", "skip", "expand"):
        raise ConfigError(f"--misaligned must be fail, skip or expand, not {value!r}")
    return value


def _report(result: Any) -> None:
    console.print(f"wrote {result.docs:,} documents, {result.spans:,} spans to {result.path}")
    for problem in result.problems[:20]:
        console.print(f"  [yellow]{problem.describe()}[/]", highlight=False)
    if len(result.problems) > 20:
        console.print(f"  … and {len(result.problems) - 20} more")


@spacy_app.command("export")
def spacy_export(
    run: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .spacy file.")],
    labels: LabelsOpt = "final",
    misaligned: MisalignedOpt = "fail",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a spans run as a spaCy DocBin (blank English tokenizer, spans as doc.ents).

    Example:  `autolabel spacy export 3 -o train.spacy --misaligned expand`
    """
    from autolabel.interop import entities, records

    database = _db(db, config)
    run_row = records.load_run(database, run)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    _report(
        entities.export_docbin(
            records.run_ontology(run_row), recs, output, misaligned=_misaligned(misaligned)
        )
    )


@spacy_app.command("import")
def spacy_import(
    file: Annotated[Path, typer.Argument(help="A .spacy DocBin.")],
    ontology: OntologyOpt,
    name: Annotated[str | None, typer.Option(help="Gold set name (default: file stem).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset (default: file stem).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Import a DocBin's entities as a gold set (a new version of NAME).

    Example:  `autolabel spacy import dev.spacy -o ner --name ner-dev`
    """
    from autolabel.interop import entities, records
    from autolabel.ontology.loader import load_ontology

    ont = load_ontology(ontology)
    recs = entities.read_docbin(file, ont)
    gold, n = records.store_as_gold(
        _db(db, config),
        ont,
        recs,
        name=name or file.stem,
        dataset=dataset or file.stem,
        source=str(file),
    )
    console.print(f"gold set [bold]{gold.name}@{gold.version}[/]: {n} documents from {file}")


@conll_app.command("export")
def conll_export(
    run: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .conll file.")],
    labels: LabelsOpt = "final",
    misaligned: MisalignedOpt = "fail",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a spans run as CoNLL/BIO (`token TAG` per line, blank line between items).

    Import CoNLL as gold with `autolabel gold import FILE.conll -o ONTOLOGY`.

    Example:  `autolabel conll export 3 -o train.conll`
    """
    from autolabel.interop import entities, records

    database = _db(db, config)
    run_row = records.load_run(database, run)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    _report(
        entities.export_conll(
            records.run_ontology(run_row), recs, output, misaligned=_misaligned(misaligned)
        )
    )


# -- images: COCO and YOLO ---------------------------------------------------------


@coco_app.command("export")
def coco_export(
    run: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The COCO .json file.")] = Path(
        "coco.json"
    ),
    labels: LabelsOpt = "final",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write an image run as COCO JSON: images, categories, annotations with bbox and score.

    Boxes runs give one annotation per object; classification runs one whole-image
    annotation per label. With `--labels final` reviewed items carry the human label.

    Example:  `autolabel coco export 4 -o coco.json`
    """
    from autolabel.interop import coco, records

    database = _db(db, config)
    run_row = records.load_run(database, run)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    n_images, n_ann = coco.export_coco(records.run_ontology(run_row), recs, output)
    console.print(f"wrote {n_images:,} images and {n_ann:,} annotations to {output}")


@yolo_app.command("export")
def yolo_export(
    run: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for labels/.")] = Path(
        "yolo"
    ),
    labels: LabelsOpt = "final",
    confidence: Annotated[
        bool, typer.Option("--confidence", help="Add each box's confidence as a 6th column.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a boxes run as YOLO txt files (labels/..., classes.txt, data.yaml).

    Example:  `autolabel yolo export 4 -o yolo/`
    """
    from autolabel.interop import records, yolo

    database = _db(db, config)
    run_row = records.load_run(database, run)
    recs = records.run_records(database, run_row, labels=_labels_choice(labels))
    n = yolo.export_yolo(records.run_ontology(run_row), recs, output, confidence=confidence)
    console.print(f"wrote labels for {n:,} images to {output / 'labels'}")


# -- ontology versions ---------------------------------------------------------


def ontology_diff(
    old: Annotated[str, typer.Argument(help="The previous version (YAML file or name).")],
    new: Annotated[str, typer.Argument(help="The new version (YAML file or name).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Explain what changed between two versions and what it affects in the database.

    Example:  `autolabel ontology diff sentiment_v1.yaml sentiment_v2.yaml`
    """
    from autolabel.interop.versions import diff_ontologies, label_impact, load_with_text

    a, b = load_with_text(old), load_with_text(new)
    d = diff_ontologies(a.ontology, b.ontology)
    console.print(
        f"[bold]{d.name}[/] v{d.old_version} ({a.hash[:12]}) → v{d.new_version} ({b.hash[:12]})"
    )
    if d.is_empty:
        console.print("no changes")
    for label in d.added:
        console.print(f"  [green]+ added[/]    {label}")
    for label in d.removed:
        console.print(f"  [red]- removed[/]  {label} (no migrate: instruction)")
    for label in d.dropped:
        console.print(f"  [red]- removed[/]  {label} (migrate: remove → review)")
    for src, dst in d.renamed.items():
        console.print(f"  [yellow]~ renamed[/]  {src} → {dst}")
    for dst, srcs in d.merged.items():
        console.print(f"  [yellow]~ merged[/]   {' + '.join(srcs)} → {dst}")
    for src, dsts in d.split.items():
        console.print(f"  [yellow]~ split[/]    {src} → {' | '.join(dsts)}")
    for label, (before, after) in d.descriptions.items():
        console.print(f"  description of {label}: {before!r} → {after!r}", highlight=False)
    if d.guidelines_changed:
        console.print("  guidelines changed")
    for key, (before, after) in d.settings.items():
        console.print(f"  {key}: {before} → {after}", highlight=False)
    database = _db(db, config)
    with database.session() as s:
        impact = label_impact(s, a.ontology)
    table = Table(title="in the database (label of the previous version)", title_justify="left")
    for column in ("label", "change", "predictions", "decisions", "gold", "open tasks"):
        table.add_column(column, justify="left" if column in ("label", "change") else "right")
    change = {x: "renamed" for x in d.renamed}
    change.update({x: "merged" for xs in d.merged.values() for x in xs})
    change.update({x: "split" for x in d.split})
    change.update({x: "removed" for x in [*d.removed, *d.dropped]})
    for label in a.ontology.label_names:
        table.add_row(
            label,
            change.get(label, ""),
            str(impact.predictions[label]),
            str(impact.decisions[label]),
            str(impact.gold[label]),
            str(impact.open_tasks[label]),
        )
    console.print(table)
    used_removed = [x for x in d.removed if impact.total(x)]
    if used_removed:
        console.print(
            f"[red]migrate would refuse[/]: {', '.join(used_removed)} removed while in use; "
            "add a migrate: section or pass --removed review"
        )


def ontology_migrate(
    old: Annotated[str, typer.Argument(help="The previous version (YAML file or name).")],
    new: Annotated[str, typer.Argument(help="The new version, with a migrate: section.")],
    queue: Annotated[
        str, typer.Option(help="Queue for split/removed items that have no review task yet.")
    ] = "migration",
    removed: Annotated[
        str,
        typer.Option(
            help="Labels gone without a migrate: instruction: 'refuse' while data uses "
            "them, or 'review' (queue their items, reason label_removed)."
        ),
    ] = "refuse",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Apply NEW's migrate: section to every run, decision, gold set and review task.

    Renames and merges carry data over (audited); splits and removals send the items
    to review with reason label_split / label_removed. One transaction: on any error
    nothing is changed.

    Example:  `autolabel ontology migrate sentiment_v1.yaml sentiment_v2.yaml`
    """
    from autolabel.interop.migrate import migrate_labels
    from autolabel.interop.versions import load_with_text

    if removed not in ("refuse", "review"):
        raise ConfigError(f"--removed must be 'refuse' or 'review', not {removed!r}")
    a, b = load_with_text(old), load_with_text(new)
    result = migrate_labels(
        _db(db, config),
        a,
        b,
        queue=queue,
        removed=removed,  # type: ignore[arg-type]
    )
    console.print(f"migration #{result.migration_id}: {a.ontology.name} → v{b.ontology.version}")
    for key, value in sorted(result.counts.items()):
        console.print(f"  {key.replace('_', ' ')}: {value:,}")
    if result.unqueued_items:
        console.print(
            f"[yellow]{len(result.unqueued_items)} gold-only item(s) could not be queued[/] "
            "(no run has them); their old gold labels are kept in the audit and the old gold "
            "version"
        )


def ontology_versions(
    name: Annotated[str | None, typer.Argument(help="Ontology name (default: all).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List stored ontology versions and the migrations between them."""
    from sqlmodel import col, select

    from autolabel.store.tables import LabelMigration, OntologyVersion

    database = _db(db, config)
    table = Table("id", "name", "version", "hash", "source", "stored")
    with database.session() as s:
        stmt = select(OntologyVersion).order_by(col(OntologyVersion.id))
        if name:
            stmt = stmt.where(col(OntologyVersion.name) == name)
        for v in s.exec(stmt):
            table.add_row(
                str(v.id),
                v.name,
                v.version,
                v.hash[:12],
                v.source or "",
                v.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        migrations = s.exec(select(LabelMigration).order_by(col(LabelMigration.id))).all()
    console.print(table)
    for m in migrations:
        if name and m.ontology_name != name:
            continue
        console.print(
            f"migration #{m.id} {m.ontology_name}: version {m.from_version_id} → "
            f"{m.to_version_id} {m.counts}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    panel = "Other tools"
    app.add_typer(labelstudio_app, name="labelstudio", rich_help_panel=panel)
    app.add_typer(hf_app, name="hf", rich_help_panel=panel)
    app.add_typer(spacy_app, name="spacy", rich_help_panel=panel)
    app.add_typer(conll_app, name="conll", rich_help_panel=panel)
    app.add_typer(coco_app, name="coco", rich_help_panel=panel)
    app.add_typer(yolo_app, name="yolo", rich_help_panel=panel)
    ontology_app.command("diff")(ontology_diff)
    ontology_app.command("migrate")(ontology_migrate)
    ontology_app.command("versions")(ontology_versions)
    app.add_typer(ontology_app, name="ontology", rich_help_panel=panel)
