"""Experiments: file validation, and a real run with the small embedded model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.engine.inputs import read_rows
from autolabel.errors import ConfigError
from autolabel.evaluation.experiments import (
    DatasetSpec,
    Variant,
    load_experiment,
    resolve_variant_ontology,
)
from autolabel.store.database import Database
from autolabel.store.tables import EvalRecord, Prediction, Run
from tests.conftest import REPO

from .builders import cli


def test_shipped_experiment_files_are_valid() -> None:
    for name in ("compare_prompts_models", "embedded_default"):
        exp = load_experiment(REPO / "eval" / f"{name}.yaml")
        assert exp.base_dir == REPO
        for ds in exp.datasets:
            assert exp.path(ds.data).exists(), ds.data
            for variant in exp.variants:
                ontology, _ = resolve_variant_ontology(exp, variant, ds)
                _, first = next(read_rows(exp.path(ds.data)))
                assert ds.gold_column in first, (ds.data, ds.gold_column)
                assert set(ontology.input.fields) <= set(first), ds.data
    exp = load_experiment(REPO / "eval" / "compare_prompts_models.yaml")
    assert len(exp.variants) >= 2 and len(exp.models) >= 2 and len(exp.datasets) >= 2


def test_variant_examples_and_zero_shot() -> None:
    exp = load_experiment(REPO / "eval" / "compare_prompts_models.yaml")
    ds = DatasetSpec(name="sst2", data="x.csv", ontology="ontologies/sst2_fewshot.yaml")
    zero, _ = resolve_variant_ontology(exp, Variant(name="z", few_shot=False), ds)
    few, _ = resolve_variant_ontology(exp, Variant(name="f"), ds)
    assert zero.examples == [] and len(few.examples) >= 2
    extra = Variant(name="e", examples={"sst2": [{"input": {"text": "x"}, "output": "maybe"}]})
    with pytest.raises(ConfigError, match="bad examples"):
        resolve_variant_ontology(exp, extra, ds)


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(
        "name: x\nvariants: [{name: a, fewshot: true}]\nmodels: [{model: m}]\n"
        "datasets: [{name: d, data: d.csv, ontology: sst2}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="fewshot"):
        load_experiment(f)


@pytest.mark.model
def test_experiment_with_the_small_model(
    tmp_path: Path, sqlite_url: str, gemma_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "eval").mkdir()
    exp_file = tmp_path / "eval" / "tiny.yaml"
    exp_file.write_text(
        f"""name: tiny
target_precision: 0.8
limit: 6
concurrency: 2
variants:
  - {{name: zero, few_shot: false}}
  - {{name: few, ontology: {REPO}/ontologies/sst2_fewshot.yaml}}
models:
  - {{name: gemma, provider: local, model: {gemma_path}}}
datasets:
  - name: sst2
    data: {REPO}/eval/data/small/sst2_dev_40.csv
    ontology: {REPO}/ontologies/sst2.yaml
    id_column: id
""",
        encoding="utf-8",
    )
    out = tmp_path / "report"
    assert cli(["experiment", str(exp_file), "--db", sqlite_url, "--report", str(out)]) == 0
    assert "experiment tiny" in capsys.readouterr().out
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [(r["variant"], r["n"]) for r in data["rows"]] == [("zero", 6), ("few", 6)]
    (comparison,) = data["comparisons"]
    assert comparison["n"] == 6 and comparison["mcnemar"]["method"] == "exact"
    assert "data:image/png;base64," in (out / "report.html").read_text(encoding="utf-8")
    assert (out / "reliability_sst2.png").exists() and (out / "coverage_sst2.png").exists()
    # The reported accuracy is the stored predictions against the gold file.
    with open(REPO / "eval/data/small/sst2_dev_40.csv", encoding="utf-8") as fh:
        gold = {r["id"]: r["label"] for r in csv.DictReader(fh)}
    db = Database(sqlite_url)
    with db.session() as s:
        for row in data["rows"]:
            run = s.get(Run, row["run_id"])
            assert run is not None and run.status == "completed"
            preds = s.exec(select(Prediction).where(Prediction.run_id == run.id)).all()
            from autolabel.store.tables import Item

            right = sum(
                p.label == gold[s.get(Item, p.item_id).external_id]  # type: ignore[union-attr]
                for p in preds
            )
            assert row["accuracy"] == pytest.approx(right / 6)
        records = s.exec(select(EvalRecord).where(EvalRecord.experiment == "tiny")).all()
        assert len(records) == 2
    # A re-run is served from the cache: same numbers, and the speed of the first labeling.
    again = tmp_path / "again"
    assert cli(["experiment", str(exp_file), "--db", sqlite_url, "--report", str(again)]) == 0
    data2 = json.loads((again / "report.json").read_text(encoding="utf-8"))
    for first, second in zip(data["rows"], data2["rows"], strict=True):
        assert second["run_id"] != first["run_id"] and second["cache_hits"] == 6
        assert second["accuracy"] == first["accuracy"]
        assert second["items_per_s"] == pytest.approx(first["items_per_s"], rel=0.5)
