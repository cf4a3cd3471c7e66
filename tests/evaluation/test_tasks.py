"""Evaluation of multi-label and span runs built in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autolabel.evaluation.evaluate import evaluate_run
from autolabel.evaluation.gold import import_gold
from autolabel.ontology.loader import parse_ontology
from autolabel.store.database import Database

from .builders import dataset_with_items, make_run

EMO = parse_ontology(
    "name: emo\ntask: multi_label\nlabels:\n  - name: joy\n  - name: anger\n  - name: fear\n"
)
NER = parse_ontology("name: ner\ntask: spans\nlabels:\n  - name: PER\n  - name: LOC\n")


def test_multi_label_run(tmp_path: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    gold = {"a": ["joy"], "b": ["anger", "fear"], "c": [], "d": ["joy"]}
    dataset_with_items(db, "emo", {k: f"text {k}" for k in gold})
    f = tmp_path / "emo.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": k, "text": f"text {k}", "labels": v}) + "\n" for k, v in gold.items()
        ),
        encoding="utf-8",
    )
    import_gold(db, EMO, f, label_column="labels")
    run = make_run(
        db,
        EMO,
        "emo",
        {"a": (["joy"], 0.9), "b": (["anger"], 0.6), "c": ([], 0.8), "d": (None, None)},
    )
    res = evaluate_run(db, run, store=False)
    assert res.task == "multi_label" and res.n_failed == 1
    assert res.summary["accuracy"] == pytest.approx(2 / 4)
    # errors: b misses fear (1), d failed (3 labels) → 4 / 12
    assert res.summary["hamming_loss"] == pytest.approx(4 / 12)
    assert res.calibration["brier_kind"] == "binary"
    assert "macro_f1" not in res.intervals  # bootstrap of macro-F1 is single-label only


def test_span_run(tmp_path: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    texts = {"a": "Ann met Bob in Rome", "b": "Paris"}
    dataset_with_items(db, "ner", texts)
    ann = {"start": 0, "end": 3, "text": "Ann", "label": "PER"}
    bob = {"start": 8, "end": 11, "text": "Bob", "label": "PER"}
    rome = {"start": 15, "end": 19, "text": "Rome", "label": "LOC"}
    paris = {"start": 0, "end": 5, "text": "Paris", "label": "LOC"}
    f = tmp_path / "ner.jsonl"
    f.write_text(
        json.dumps({"id": "a", "text": texts["a"], "spans": [ann, bob, rome]})
        + "\n"
        + json.dumps({"id": "b", "text": texts["b"], "spans": [paris]})
        + "\n",
        encoding="utf-8",
    )
    import_gold(db, NER, f, label_column="spans")
    rom = {"start": 15, "end": 18, "text": "Rom", "label": "LOC"}
    run = make_run(db, NER, "ner", {"a": ([ann, rom], 0.7), "b": ([paris], 0.95)})
    res = evaluate_run(db, run, store=False)
    assert res.summary["accuracy"] == 0.5
    # exact: tp 2 (Ann, Paris) of 3 predicted, 4 gold; partial adds Rom~Rome
    assert res.metrics["exact"]["precision"] == pytest.approx(2 / 3)
    assert res.metrics["exact"]["recall"] == pytest.approx(2 / 4)
    assert res.summary["partial_f1"] == pytest.approx(2 * 1 * 0.75 / 1.75)
