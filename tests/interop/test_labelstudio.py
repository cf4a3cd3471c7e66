"""Label Studio: export a run as tasks with predictions + config, import annotations back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlmodel import select

from autolabel.errors import ConfigError, InputError
from autolabel.interop import labelstudio, records
from autolabel.review.resolution import resolve_final_labels
from autolabel.store.database import Database
from autolabel.store.tables import Decision, GoldLabel, GoldSet, ReviewTask
from tests.interop.builders import NER_LABELS, ner_run, set_model
from tests.review.factories import EMOTIONS, INVOICE, make_dataset, make_run, ontology


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def _export(db: Database, run_id: int, out: Path) -> list[dict[str, Any]]:
    run = records.load_run(db, run_id)
    ont = records.run_ontology(run)
    labelstudio.export_tasks(ont, records.run_records(db, run), out)
    return json.loads(out.read_text())


def _accept_predictions(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Label Studio exports after an annotator accepts every pre-annotation."""
    out = []
    for i, task in enumerate(tasks, start=1):
        result = task["predictions"][0]["result"]
        out.append(
            {
                "id": i,
                "data": task["data"],
                "annotations": [{"id": 100 + i, "completed_by": 7, "result": result}],
                "predictions": task["predictions"],
            }
        )
    return out


def _sdk_check(config: str, tasks: list[dict[str, Any]]) -> None:
    """Validate with label_studio_sdk when installed (the interop/test extra)."""
    try:
        from label_studio_sdk.label_interface import LabelInterface
    except ImportError:
        return
    interface = LabelInterface(config)
    for task in tasks:
        for pred in task["predictions"]:
            assert interface.validate_prediction(pred), pred


def test_classify_round_trip(db: Database, tmp_path: Path) -> None:
    ids = make_dataset(db, ["great film", "awful", "fine I guess"])
    run_id = make_run(db, ids, ["positive", "negative", "neutral"], [0.9, 0.8, 0.55])
    set_model(db, run_id, "qwen2.5", "abcdef0123456789")
    tasks = _export(db, run_id, tmp_path / "tasks.json")
    config = (tmp_path / "tasks.xml").read_text()
    ElementTree.fromstring(config)  # well-formed XML
    assert 'choice="single"' in config and 'value="neutral"' in config
    assert labelstudio.validate_tasks(ontology(), tasks) == []
    _sdk_check(config, tasks)
    first = tasks[0]
    assert first["data"] == {"text": "great film", "autolabel_id": "ex0"}
    pred = first["predictions"][0]
    assert pred["score"] == pytest.approx(0.9)
    assert pred["model_version"] == "qwen2.5@abcdef012345"
    assert pred["result"][0]["value"] == {"choices": ["positive"]}
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_accept_predictions(tasks)))
    back = labelstudio.read_export(export, ontology())
    assert [(r.external_id, r.label) for r in back] == [
        ("ex0", "positive"),
        ("ex1", "negative"),
        ("ex2", "neutral"),
    ]
    assert back[0].annotator == "labelstudio:7"
    gold, n = records.store_as_gold(
        db, ontology(), back, name="ls-gold", dataset="ds", source=str(export)
    )
    assert n == 3
    with db.session() as s:
        stored = s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == gold.id)).all()
        assert sorted((g.item_id, g.label) for g in stored) == list(
            zip(ids, ["positive", "negative", "neutral"], strict=True)
        )


def test_multi_label_and_spans_round_trip(db: Database, tmp_path: Path) -> None:
    emo = ontology(EMOTIONS)
    ids = make_dataset(db, ["so angry and scared", "yay"], name="emo")
    run_id = make_run(db, ids, [["anger", "fear"], ["joy"]], [0.7, 0.9], ont=emo)
    tasks = _export(db, run_id, tmp_path / "emo.json")
    assert 'choice="multiple"' in (tmp_path / "emo.xml").read_text()
    assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["anger", "fear"]}
    assert labelstudio.validate_tasks(emo, tasks) == []
    _sdk_check((tmp_path / "emo.xml").read_text(), tasks)
    (tmp_path / "emo_export.json").write_text(json.dumps(_accept_predictions(tasks)))
    back = labelstudio.read_export(tmp_path / "emo_export.json", emo)
    assert [r.label for r in back] == [["anger", "fear"], ["joy"]]

    ner, ner_run_id = ner_run(db)
    tasks = _export(db, ner_run_id, tmp_path / "ner.json")
    config = (tmp_path / "ner.xml").read_text()
    assert "<Labels" in config and 'hint="a person"' in config
    span = tasks[0]["predictions"][0]["result"][1]
    assert span["type"] == "labels" and span["score"] == pytest.approx(0.8)
    assert span["value"] == {"start": 22, "end": 28, "text": "London", "labels": ["LOC"]}
    assert labelstudio.validate_tasks(ner, tasks) == []
    _sdk_check(config, tasks)
    (tmp_path / "ner_export.json").write_text(json.dumps(_accept_predictions(tasks)))
    back = labelstudio.read_export(tmp_path / "ner_export.json", ner)
    assert [r.label for r in back] == NER_LABELS


