"""Hugging Face datasets: ClassLabel features out, save_to_disk directories in."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from autolabel.engine.inputs import RowValidator, count_rows, detect_format, read_rows
from autolabel.errors import InputError
from autolabel.interop import hf, records
from autolabel.store.database import Database
from tests.interop.builders import NER_LABELS, ner_run
from tests.review.factories import EMOTIONS, make_dataset, make_run, ontology

datasets = pytest.importorskip("datasets")


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def test_classify_export_has_class_label_features(db: Database, tmp_path: Path) -> None:
    ids = make_dataset(db, ["great film", "awful", "fine"])
    run_id = make_run(db, ids, ["positive", "negative", "neutral"], [0.9, 0.8, 0.55])
    run = records.load_run(db, run_id)
    out, parquet = tmp_path / "ds", tmp_path / "ds.parquet"
    n = hf.export_dataset(
        records.run_ontology(run), records.run_records(db, run), out, parquet=parquet
    )
    assert n == 3 and os.environ.get("HF_DATASETS_OFFLINE") == "1"
    loaded = datasets.load_from_disk(str(out))
    label = loaded.features["label"]
    assert isinstance(label, datasets.ClassLabel)
    assert label.names == ["positive", "negative", "neutral"]
    assert [label.int2str(x) for x in loaded["label"]] == ["positive", "negative", "neutral"]
    assert loaded["confidence"] == pytest.approx([0.9, 0.8, 0.55])
    assert loaded[0]["label_confidences"] == pytest.approx([0.9, 0.05, 0.05])
    assert loaded["id"] == ["ex0", "ex1", "ex2"]
    assert pq.read_table(parquet).num_rows == 3


def test_multi_label_and_spans_features(db: Database, tmp_path: Path) -> None:
    emo = ontology(EMOTIONS)
    ids = make_dataset(db, ["so angry and scared", "yay"], name="emo")
    run_id = make_run(db, ids, [["anger", "fear"], ["joy"]], [0.7, 0.9], ont=emo)
    run = records.load_run(db, run_id)
    hf.export_dataset(emo, records.run_records(db, run), tmp_path / "emo")
    loaded = datasets.load_from_disk(str(tmp_path / "emo"))
    inner = loaded.features["labels"].feature
    assert isinstance(inner, datasets.ClassLabel) and inner.names == ["anger", "joy", "fear"]
    assert [[inner.int2str(x) for x in row] for row in loaded["labels"]] == [
        ["anger", "fear"],
        ["joy"],
    ]

    ner, ner_run_id = ner_run(db)
    hf.export_dataset(
        ner, records.run_records(db, records.load_run(db, ner_run_id)), tmp_path / "ner"
    )
    loaded = datasets.load_from_disk(str(tmp_path / "ner"))
    span_label = loaded.features["spans"].feature["label"]
    assert span_label.names == ner.label_names
    got = [{**s, "label": span_label.int2str(s["label"])} for s in loaded[1]["spans"]]
    assert got == NER_LABELS[1]


def test_saved_dataset_is_label_input(tmp_path: Path) -> None:
    saved = tmp_path / "reviews"
    data = datasets.Dataset.from_dict(
        {"id": ["a", "b"], "text": ["good", "bad"], "stars": [5, 1]},
        features=datasets.Features(
            {
                "id": datasets.Value("string"),
                "text": datasets.Value("string"),
                "stars": datasets.ClassLabel(names=["0", "1", "2", "3", "4", "5"]),
            }
        ),
    )
    data.save_to_disk(str(saved))
    assert detect_format(saved) == "hf"
    assert count_rows(saved) == 2
    validator = RowValidator(ontology())
    items = [validator.validate(n, row) for n, row in read_rows(saved)]
    assert [(i.row, i.external_id, i.payload["text"]) for i in items] == [
        (1, "a", "good"),
        (2, "b", "bad"),
    ]
    assert items[0].payload["stars"] == "5"  # ClassLabel ids come back as names
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": data, "test": data}).save_to_disk(str(splits))
    with pytest.raises(InputError, match="several splits"):
        list(read_rows(splits))
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a dataset saved by Hugging Face"):
        detect_format(tmp_path / "plain")
