"""Streaming input: CSV, JSONL, Parquet rows and ``datasets`` directories → validated items.

Rows are read lazily (constant memory in the file size). Each row is checked
against the ontology's input fields; a bad row is reported with its 1-based data
row number (header excluded; for JSONL, the line number) and the field at fault.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autolabel.errors import BadRowError, ImageError, InputError
from autolabel.hashing import stable_hash
from autolabel.images import IMAGE_KEY, inspect_image, is_image_folder, read_folder_rows
from autolabel.ontology.schema import Ontology

Format = Literal["csv", "jsonl", "parquet", "hf", "images"]
SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class InputItem:
    row: int  # 1-based data row (JSONL: line)
    external_id: str
    content_hash: str
    payload: dict[str, Any]  # the whole row, so export can carry every input column


def detect_format(path: Path) -> Format:
    if path.is_dir():
        from autolabel.interop.hf import is_saved_dataset  # imports datasets only when read

        if is_saved_dataset(path):
            return "hf"
        if is_image_folder(path):
            return "images"
        raise InputError(
            f"{path} is a directory but not a dataset saved by Hugging Face datasets (nor a "
            "folder of images)",
            hint="give a .csv/.tsv/.jsonl/.parquet file, a folder of images (class "
            "sub-folders optional) or a save_to_disk directory",
        )
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown input format '{path.suffix}'",
            hint="use .csv, .tsv, .jsonl, .parquet or a datasets save_to_disk directory",
        )
    return fmt


def read_rows(path: Path, image_column: str | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (row number, raw row) without validation.

    A folder of images yields one row per image file, its relative path under
    ``image_column`` (the ontology's ``input.image``) and its class sub-folder under ``label``.
    """
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    fmt = detect_format(path)  # a directory: a saved dataset or a folder of images
    if fmt == "images":
        if image_column is None:
            raise InputError(
                f"{path} is a folder of images, but the ontology reads text",
                hint="declare the image column in the ontology: input: {image: image}",
            )
        yield from read_folder_rows(path, image_column)
    elif fmt == "csv":
        yield from _read_csv(path)
    elif fmt == "jsonl":
        yield from _read_jsonl(path)
    elif fmt == "hf":
        from autolabel.interop.hf import read_saved_rows

        yield from read_saved_rows(path)
    else:
        yield from _read_parquet(path)


def _read_csv(path: Path) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            # Reading the header decodes the first bytes: it can fail like any row.
            if reader.fieldnames is None:
                raise InputError(f"{path}: the file is empty (no header row)")
            for i, row in enumerate(reader, start=1):
                if None in row:  # more cells than header columns
                    row = {k: v for k, v in row.items() if k is not None}
                    row["__extra_cells__"] = True
                yield i, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read CSV near row {reader.line_num}: {exc}") from exc


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        i = 0
        try:
            for i, line in enumerate(fh, start=1):  # noqa: B007 - i names the bad line
                if not line.strip():
                    continue
                try:
                    yield i, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield i, _Unparseable(str(exc))
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: line {i + 1} is not UTF-8 text: {exc}",
                hint="save the file as UTF-8",
            ) from exc


def _read_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq  # heavy import, only when needed

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def count_rows(path: Path) -> int | None:
    """Cheap row count for the progress bar (None when unknown)."""
    try:
        fmt = detect_format(path)
        if fmt == "hf":
            from autolabel.interop.hf import count_saved_rows

            return count_saved_rows(path)
        if fmt == "images":
            return sum(1 for _ in read_folder_rows(path, "image"))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "jsonl":
            with path.open("rb") as fh:
                return sum(1 for line in fh if line.strip())
        return sum(1 for _ in _read_csv(path))
    except (OSError, InputError):
        return None


class _Unparseable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


DEFAULT_ID_COLUMN = "id"


