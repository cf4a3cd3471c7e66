"""The benchmark script converts restricted sets into a temporary folder correctly."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

from autolabel.evaluation.gold import read_gold_file
from autolabel.ontology.loader import load_ontology
from tests.conftest import REPO


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_benchmark", REPO / "eval/run_benchmark.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_restricted_sets_are_converted_outside_the_repo(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "ag_news").mkdir(parents=True)
    (shared / "ag_news" / "test.csv").write_text(
        '"3","Stocks up","Markets rose.\\nMore later"\n"2","Win","A team won"\n', encoding="utf-8"
    )
    (shared / "financial_phrasebank").mkdir()
    (shared / "financial_phrasebank" / "Sentences_AllAgree.txt").write_text(
        "Profit rose 5 % @ year@positive\nSales were flat@neutral\n", encoding="utf-8"
    )
    (shared / "conll2003").mkdir()
    (shared / "conll2003" / "eng.testb").write_text(
        "SOCCER NN B-NP O\n\nPeter NNP B-NP B-PER\nlives VBZ O O\nin IN O O\n"
        "Berlin NNP B-NP B-LOC\n",
        encoding="utf-8",
    )
    out = tmp_path / "tmp"
    out.mkdir()
    sets = {s.name: s for s in _bench().restricted_sets(shared, 10, 0, out)}
    assert set(sets) == {"ag_news", "financial_phrasebank", "conll2003"}
    assert all(Path(s.data).parent == out for s in sets.values())
    with open(sets["ag_news"].data, encoding="utf-8") as fh:
        ag = list(csv.DictReader(fh))
    assert ag[0] == {
        "id": "ag-00000",
        "title": "Stocks up",
        "description": "Markets rose. More later",
        "label": "business",
    }
    fpb = read_gold_file(
        Path(sets["financial_phrasebank"].data),
        load_ontology(sets["financial_phrasebank"].ontology),
    )
    assert [r.label for r in fpb] == ["positive", "neutral"]
    assert fpb[0].payload["text"] == "Profit rose 5 % @ year"  # split on the last '@'
    lines = Path(sets["conll2003"].data).read_text(encoding="utf-8").splitlines()
    (only,) = [json.loads(x) for x in lines]  # the 2-token headline is dropped
    assert only["text"] == "Peter lives in Berlin"
    assert [s["text"] for s in only["spans"]] == ["Peter", "Berlin"]
    gold = read_gold_file(
        Path(sets["conll2003"].data),
        load_ontology(REPO / "ontologies/conll2003.yaml"),
        label_column="spans",
    )
    assert gold[0].label[1] == {"start": 15, "end": 21, "text": "Berlin", "label": "LOC"}


def test_sample_is_seeded_and_ordered() -> None:
    bench = _bench()
    rows = [{"i": i} for i in range(100)]
    a = bench.sample(rows, 10, 3)
    assert a == bench.sample(rows, 10, 3) and a == sorted(a, key=lambda r: r["i"])
