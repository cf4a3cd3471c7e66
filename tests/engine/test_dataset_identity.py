"""Dataset identity: same-named files stay apart; changed content is labeled again."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select, update

from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.ontology import load_ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.review.audit import item_history
from autolabel.store import Database
from autolabel.store.tables import Dataset, Item, Prediction, Run
from autolabel.testing import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SST2 = load_ontology(REPO / "ontologies" / "sst2.yaml")


def _write(path: Path, texts: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(texts.items())
    return path


def _job(srv: FakeOpenAIServer, db: Database, data: Path, **kw) -> LabelJob:  # type: ignore[no-untyped-def]
    provider = OpenAIProvider(model="m", base_url=srv.base_url, api_key="unused")
    return LabelJob(ontology=SST2, data=data, provider=provider, db=db, progress=False, **kw)


def test_two_files_with_the_same_name_are_two_datasets_unless_named_so(
    tmp_path: Path, db_url: str
) -> None:
    db = Database(db_url)
    a = _write(tmp_path / "a" / "data.csv", {"1": "a positive film", "2": "a negative one"})
    b = _write(tmp_path / "b" / "data.csv", {"1": "another text entirely", "2": "and more"})
    with FakeOpenAIServer() as srv:
        first = run_job(_job(srv, db, a))
        second = run_job(_job(srv, db, b))
        again = run_job(_job(srv, db, a))  # the same file: the same dataset, no note
        joined = run_job(_job(srv, db, b, dataset="data", temperature=0.5))
    assert first.notes == [] and again.notes == []
    assert len(second.notes) == 1
    assert "another file named data.csv is dataset 'data'" in second.notes[0]
    assert "is dataset 'data-2'" in second.notes[0] and "--dataset data" in second.notes[0]
    assert "joins it as you asked with --dataset" in joined.notes[0]
    with db.session() as s:
        datasets = {d.name: d.id for d in s.exec(select(Dataset)).scalars()}
        runs = {r.id: r.dataset_id for r in s.exec(select(Run)).scalars()}
        items = s.exec(select(Item.dataset_id, Item.payload).order_by(Item.id)).all()
    assert sorted(datasets) == ["data", "data-2"]
    assert runs[first.run_id] == runs[again.run_id] == runs[joined.run_id] == datasets["data"]
    assert runs[second.run_id] == datasets["data-2"]
    # b's item 1 did not overwrite a's item 1 in its own dataset...
    assert [p["text"] for d, p in items if d == datasets["data-2"]] == [
        "another text entirely",
        "and more",
    ]
    # ...and joining on purpose replaced the content of the same ids, on record.
    assert [p["text"] for d, p in items if d == datasets["data"]] == [
        "another text entirely",
        "and more",
    ]
    db.dispose()


def test_changed_content_under_the_same_id_is_labeled_again_and_flagged(
    tmp_path: Path, db_url: str
) -> None:
    db = Database(db_url)
    texts = {f"r{i}": f"review {i}: a positive film" for i in range(6)}
    data = _write(tmp_path / "reviews.csv", texts)
    with FakeOpenAIServer() as srv:
        done = run_job(_job(srv, db, data))  # a completed run on the old content
        unfinished = run_job(_job(srv, db, data, temperature=0.5))
        with db.engine.begin() as conn:  # as if killed before it finished
            conn.execute(
                update(Run).where(Run.id == unfinished.run_id).values(status="interrupted")
            )
        texts["r2"] = "review 2: now a negative film"
        _write(data, texts)
        before = len(srv.chat_requests())
        resumed = run_job(_job(srv, db, data, temperature=0.5))
        calls = len(srv.chat_requests()) - before
    assert resumed.resumed and resumed.run_id == unfinished.run_id
    assert resumed.n_changed == 1 and calls == 1  # only the changed item was asked again
    assert resumed.already_done == 5
    history = item_history(db, "r2")
    with db.session() as s:
        pred = s.exec(
            select(Prediction).where(
                Prediction.run_id == resumed.run_id, Prediction.item_id == history.item_id
            )
        ).scalar_one()
    assert pred.label == "negative" and pred.error is None
    by_run = {p.run_id: p for p in history.predictions}
    assert by_run[done.run_id].on_current_content is False  # flagged
    assert by_run[resumed.run_id].on_current_content is True
    assert len(history.changes) == 1
    assert history.changes[0].old_payload["text"] == "review 2: a positive film"
    assert history.changes[0].run_id == resumed.run_id
    db.dispose()
