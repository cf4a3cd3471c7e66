"""Hugging Face ``datasets``: export with ClassLabel features, read saved datasets as input.

Nothing here touches the Hub: ``HF_DATASETS_OFFLINE=1`` is set before ``datasets`` is
imported, and only local ``save_to_disk`` directories are read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autolabel.errors import ConfigError, InputError
from autolabel.interop.records import Record
from autolabel.ontology.schema import Ontology, TaskType

_VALUE_TYPES = {
    "string": "string",
    "date": "string",
    "number": "float64",
    "integer": "int64",
    "boolean": "bool",
}


def _datasets() -> Any:
    # Set before the import: datasets reads it once, at import time.
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(
            "Hugging Face datasets is not installed", hint="pip install 'autolabel[hf]'"
        ) from exc
    datasets.disable_progress_bars()  # our CLI prints its own summary
    return datasets


def features_for(ontology: Ontology) -> Any:
    ds = _datasets()
    feats: dict[str, Any] = {"id": ds.Value("string")}
    for field in ontology.input.fields:
        feats[field] = ds.Value("string")
    names = ontology.label_names
    if ontology.task == TaskType.CLASSIFY:
        feats["label"] = ds.ClassLabel(names=names)
    elif ontology.task == TaskType.MULTI_LABEL:
        feats["labels"] = ds.List(ds.ClassLabel(names=names))  # = Sequence(ClassLabel)
    elif ontology.task == TaskType.SPANS:
        # List of structs (Sequence of a dict would be a dict of lists).
        feats["spans"] = ds.List(
            {
                "start": ds.Value("int32"),
                "end": ds.Value("int32"),
                "text": ds.Value("string"),
                "label": ds.ClassLabel(names=names),
            }
        )
    else:
        for f in ontology.fields:
            feats[f.name] = ds.Value(_VALUE_TYPES[f.type])
    feats["confidence"] = ds.Value("float64")
    if ontology.task in (TaskType.CLASSIFY, TaskType.MULTI_LABEL):
        # Per-label probability (classify) or P(applies) (multi_label), in label order.
        feats["label_confidences"] = ds.List(ds.Value("float64"), length=len(names))
    feats["source"] = ds.Value("string")
    feats["model_version"] = ds.Value("string")
    return ds.Features(feats)


def _row(ontology: Ontology, rec: Record) -> dict[str, Any]:
    row: dict[str, Any] = {"id": rec.external_id}
    for field in ontology.input.fields:
        value = rec.inputs.get(field)
        row[field] = None if value is None else str(value)
    if ontology.task == TaskType.CLASSIFY:
        row["label"] = rec.label
    elif ontology.task == TaskType.MULTI_LABEL:
        row["labels"] = list(rec.label)
    elif ontology.task == TaskType.SPANS:
        row["spans"] = [{k: s[k] for k in ("start", "end", "text", "label")} for s in rec.label]
    else:
        for f in ontology.fields:
            row[f.name] = (rec.label or {}).get(f.name)
    row["confidence"] = rec.confidence
    if ontology.task in (TaskType.CLASSIFY, TaskType.MULTI_LABEL):
        dist = rec.distribution if isinstance(rec.distribution, dict) else None
        row["label_confidences"] = (
            [float(dist.get(n, 0.0)) for n in ontology.label_names] if dist else None
        )
    row["source"] = rec.source
    row["model_version"] = rec.model_version
    return row


def to_dataset(ontology: Ontology, records: list[Record]) -> Any:
    ds = _datasets()
    features = features_for(ontology)
    rows = [_row(ontology, rec) for rec in records]
    columns = {name: [r[name] for r in rows] for name in features}
    # encode_example turns label names into ClassLabel ids.
    return ds.Dataset.from_dict(columns, features=features)


def export_dataset(
    ontology: Ontology, records: list[Record], out: Path, *, parquet: Path | None = None
) -> int:
    dataset = to_dataset(ontology, records)
    dataset.save_to_disk(str(out))
    if parquet is not None:
        parquet.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(parquet))
    return len(dataset)


# -- input: a directory written by save_to_disk ------------------------------------------------


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and (
        (path / "dataset_info.json").exists()
        or (path / "state.json").exists()
        or (path / "dataset_dict.json").exists()
    )


def _load(path: Path) -> Any:
    ds = _datasets()
    if (path / "dataset_dict.json").exists():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise InputError(
            f"{path} holds several splits ({', '.join(splits)})",
            hint=f"pass one split directory, e.g. {path / (splits[0] if splits else 'train')}",
        )
    try:
        return ds.load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, arrow errors
        raise InputError(f"{path}: not a dataset saved with save_to_disk: {exc}") from exc


def read_saved_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a saved dataset, ClassLabel ids turned back into label names."""
    dataset = _load(path)
    ds = _datasets()
    names = {k: f for k, f in dataset.features.items() if isinstance(f, ds.ClassLabel)}
    for i, row in enumerate(dataset, start=1):
        for key, feature in names.items():
            if row.get(key) is not None and row[key] >= 0:
                row[key] = feature.int2str(row[key])
        yield i, row


def count_saved_rows(path: Path) -> int:
    return len(_load(path))
