"""`autolabel label` on a directory saved by Hugging Face datasets, through the real pipeline
(a loopback OpenAI-protocol server), and the run's ontology version stored with its text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.interop import hf, records
from autolabel.ontology import load_ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store import Database
from autolabel.store.tables import OntologyVersion, Run
from autolabel.testing import FakeOpenAIServer

datasets = pytest.importorskip("datasets")
REPO = Path(__file__).resolve().parents[2]
SST2_PATH = REPO / "ontologies" / "sst2.yaml"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def test_label_a_saved_dataset_and_export_it_back(
    server: FakeOpenAIServer, tmp_path: Path, sqlite_url: str
) -> None:
    texts = [f"review {i}: {'positive' if i % 3 else 'negative'} film" for i in range(1, 7)]
    saved = tmp_path / "reviews"
    datasets.Dataset.from_dict({"id": [f"r{i}" for i in range(1, 7)], "text": texts}).save_to_disk(
        str(saved)
    )
    db = Database(sqlite_url)
    provider = OpenAIProvider(model="fake-model", base_url=server.base_url, api_key="unused")
    ontology = load_ontology(SST2_PATH)
    job = LabelJob(
        ontology=ontology,
        ontology_path=str(SST2_PATH),
        data=saved,
        provider=provider,
        db=db,
        cache=None,
        progress=False,
    )
    summary = run_job(job)
    assert summary.n_labeled == 6 and summary.n_failed == 0
    with db.session() as s:
        run = s.get(Run, summary.run_id)
        assert run is not None
        version = s.exec(
            select(OntologyVersion).where(OntologyVersion.hash == run.ontology_hash)
        ).one()
    assert version.text == SST2_PATH.read_text(encoding="utf-8")
    recs = records.run_records(db, records.load_run(db, summary.run_id))
    hf.export_dataset(ontology, recs, tmp_path / "labeled")
    loaded = datasets.load_from_disk(str(tmp_path / "labeled"))
    names = [loaded.features["label"].int2str(x) for x in loaded["label"]]
    assert loaded["id"] == [f"r{i}" for i in range(1, 7)]
    assert names == ["positive" if i % 3 else "negative" for i in range(1, 7)]
