"""Gold import from CSV, JSONL and CoNLL, validation errors, and gold from review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.errors import InputError, NotFoundError
from autolabel.evaluation.gold import (
    bio_to_spans,
    gold_from_review,
    import_gold,
    read_gold_file,
    resolve_gold,
)
from autolabel.ontology.loader import load_ontology, parse_ontology
from autolabel.store.database import Database
from autolabel.store.tables import GoldLabel, Item, ReviewTask
from tests.conftest import REPO

from .builders import dataset_with_items

SST2 = REPO / "ontologies" / "sst2.yaml"
MULTI = parse_ontology(
    "name: emo\ntask: multi_label\nlabels:\n  - name: joy\n  - name: anger\n  - name: fear\n"
)
SPANS = parse_ontology("name: ner\ntask: spans\nlabels:\n  - name: PER\n  - name: LOC\n")


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("id,text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_csv_import_links_items_and_versions(tmp_path: Path, db_url: str) -> None:
    db = Database(db_url)
    ont = load_ontology(SST2)
    f = _csv(tmp_path / "sst.csv", ["a1,great film,positive", "a2,dull,NEGATIVE", "a3,ok,positive"])
    gold, n = import_gold(db, ont, f, id_column="id")
    assert (gold.name, gold.version, n) == ("sst", 1, 3)
    again, _ = import_gold(db, ont, f, id_column="id")
    assert again.version == 2 and again.dataset_id == gold.dataset_id
    with db.session() as s:
        items = s.exec(select(Item).where(Item.dataset_id == gold.dataset_id)).all()
        assert sorted(i.external_id for i in items) == ["a1", "a2", "a3"]  # reused, not copied
        labels = {
            s.get(Item, g.item_id).external_id: g.label  # type: ignore[union-attr]
            for g in s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == again.id))
        }
        assert labels == {"a1": "positive", "a2": "negative", "a3": "positive"}
        assert resolve_gold(s, "sst").version == 2
        assert resolve_gold(s, "sst@1").id == gold.id
        with pytest.raises(NotFoundError, match="known gold sets: sst"):
            resolve_gold(s, "nope")


def test_items_already_labeled_are_matched_by_external_id(tmp_path: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    ids = dataset_with_items(db, "sst", {"a1": "great film"})
    f = _csv(tmp_path / "sst.csv", ["a1,great film,positive"])
    gold, _ = import_gold(db, load_ontology(SST2), f, id_column="id")
    with db.session() as s:
        (label,) = s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == gold.id)).all()
        assert label.item_id == ids["a1"]


def test_without_id_column_the_engine_content_hash_is_used(tmp_path: Path) -> None:
    from autolabel.engine.inputs import external_id_for

    ont = load_ontology(SST2)
    f = tmp_path / "x.csv"
    f.write_text("text,label\ngreat film,positive\n", encoding="utf-8")
    (row,) = read_gold_file(f, ont)
    assert row.external_id == external_id_for(ont, {"text": "great film"})
    # An 'id' column is used when present, as the engine does.
    (with_id,) = read_gold_file(_csv(tmp_path / "y.csv", ["a1,great film,positive"]), ont)
    assert with_id.external_id == "a1"


def test_errors_name_rows_and_fields(tmp_path: Path) -> None:
    f = _csv(
        tmp_path / "bad.csv", ["a1,fine,positive", "a2,meh,neutral", "a3,,negative", "a4,good,"]
    )
    with pytest.raises(InputError) as err:
        read_gold_file(f, load_ontology(SST2), id_column="id")
    text = str(err.value)
    assert "3 invalid gold row(s)" in text
    assert "row 2, field 'label': 'neutral' is not a label of ontology 'sst2'" in text
    assert "row 3, field 'text': empty text" in text
    assert "row 4, field 'label': empty label" in text


def test_missing_label_column(tmp_path: Path) -> None:
    f = _csv(tmp_path / "x.csv", ["a1,fine,positive"])
    with pytest.raises(InputError, match="row 1, field 'gold': no label column"):
        read_gold_file(f, load_ontology(SST2), label_column="gold")


def test_multi_label_json_list_and_pipes(tmp_path: Path) -> None:
    jl = tmp_path / "e.jsonl"
    jl.write_text(
        json.dumps({"text": "yay", "labels": ["anger", "joy"]})
        + "\n"
        + json.dumps({"text": "hm", "labels": []})
        + "\n",
        encoding="utf-8",
    )
    rows = read_gold_file(jl, MULTI, label_column="labels")
    assert [r.label for r in rows] == [["joy", "anger"], []]  # ontology order
    csv = tmp_path / "e.csv"
    csv.write_text('text,labels\nyay,joy|fear\nboo,"[""anger""]"\nx,sad\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"row 3, field 'labels': unknown label\(s\) \['sad'\]"):
        read_gold_file(csv, MULTI, label_column="labels")


def test_spans_jsonl_offsets_are_checked(tmp_path: Path) -> None:
    jl = tmp_path / "n.jsonl"
    good = {
        "text": "Ann went to Rome",
        "spans": [{"start": 12, "end": 16, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER"}],
    }
    bad = {"text": "Bob", "spans": [{"start": 0, "end": 9, "label": "PER"}]}
    jl.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2, field 'spans': span \[0, 9\) is outside"):
        read_gold_file(jl, SPANS, label_column="spans")
    jl.write_text(json.dumps(good) + "\n", encoding="utf-8")
    (row,) = read_gold_file(jl, SPANS, label_column="spans")
    assert row.label == [
        {"start": 0, "end": 3, "text": "Ann", "label": "PER"},
        {"start": 12, "end": 16, "text": "Rome", "label": "LOC"},
    ]


def test_bio_to_spans_hand_case() -> None:
    tokens = ["John", "Smith", "visited", "New", "York", "and", "Paris"]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "I-LOC"]  # IOB1-style start
    text, spans = bio_to_spans(tokens, tags)
    assert text == "John Smith visited New York and Paris"
    assert spans == [
        {"start": 0, "end": 10, "text": "John Smith", "label": "PER"},
        {"start": 19, "end": 27, "text": "New York", "label": "LOC"},
        {"start": 32, "end": 37, "text": "Paris", "label": "LOC"},
    ]
    # B- right after the same type starts a new entity
    _, two = bio_to_spans(["A", "B"], ["B-PER", "B-PER"])
    assert [(s["start"], s["end"]) for s in two] == [(0, 1), (2, 3)]


def test_conll_file(tmp_path: Path, sqlite_url: str) -> None:
    f = tmp_path / "t.conll"
    f.write_text(
        "-DOCSTART- -X- O O\n\nAnn NNP B-NP B-PER\nsleeps VB O O\n\nRome NNP B-NP B-LOC\n",
        encoding="utf-8",
    )
    gold, n = import_gold(Database(sqlite_url), SPANS, f)
    assert n == 2 and gold.ontology_name == "ner"
    rows = read_gold_file(f, SPANS)
    assert rows[0].payload == {"text": "Ann sleeps"}
    assert rows[1].label == [{"start": 0, "end": 4, "text": "Rome", "label": "LOC"}]
    f.write_text("Ann B-ORG\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1: entity type\(s\) \['ORG'\]"):
        read_gold_file(f, SPANS)


def test_gold_from_review_takes_only_human_final_labels(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    ids = dataset_with_items(db, "q", {"a": "x", "b": "y", "c": "z"})
    with db.session() as s:
        s.add(
            ReviewTask(
                queue="q1",
                item_id=ids["a"],
                status="decided",
                final_label="positive",
                final_source="human",
            )
        )
        s.add(
            ReviewTask(
                queue="q1",
                item_id=ids["b"],
                status="decided",
                final_label="negative",
                final_source="model",
            )
        )
        s.add(ReviewTask(queue="q1", item_id=ids["c"], status="pending"))
        s.commit()
    gold, n = gold_from_review(db, "q1")
    assert (gold.name, n) == ("q1-review", 1)
    with db.session() as s:
        (label,) = s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == gold.id)).all()
        assert (label.item_id, label.label) == (ids["a"], "positive")
    with pytest.raises(NotFoundError):
        gold_from_review(db, "empty-queue")
