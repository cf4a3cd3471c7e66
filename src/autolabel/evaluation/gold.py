"""Gold sets: human labels linked to items, imported from files or from review decisions.

Items are matched the way the engine matches them: same dataset, and the external id
from ``--id-column`` (else a stable hash of the ontology's input fields; see
``autolabel.engine.inputs.external_id_for``). Evaluation also falls back to matching
external ids and content hashes across datasets, so a gold file imported before or
after labeling joins the run either way.

Each import creates a new version of the named gold set (1, 2, …); old versions stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from autolabel.engine.inputs import read_rows, validator_for
from autolabel.errors import BadRowError, EvaluationError, InputError, NotFoundError
from autolabel.hashing import stable_hash
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.store.database import Database
from autolabel.store.ontology_versions import link_gold_set, store_version
from autolabel.store.tables import Dataset, GoldLabel, GoldSet, Item, ReviewTask, Run

CONLL_SUFFIXES = {".conll", ".bio", ".iob", ".testa", ".testb", ".train", ".annotated"}
MAX_REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class GoldRow:
    row: int
    external_id: str
    content_hash: str
    payload: dict[str, Any]
    label: Any


# -- label validation --------------------------------------------------------------------


def canonical_gold_label(ontology: Ontology, raw: Any, *, text: str | None = None) -> Any:
    """Validate one gold label into the canonical form; ValueError says what is wrong."""
    labels = ontology.label_names
    task = ontology.task
    if task == TaskType.CLASSIFY:
        value = str(raw).strip() if raw is not None else ""
        if not value:
            raise ValueError("empty label")
        if value in labels:
            return value
        folded = {label.casefold(): label for label in labels}
        if value.casefold() in folded:
            return folded[value.casefold()]
        raise ValueError(f"'{value}' is not a label of ontology '{ontology.name}'")
    if task == TaskType.MULTI_LABEL:
        values = _split_multi(raw)
        unknown = [v for v in values if v not in labels]
        if unknown:
            raise ValueError(f"unknown label(s) {unknown} for ontology '{ontology.name}'")
        return [label for label in labels if label in set(values)]
    if task == TaskType.SPANS:
        spans = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(spans, list):
            raise ValueError("spans must be a list of {start, end, label}")
        out = []
        for span in spans:
            if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
                raise ValueError(f"a span needs start, end and label: {span!r}")
            start, end, label = int(span["start"]), int(span["end"]), str(span["label"])
            if label not in labels:
                raise ValueError(f"span label '{label}' is not in ontology '{ontology.name}'")
            if not 0 <= start < end or (text is not None and end > len(text)):
                raise ValueError(f"span [{start}, {end}) is outside the text")
            span_text = text[start:end] if text is not None else str(span.get("text", ""))
            if text is not None and "text" in span and span["text"] != span_text:
                raise ValueError(f"span text {span['text']!r} != text at offsets {span_text!r}")
            out.append({"start": start, "end": end, "text": span_text, "label": label})
        return sorted(out, key=lambda s: (s["start"], s["end"], s["label"]))
    if task == TaskType.BOXES:
        from autolabel.ontology.answers import canonical_boxes

        return canonical_boxes(json.loads(raw) if isinstance(raw, str) else raw, labels)
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError("a fields label must be a JSON object")
    unknown = set(value) - {f.name for f in ontology.fields}
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    return value


def _split_multi(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw).strip()
    if not text:
        return []
    if text.startswith("["):
        parsed = json.loads(text)
        if not isinstance(parsed, list):
            raise ValueError("a multi-label value must be a JSON list or 'a|b'")
        return [str(v).strip() for v in parsed]
    return [v.strip() for v in text.split("|") if v.strip()]


# -- reading files -------------------------------------------------------------------------


def read_gold_file(
    path: Path,
    ontology: Ontology,
    *,
    label_column: str = "label",
    id_column: str | None = None,
    fmt: str | None = None,
) -> list[GoldRow]:
    """Read and validate every row; all problems (up to 20) are reported together."""
    is_conll = fmt == "conll" or (fmt is None and path.suffix.lower() in CONLL_SUFFIXES)
    if is_conll:
        if ontology.task != TaskType.SPANS:
            raise InputError(
                f"{path}: CoNLL/BIO files hold spans, but '{ontology.name}' is "
                f"a {ontology.task.value} task"
            )
        return read_conll(path, ontology)
    validator = validator_for(ontology, path, id_column)
    out: list[GoldRow] = []
    problems: list[str] = []
    for row_number, raw in read_rows(path, ontology.input.image):
        try:
            item = validator.validate(row_number, raw)
            if label_column not in raw:
                raise BadRowError(
                    f"no label column (columns are: {', '.join(map(str, raw))})",
                    row=row_number,
                    field=label_column,
                )
            text = str(raw[ontology.input.fields[0]]) if ontology.input.fields else ""
            try:
                label = canonical_gold_label(ontology, raw[label_column], text=text)
            except (ValueError, json.JSONDecodeError) as exc:
                raise BadRowError(str(exc), row=row_number, field=label_column) from None
            out.append(
                GoldRow(row_number, item.external_id, item.content_hash, item.payload, label)
            )
        except BadRowError as exc:
            problems.append(str(exc))
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise InputError(
            f"{path}: {len(problems)} invalid gold row(s):\n  " + "\n  ".join(shown) + more,
            hint="fix the rows (row numbers exclude the header) and import again",
        )
    if not out:
        raise InputError(f"{path}: no gold rows")
    return out


def bio_to_spans(tokens: list[str], tags: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """Join tokens with single spaces and turn BIO/IOB1 tags into character spans."""
    text = " ".join(tokens)
    spans: list[dict[str, Any]] = []
    offset = 0
    current: dict[str, Any] | None = None
    for token, tag in zip(tokens, tags, strict=True):
        start, end = offset, offset + len(token)
        offset = end + 1
        prefix, _, kind = tag.partition("-")
        if tag == "O" or not kind:
            current = None
            continue
        if prefix == "B" or current is None or current["label"] != kind:
            current = {"start": start, "end": end, "label": kind}
            spans.append(current)
        else:  # I- continuing the same type
            current["end"] = end
    for span in spans:
        span["text"] = text[span["start"] : span["end"]]
    return text, [{k: s[k] for k in ("start", "end", "text", "label")} for s in spans]


def read_conll(path: Path, ontology: Ontology) -> list[GoldRow]:
    """CoNLL/BIO: one token per line, tag in the last column, blank line between sentences."""
    field_name = ontology.input.fields[0]
    out: list[GoldRow] = []
    problems: list[str] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0

    def flush() -> None:
        if not tokens:
            return
        text, spans = bio_to_spans(tokens, tags)
        bad = sorted({s["label"] for s in spans} - set(ontology.label_names))
        if bad:
            problems.append(f"line {first_line}: entity type(s) {bad} not in '{ontology.name}'")
        else:
            shown = {field_name: text}
            digest = stable_hash(shown)
            out.append(GoldRow(len(out) + 1, digest[:16], digest[:32], shown, spans))
        tokens.clear()
        tags.clear()

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            continue
        if len(parts) < 2:
            problems.append(f"line {number}: expected 'token tag', got {line!r}")
            continue
        if not tokens:
            first_line = number
        tokens.append(parts[0])
        tags.append(parts[-1])
    flush()
    if problems:
        raise InputError(
            f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:20]),
            hint="map the file's entity types to the ontology's labels",
        )
    return out


# -- storing ---------------------------------------------------------------------------------


def next_version(session: Session, name: str) -> int:
    current = session.exec(select(func.max(GoldSet.version)).where(GoldSet.name == name)).one()
    return int(current or 0) + 1


def _dataset(session: Session, name: str, source: str | None) -> Dataset:
    found = session.exec(select(Dataset).where(Dataset.name == name)).first()
    if found:
        return found
    dataset = Dataset(name=name, source=source)
    session.add(dataset)
    session.flush()
    return dataset


def store_gold(
    db: Database,
    ontology: Ontology,
    rows: list[GoldRow],
    *,
    name: str,
    dataset: str,
    source: str | None = None,
) -> GoldSet:
    """Create a new version of gold set ``name``; items are found or created in ``dataset``."""
    with db.session() as session:
        ds = _dataset(session, dataset, source)
        assert ds.id is not None
        existing = {
            item.external_id: item
            for item in session.exec(select(Item).where(Item.dataset_id == ds.id))
        }
        gold = GoldSet(
            name=name,
            version=next_version(session, name),
            dataset_id=ds.id,
            ontology_name=ontology.name,
            source=source,
        )
        session.add(gold)
        session.flush()
        link_gold_set(session, int(gold.id), store_version(session, ontology, source=source))  # type: ignore[arg-type]
        seen: set[int] = set()
        for row in rows:
            item = existing.get(row.external_id)
            if item is None:
                item = Item(
                    dataset_id=ds.id,
                    external_id=row.external_id,
                    content_hash=row.content_hash,
                    row_number=row.row,
                    payload=row.payload,
                )
                session.add(item)
                session.flush()
                existing[row.external_id] = item
            assert item.id is not None
            if item.id in seen:
                continue  # a repeated id: the first row's label wins, like the engine
            seen.add(item.id)
            session.add(GoldLabel(gold_set_id=gold.id, item_id=item.id, label=row.label))
        session.commit()
        session.refresh(gold)
        return gold


def import_gold(
    db: Database,
    ontology: Ontology,
    path: Path,
    *,
    label_column: str = "label",
    name: str | None = None,
    id_column: str | None = None,
    dataset: str | None = None,
    fmt: str | None = None,
    source: str | None = None,
) -> tuple[GoldSet, int]:
    """Read, validate and store a gold file; returns the gold set and its label count."""
    rows = read_gold_file(path, ontology, label_column=label_column, id_column=id_column, fmt=fmt)
    gold = store_gold(
        db,
        ontology,
        rows,
        name=name or path.stem,
        dataset=dataset or path.stem,
        source=source or str(path),
    )
    return gold, len({r.external_id for r in rows})


HUMAN_SOURCES = ("human", "consensus", "adjudicator")


def gold_from_review(db: Database, queue: str, *, name: str | None = None) -> tuple[GoldSet, int]:
    """Turn the final human decisions of a review queue into a gold set."""
    with db.session() as session:
        tasks = session.exec(
            select(ReviewTask).where(
                ReviewTask.queue == queue,
                col(ReviewTask.final_source).in_(HUMAN_SOURCES),
            )
        ).all()
        tasks = [t for t in tasks if t.final_label is not None]
        if not tasks:
            raise NotFoundError(
                f"queue '{queue}' has no items with a final human decision",
                hint="review some items first: autolabel review " + queue,
            )
        items = {
            i.id: i
            for i in session.exec(select(Item).where(col(Item.id).in_([t.item_id for t in tasks])))
        }
        datasets = {i.dataset_id for i in items.values()}
        if len(datasets) != 1:
            raise EvaluationError(f"queue '{queue}' mixes items of {len(datasets)} datasets")
        run_ids = [t.run_id for t in tasks if t.run_id is not None]
        run = session.get(Run, run_ids[0]) if run_ids else None
        ontology_name = run.ontology_name if run else queue
        gold_name = name or f"{queue}-review"
        gold = GoldSet(
            name=gold_name,
            version=next_version(session, gold_name),
            dataset_id=datasets.pop(),
            ontology_name=ontology_name,
            source=f"review:{queue}",
        )
        session.add(gold)
        session.flush()
        if run is not None:  # the version the reviewers decided under
            version = store_version(session, Ontology.model_validate(run.ontology), source="review")
            link_gold_set(session, int(gold.id), version)  # type: ignore[arg-type]
        for task in tasks:
            session.add(
                GoldLabel(gold_set_id=gold.id, item_id=task.item_id, label=task.final_label)
            )
        session.commit()
        session.refresh(gold)
        return gold, len(tasks)


def resolve_gold(session: Session, ref: str | None, *, run: Run | None = None) -> GoldSet:
    """A gold set by id, ``name`` (latest version) or ``name@version``; default: the newest
    gold set of the run's dataset, else the newest one for the run's ontology."""
    if ref is None:
        if run is None:
            raise EvaluationError("no gold set given", hint="pass --gold NAME")
        for cond in (
            GoldSet.dataset_id == run.dataset_id,
            GoldSet.ontology_name == run.ontology_name,
        ):
            found = session.exec(
                select(GoldSet).where(cond).order_by(col(GoldSet.id).desc())
            ).first()
            if found:
                return found
        raise NotFoundError(
            f"no gold set for run {run.id} (dataset {run.dataset_id}, ontology "
            f"'{run.ontology_name}')",
            hint="import one: autolabel gold import FILE --ontology O --label-column label",
        )
    name, _, version = ref.partition("@")
    query = select(GoldSet).where(GoldSet.name == name)
    if version:
        if not version.isdigit():
            raise EvaluationError(f"bad gold version in '{ref}'", hint="use NAME@2")
        query = query.where(GoldSet.version == int(version))
    found = session.exec(query.order_by(col(GoldSet.version).desc())).first()
    if found is None and ref.isdigit():
        found = session.get(GoldSet, int(ref))
    if found is None:
        names = sorted(set(session.exec(select(GoldSet.name)).all()))
        raise NotFoundError(
            f"gold set '{ref}' not found",
            hint=f"known gold sets: {', '.join(names) or 'none yet (autolabel gold import)'}",
        )
    return found