class RowValidator:
    """Turns raw rows into items, or raises BadRowError naming row and field.

    The item id comes from ``id_column``, else the ontology's ``input.id``, else a
    column named ``id`` when the data has one, else a hash of the shown fields (and of
    the image's content, for image input).

    Image paths are resolved against ``base_dir`` (the data file's folder); the image is
    read, checked and hashed here, so a bad image is a bad row like any other.
    """

    def __init__(
        self, ontology: Ontology, id_column: str | None = None, base_dir: Path | None = None
    ) -> None:
        self.fields = list(ontology.input.fields)
        self.id_column = id_column or ontology.input.id
        self._auto_id = self.id_column is None
        self.input = ontology.input
        self.base_dir = base_dir or Path.cwd()

    def validate(self, row_number: int, row: Any) -> InputItem:
        if isinstance(row, _Unparseable):
            raise BadRowError(f"invalid JSON: {row.reason}", row=row_number)
        if not isinstance(row, dict):
            raise BadRowError(
                f"expected an object with fields {self.fields}, got {type(row).__name__}",
                row=row_number,
            )
        if row.get("__extra_cells__"):
            raise BadRowError("more cells than header columns (unquoted comma?)", row=row_number)
        shown: dict[str, str] = {}
        for name in self.fields:
            if name not in row:
                raise BadRowError(
                    f"missing field (columns are: {', '.join(map(str, row))})",
                    row=row_number,
                    field=name,
                )
            value = row[name]
            if value is None or (isinstance(value, str) and not value.strip()):
                raise BadRowError("empty text", row=row_number, field=name)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise BadRowError(
                    f"expected text, got {type(value).__name__}", row=row_number, field=name
                )
            shown[name] = str(value)
        identity: dict[str, str] = dict(shown)
        image = None
        if self.input.image is not None:
            image = self._image(row_number, row)
            identity[IMAGE_KEY] = image["sha256"]
        content_hash = stable_hash(identity)[:32]
        if self._auto_id:
            self._auto_id = False
            self.id_column = DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in row else None
        if self.id_column:
            raw_id = row.get(self.id_column)
            if raw_id is None or str(raw_id).strip() == "":
                raise BadRowError("missing id", row=row_number, field=self.id_column)
            external_id = str(raw_id).strip()
        else:
            external_id = content_hash[:16]
        # Repeated ids map to the same item, labeled once; the pipeline counts them.
        payload = {k: _jsonable(v) for k, v in row.items()}
        if image is not None:
            payload[IMAGE_KEY] = image
        return InputItem(row_number, external_id, content_hash, payload)

    def _image(self, row_number: int, row: dict[str, Any]) -> dict[str, Any]:
        column = self.input.image
        assert column is not None
        value = row.get(column)
        if value is None or not isinstance(value, str) or not value.strip():
            got = "nothing" if value is None or value == "" else type(value).__name__
            raise BadRowError(f"expected an image path, got {got}", row=row_number, field=column)
        path = Path(value.strip()).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        try:
            ref = inspect_image(
                path, max_pixels=self.input.max_pixels, max_bytes=self.input.max_bytes
            )
        except ImageError as exc:
            raise BadRowError(exc.message, row=row_number, field=column) from exc
        return ref.to_json()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)  # dates, decimals from Parquet


def external_id_for(ontology: Ontology, row: dict[str, Any], id_column: str | None = None) -> str:
    """The external id the engine gives a row (used by gold import to match items)."""
    column = (
        id_column or ontology.input.id or (DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in row else None)
    )
    if column:
        return str(row[column]).strip()
    shown = {name: str(row[name]) for name in ontology.input.fields}
    return stable_hash(shown)[:16]


def base_dir_of(path: Path) -> Path:
    """Where relative image paths in ``path``'s rows point from: the data file's folder, or
    the folder itself for a folder of images."""
    path = path.expanduser().resolve()
    return path if path.is_dir() else path.parent


def validator_for(ontology: Ontology, path: Path, id_column: str | None = None) -> RowValidator:
    return RowValidator(ontology, id_column, base_dir=base_dir_of(path))
