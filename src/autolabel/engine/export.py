"""Export a run's labels: id, input fields, label(s), confidence, method, model, prompt hash.

When the run's items went through review, the final label and its provenance
(model / human / consensus / adjudicator) and the reviewer count are added.
Rows are streamed, so exports of large runs use constant memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from autolabel.errors import ConfigError
from autolabel.store.database import Database
from autolabel.store.lookup import resolve_run
from autolabel.store.tables import Item, Prediction, Run

ExportFormat = Literal["jsonl", "csv", "parquet"]


def get_run(db: Database, run_ref: str | int) -> Run:
    """A run by id or by name (the newest with that name)."""
    with db.session() as s:
        return resolve_run(s, run_ref)


def _final_labels(db: Database, run_id: int) -> dict[int, Any]:
    try:
        from autolabel.review.resolution import resolve_final_labels
    except ImportError:  # review not installed in this build
        return {}
    return resolve_final_labels(db, run_id)


def iter_export_rows(db: Database, run: Run) -> Iterator[dict[str, Any]]:
    spec = (run.ontology or {}).get("input", {})
    fields = list(spec.get("fields", ["text"]))
    if spec.get("image"):  # the image path as the input gave it, first
        fields.insert(0, spec["image"])
    finals = _final_labels(db, int(run.id))  # type: ignore[arg-type]
    stmt = (
        select(Item.id, Item.external_id, Item.payload, Prediction)
        .join(Prediction, Prediction.item_id == Item.id)  # type: ignore[arg-type]
        .where(Prediction.run_id == run.id)  # type: ignore[arg-type]
        .order_by(Item.id)
    )
    with db.session() as s:
        for item_id, external_id, payload, pred in s.execute(stmt.execution_options(yield_per=500)):
            row: dict[str, Any] = {"id": external_id}
            for name in fields:
                row[name] = payload.get(name)
            row.update(
                label=pred.label,
                confidence=pred.confidence,
                method=pred.method,
                model=pred.model,
                prompt_hash=pred.prompt_hash,
                error=pred.error,
            )
            final = finals.get(item_id)
            if finals:
                row["final_label"] = getattr(final, "label", pred.label)
                row["final_source"] = getattr(final, "source", "model" if not pred.error else None)
                row["reviewer_count"] = getattr(final, "reviewer_count", 0)
            yield row


def export_run(db: Database, run_ref: str | int, out: Path, fmt: ExportFormat | None = None) -> int:
    run = get_run(db, run_ref)
    fmt = fmt or _format_from_suffix(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = iter_export_rows(db, run)
    if fmt == "jsonl":
        n = 0
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        return n
    if fmt == "csv":
        return _write_csv(rows, out)
    return _write_parquet(rows, out)


def _format_from_suffix(out: Path) -> ExportFormat:
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "csv", "parquet"):
        return suffix  # type: ignore[return-value]
    raise ConfigError(f"cannot tell the export format from '{out.name}'", hint="pass --format")


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _write_csv(rows: Iterator[dict[str, Any]], out: Path) -> int:
    n = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow({k: _cell(v) for k, v in row.items()})
            n += 1
    return n


_NUMERIC = {"confidence": "float64", "reviewer_count": "int64"}


def _write_parquet(rows: Iterator[dict[str, Any]], out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    batch: list[dict[str, Any]] = []
    n = 0

    def text(value: Any) -> Any:
        value = _cell(value)
        return value if value is None or isinstance(value, str) else str(value)

    def flush() -> None:
        nonlocal writer, schema
        if schema is None:
            # Fixed types: a first batch of all-null confidences must not decide the schema.
            schema = pa.schema(
                [(k, pa.type_for_alias(_NUMERIC.get(k, "string"))) for k in batch[0]]
            )
            writer = pq.ParquetWriter(str(out), schema)
        cleaned = [{k: (v if k in _NUMERIC else text(v)) for k, v in r.items()} for r in batch]
        writer.write_table(pa.Table.from_pylist(cleaned, schema=schema))  # type: ignore[union-attr]

    for row in rows:
        batch.append(row)
        n += 1
        if len(batch) >= 2000:
            flush()
            batch = []
    if batch:
        flush()
    if writer is not None:
        writer.close()
    return n