def test_import_as_decisions_feeds_final_labels(db: Database, tmp_path: Path) -> None:
    ids = make_dataset(db, ["great film", "awful"])
    run_id = make_run(db, ids, ["positive", "negative"], [0.9, 0.8])
    tasks = _accept_predictions(_export(db, run_id, tmp_path / "tasks.json"))
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["neutral"]  # a correction
    tasks[0]["annotations"].append({"was_cancelled": True, "result": []})
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    recs = labelstudio.read_export(tmp_path / "export.json", ontology())
    result = records.store_as_decisions(
        db, recs, run_ref=run_id, queue="ls", reviewer="ls", source="export.json"
    )
    assert (result.added, result.unchanged) == (2, 0)
    again = records.store_as_decisions(
        db, recs, run_ref=run_id, queue="ls", reviewer="ls", source="export.json"
    )
    assert (again.added, again.unchanged) == (0, 2)  # importing twice changes nothing
    finals = resolve_final_labels(db, run_id)
    assert (finals[ids[1]].label, finals[ids[1]].source) == ("neutral", "human")
    with db.session() as s:
        assert len(s.exec(select(Decision)).all()) == 2
        assert {t.status for t in s.exec(select(ReviewTask))} == {"decided"}


def test_unknown_labels_name_file_and_record_and_write_nothing(
    db: Database, tmp_path: Path
) -> None:
    ids = make_dataset(db, ["great film", "awful"])
    run_id = make_run(db, ids, ["positive", "negative"], [0.9, 0.8])
    tasks = _accept_predictions(_export(db, run_id, tmp_path / "tasks.json"))
    tasks[1]["id"] = 42
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["meh"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks))
    with pytest.raises(InputError) as info:
        labelstudio.read_export(bad, ontology())
    message = str(info.value)
    assert "bad.json record 2 (task id 42)" in message and "'meh'" in message
    assert "nothing was imported" in message
    with db.session() as s:
        assert s.exec(select(GoldSet)).all() == []


def test_decisions_for_items_not_in_run_write_nothing(db: Database, tmp_path: Path) -> None:
    ids = make_dataset(db, ["great film", "awful"])
    run_id = make_run(db, ids, ["positive", "negative"], [0.9, 0.8])
    tasks = _accept_predictions(_export(db, run_id, tmp_path / "tasks.json"))
    tasks[1]["data"]["autolabel_id"] = "nope"
    (tmp_path / "x.json").write_text(json.dumps(tasks))
    recs = labelstudio.read_export(tmp_path / "x.json", ontology())
    with pytest.raises(InputError, match=r"x.json record 2 \(task id 2\): no item 'nope'"):
        records.store_as_decisions(db, recs, run_ref=run_id, queue="ls", reviewer="r", source="x")
    with db.session() as s:
        assert s.exec(select(ReviewTask)).all() == []
        assert s.exec(select(Decision)).all() == []


def test_fields_tasks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="classify, multi_label and spans"):
        labelstudio.labeling_config(ontology(INVOICE))


def test_final_labels_export_human_decisions_as_annotations(db: Database, tmp_path: Path) -> None:
    ids = make_dataset(db, ["great film", "awful"])
    run_id = make_run(db, ids, ["positive", "negative"], [0.9, 0.4])
    records.store_as_decisions(
        db,
        [records.Record("ex1", {"text": "awful"}, "neutral", annotator="ann")],
        run_ref=run_id,
        queue="q",
        reviewer="r",
        source="test",
    )
    run = records.load_run(db, run_id)
    recs = records.run_records(db, run, labels="final")
    labelstudio.export_tasks(ontology(), recs, tmp_path / "final.json")
    tasks = json.loads((tmp_path / "final.json").read_text())
    assert "predictions" in tasks[0] and "annotations" not in tasks[0]
    assert tasks[1]["annotations"][0]["result"][0]["value"] == {"choices": ["neutral"]}
    assert tasks[1]["meta"] == {"source": "human"} and "predictions" not in tasks[1]
    back = labelstudio.read_export(tmp_path / "final.json", ontology())
    assert [(r.external_id, r.label) for r in back] == [("ex1", "neutral")]
