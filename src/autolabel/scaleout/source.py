"""The job's input as a Ray Dataset, parsed and validated exactly like the local engine.

A custom datasource rather than ``ray.data.read_csv``/``read_json``: Arrow's readers
infer types (``"007"`` → 7) and stop at the first bad JSON line, so item ids, content
hashes and prompts would differ from a local run. Each file is one read task that runs
the engine's own readers (:func:`read_rows`) and :class:`RowValidator`, so row numbers,
ids, bad-row reports and ``--limit`` are the same; blocks stream out as they fill.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from autolabel.engine.inputs import SUFFIXES, read_rows, validator_for
from autolabel.errors import BadRowError, InputError
from autolabel.ontology.schema import Ontology

BLOCK_ROWS = 1024

# One row per input row: a valid item, or a bad row with its reason (status "bad").
SCHEMA = pa.schema(
    [
        ("status", pa.string()),
        ("row", pa.int64()),
        ("external_id", pa.string()),
        ("content_hash", pa.string()),
        ("payload", pa.string()),  # JSON: rows are heterogeneous dicts
        ("field", pa.string()),
        ("message", pa.string()),
    ]
)


def input_files(path: Path) -> list[Path]:
    """A file, or a directory of input files (read in name order)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise InputError(f"{path}: no .csv, .tsv, .jsonl or .parquet files in this directory")
        return files
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    return [path]


class JobSource(Datasource):
    def __init__(
        self,
        path: Path,
        ontology: Ontology,
        *,
        id_column: str | None,
        limit: int | None,
        on_bad_row: str,
    ) -> None:
        self.files = input_files(path)
        self.ontology = ontology
        self.id_column = id_column
        self.limit = limit
        self.on_bad_row = on_bad_row

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(f.stat().st_size for f in self.files)

    def get_read_tasks(self, parallelism: int, **_: object) -> list[ReadTask]:
        # --limit counts rows across files, so a limited job reads its files in one task.
        groups = [self.files] if self.limit is not None else [[f] for f in self.files]
        return [
            ReadTask(
                lambda files=files: self._read(files),
                BlockMetadata(
                    num_rows=None,
                    size_bytes=sum(f.stat().st_size for f in files),
                    exec_stats=None,
                    input_files=tuple(map(str, files)),
                ),
                schema=SCHEMA,
            )
            for files in groups
        ]

    def _read(self, files: list[Path]) -> Iterator[pa.Table]:
        taken = 0
        rows: list[dict[str, object]] = []
        for path in files:
            validator = validator_for(self.ontology, path, self.id_column)
            for row_number, raw in read_rows(path, self.ontology.input.image):
                if self.limit is not None and taken >= self.limit:
                    break
                taken += 1
                try:
                    item = validator.validate(row_number, raw)
                except BadRowError as exc:
                    if self.on_bad_row == "fail":
                        # A plain InputError crosses the process boundary intact.
                        raise InputError(f"{path}: {exc.message}") from None
                    rows.append(
                        {"status": "bad", "row": row_number, "field": exc.field}
                        | {"message": exc.reason}
                    )
                else:
                    rows.append(
                        {
                            "status": "item",
                            "row": item.row,
                            "external_id": item.external_id,
                            "content_hash": item.content_hash,
                            "payload": json.dumps(item.payload, ensure_ascii=False),
                        }
                    )
                if len(rows) >= BLOCK_ROWS:
                    yield pa.Table.from_pylist(rows, schema=SCHEMA)
                    rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=SCHEMA)
