"""Snapshots with manifests, and the interop commands as a user meets them."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.cli.main import main
from autolabel.errors import ConfigError
from autolabel.interop.snapshot import verify_snapshot, write_snapshot
from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import GoldSet, LabelMigration, ReviewTask
from tests.interop.builders import ner_run
from tests.interop.test_migrate import V1, V2
from tests.review.factories import make_dataset, make_run, make_tasks


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def autolabel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """The real entry point in-process (as ``autolabel ...`` runs it, minus the start-up)."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def test_snapshot_manifest_traces_provenance(sqlite_url: str, tmp_path: Path) -> None:
    db = Database(sqlite_url)
    ids = make_dataset(db, ["great", "awful", "meh", "fine"])
    run_id = make_run(
        db, ids, ["positive", "negative", "neutral", "positive"], [0.95, 0.9, 0.4, 0.5]
    )
    make_tasks(db, run_id)
    with db.session() as s:
        task = s.exec(select(ReviewTask).where(ReviewTask.item_id == ids[2])).one()
    ReviewQueue(db).decide(int(task.id), "ann", "negative")  # type: ignore[arg-type]
    with db.session() as s:
        from autolabel.store.tables import Run

        run = s.get(Run, run_id)
    assert run is not None
    manifest = write_snapshot(db, [run], tmp_path / "snap")
    assert manifest["ontology"]["name"] == "sentiment"
    assert manifest["ontology"]["hash"] and manifest["runs"][0]["id"] == run_id
    assert manifest["counts"] == {
        "items": 4,
        "by_provenance": {"human": 1, "model_above_threshold": 2, "model_below_threshold": 1},
    }
    assert manifest["per_label"]["negative"] == {"human": 1, "model_above_threshold": 1}
    rows = [json.loads(x) for x in (tmp_path / "snap" / "data.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"], r["provenance"]) for r in rows][2] == ("ex2", "negative", "human")
    assert verify_snapshot(tmp_path / "snap")
    with (tmp_path / "snap" / "data.jsonl").open("a") as fh:
        fh.write("{}\n")
    assert not verify_snapshot(tmp_path / "snap")  # the content hash catches any edit
    with pytest.raises(ConfigError, match="not empty"):
        write_snapshot(db, [run], tmp_path / "snap")


def test_interop_commands_end_to_end(
    sqlite_url: str, tmp_path: Path, autolabel: Callable[..., Result]
) -> None:
    db = Database(sqlite_url)
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1)
    v2.write_text(V2)
    from autolabel.ontology.loader import load_ontology

    ids = make_dataset(db, ["good", "bad", "so-so"])
    run_id = make_run(db, ids, ["pos", "angry", "neutral"], [0.9, 0.8, 0.6], ont=load_ontology(v1))
    ner_ont, ner_id = ner_run(db)
    ner_yaml = tmp_path / "ner.yaml"
    ner_yaml.write_text(json.dumps(ner_ont.model_dump(mode="json")))  # JSON is YAML
    db.dispose()
    dbopt = ["--db", sqlite_url]

    out = autolabel("labelstudio", "export", str(run_id), "-o", str(tmp_path / "t.json"), *dbopt)
    assert out.returncode == 0, out.stderr
    tasks = json.loads((tmp_path / "t.json").read_text())
    assert (tmp_path / "t.xml").exists() and len(tasks) == 3
    tasks[0]["annotations"] = [{"result": [{**tasks[0]["predictions"][0]["result"][0],
                                            "value": {"choices": ["happy"]}}]}]  # fmt: skip
    (tmp_path / "bad.json").write_text(json.dumps(tasks))
    out = autolabel("labelstudio", "import", str(tmp_path / "bad.json"), "-o", str(v1), *dbopt)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "bad.json record 1" in out.stderr and "'happy'" in out.stderr

    ok = tmp_path / "ok.json"
    tasks[0]["annotations"][0]["result"][0]["value"]["choices"] = ["neg"]
    ok.write_text(json.dumps(tasks))
    args = ("labelstudio", "import", str(ok), "-o", str(v1), "--as", "decisions")
    out = autolabel(*args, "--run", str(run_id), *dbopt)
    assert out.returncode == 0 and "1 decisions recorded" in out.stdout, out.stderr

    out = autolabel("ontology", "diff", str(v1), str(v2), *dbopt)
    assert out.returncode == 0, out.stderr
    assert "renamed  pos → positive" in out.stdout and "split    neutral" in out.stdout
    bad = tmp_path / "v2bad.yaml"
    bad.write_text(
        V2.replace("{neg, angry}", "{negg, angry}").replace("[neg, angry]", "[negg, angry]")
    )
    out = autolabel("ontology", "migrate", str(v1), str(bad), *dbopt)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "migrate.merge.negative: 'negg' is not a label" in out.stderr
    out = autolabel("ontology", "migrate", str(v1), str(v2), *dbopt)
    assert out.returncode == 0, out.stderr
    assert "items queued: 1" in out.stdout

    out = autolabel("conll", "export", str(ner_id), "-o", str(tmp_path / "n.conll"), *dbopt)
    assert out.returncode == 0, out.stderr
    if importlib.util.find_spec("spacy"):
        out = autolabel("spacy", "export", str(ner_id), "-o", str(tmp_path / "n.spacy"), *dbopt)
        assert out.returncode == 0 and "3 documents, 5 spans" in out.stdout, out.stderr
        out = autolabel("spacy", "import", str(tmp_path / "n.spacy"), "-o", str(ner_yaml), *dbopt)
        assert out.returncode == 0 and "gold set n@1: 3 documents" in out.stdout, out.stderr
    if importlib.util.find_spec("datasets"):
        out = autolabel("hf", "export", str(run_id), "-o", str(tmp_path / "hf"), *dbopt)
        assert out.returncode == 0 and "saved 3 rows" in out.stdout, out.stderr
    out = autolabel("export", str(run_id), "--snapshot", str(tmp_path / "snap"), *dbopt)
    assert out.returncode == 0, out.stderr
    assert verify_snapshot(tmp_path / "snap")
    db = Database(sqlite_url)
    with db.session() as s:
        assert len(s.exec(select(LabelMigration)).all()) == 1
        # The bad Label Studio import wrote nothing (the only gold set is the DocBin's).
        assert all(g.ontology_name == "ner" for g in s.exec(select(GoldSet)))
