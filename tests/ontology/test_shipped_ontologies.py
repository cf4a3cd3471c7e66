"""Shipped ontologies and data subsets agree; the loader's errors locate problems.

Reads only committed files (ontologies/, eval/data/, examples/): a user's clone has no ../shared.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autolabel.errors import OntologyError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.loader import load_ontology, parse_ontology
from autolabel.ontology.schema import Ontology, TaskType

REPO = Path(__file__).resolve().parents[2]
ONTOLOGIES = REPO / "ontologies"
DATA = REPO / "eval" / "data"
SMALL = DATA / "small"
EXAMPLES = REPO / "examples"

SHIPPED = sorted(p.stem for p in ONTOLOGIES.glob("*.yaml"))

# Which committed gold file belongs to which ontology.
CSV_GOLD = {
    "sst2": ["sst2_dev.csv", "sst2_test.csv", "small/sst2_dev_40.csv"],
    "sst2_fewshot": ["sst2_dev.csv", "sst2_test.csv"],
    "banking77": ["banking77_test.csv", "small/banking77_40.csv"],
    "tweet_sentiment": [
        "tweet_sentiment_val.csv",
        "tweet_sentiment_test.csv",
        "small/tweet_sentiment_40.csv",
    ],
}
JSONL_GOLD = {
    "goemotions": ["goemotions_test.jsonl", "goemotions_dev.jsonl", "small/goemotions_40.jsonl"],
    "wnut17": ["wnut17_test.jsonl", "wnut17_dev.jsonl", "small/wnut17_40.jsonl"],
    "wnut17_fewshot": ["wnut17_dev.jsonl", "wnut17_test.jsonl"],
}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ontology(name: str) -> Ontology:
    return load_ontology(ONTOLOGIES / f"{name}.yaml")


# -- every shipped ontology ----------------------------------------------------------------------
def test_every_task_type_has_a_shipped_ontology() -> None:
    tasks = {_ontology(name).task for name in SHIPPED}
    assert tasks == set(TaskType)
    assert {
        "sst2",
        "sst2_fewshot",
        "banking77",
        "ag_news",
        "goemotions",
        "tweet_sentiment",
        "conll2003",
        "wnut17",
    } <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_ontology_loads_by_path_and_is_documented(name: str) -> None:
    ont = _ontology(name)
    assert ont.name == name
    assert ont.description
    assert ont.guidelines.strip()
    # Label descriptions go into the prompt; an undocumented label hurts a small model.
    assert all(label.description for label in ont.labels)
    assert all(f.description for f in ont.fields)
    assert 0.0 < ont.review.threshold < 1.0


@pytest.mark.parametrize("name", SHIPPED)
def test_compiled_prompt_has_data_section_and_label_list(name: str) -> None:
    ont = _ontology(name)
    item = {field: f"UNIQUE-{field}-VALUE" for field in ont.input.fields}
    prompt = PromptCompiler(ont).compile(item)
    system, last = prompt.messages[0]["content"], prompt.messages[-1]["content"]
    for field in ont.input.fields:
        assert f"{field}: UNIQUE-{field}-VALUE" in last
        assert "UNIQUE-" not in system  # item text only appears inside the data section
    assert last.startswith("<data>") and last.endswith("</data>")
    for label in ont.labels:
        # One line per label with its description, so the model can tell them apart.
        assert f"- {label.name}: {label.description.strip()}\n" in system + "\n"
    for f in ont.fields:
        assert f"- {f.name} ({f.type}" in system
    assert len(prompt.messages) == 2 + 2 * len(ont.examples)
    assert prompt.labels == tuple(ont.label_names)


# -- label sets match the datasets exactly --------------------------------------------------------
def test_sst2_labels() -> None:
    assert _ontology("sst2").label_names == ["positive", "negative"]
    assert _ontology("sst2_fewshot").label_names == ["positive", "negative"]


def test_sst2_fewshot_examples_are_not_in_any_shipped_subset() -> None:
    ont = _ontology("sst2_fewshot")
    assert len(ont.examples) == 4
    assert sorted(ex.output for ex in ont.examples) == [
        "negative",
        "negative",
        "positive",
        "positive",
    ]
    shipped = {r["text"] for f in ("sst2_dev.csv", "sst2_test.csv") for r in _csv(DATA / f)}
    shipped |= {r["text"] for r in _csv(EXAMPLES / "sst2_sample.csv")}
    for ex in ont.examples:
        assert ex.input["text"] not in shipped


def test_banking77_has_all_77_intents_of_the_dataset() -> None:
    names = _ontology("banking77").label_names
    gold = {r["label"] for r in _csv(DATA / "banking77_test.csv")}
    # The 200-row subset is stratified so all 77 classes appear in it.
    assert len(names) == 77 == len(set(names))
    assert set(names) == gold
    assert "Refund_not_showing_up" in names and "reverted_card_payment?" in names


def test_tweet_sentiment_labels() -> None:
    names = _ontology("tweet_sentiment").label_names
    assert names == ["negative", "neutral", "positive"]
    gold = {r["label"] for f in CSV_GOLD["tweet_sentiment"][:2] for r in _csv(DATA / f)}
    assert gold == set(names)


def test_goemotions_has_the_28_labels_in_dataset_order() -> None:
    names = _ontology("goemotions").label_names
    assert len(names) == 28
    assert names[0] == "admiration" and names[-1] == "neutral"
    gold = {label for r in _jsonl(DATA / "goemotions_test.jsonl") for label in r["labels"]}
    assert gold == set(names)  # the subset was drawn so every label occurs


def test_ner_and_news_label_sets() -> None:
    assert _ontology("conll2003").label_names == ["PER", "ORG", "LOC", "MISC"]
    assert _ontology("wnut17").label_names == [
        "person",
        "location",
        "group",
        "creative-work",
        "corporation",
        "product",
    ]
    gold = {s["label"] for r in _jsonl(DATA / "wnut17_test.jsonl") for s in r["spans"]}
    assert gold == set(_ontology("wnut17").label_names)
    ag = _ontology("ag_news")
    assert ag.label_names == ["world", "sports", "business", "sci_tech"]
    assert ag.input.fields == ["title", "description"]


# -- committed gold data agrees with the ontologies ----------------------------------------------
@pytest.mark.parametrize(("name", "file"), [(n, f) for n, fs in CSV_GOLD.items() for f in fs])
def test_csv_gold_labels_are_in_the_ontology(name: str, file: str) -> None:
    ont = _ontology(name)
    rows = _csv(DATA / file)
    assert rows and list(rows[0]) == ["id", *ont.input.fields, "label"]
    assert len({r["id"] for r in rows}) == len(rows)
    unknown = {r["label"] for r in rows} - set(ont.label_names)
    assert not unknown
    assert all(r["text"].strip() for r in rows)


@pytest.mark.parametrize(("name", "file"), [(n, f) for n, fs in JSONL_GOLD.items() for f in fs])
def test_jsonl_gold_is_canonical(name: str, file: str) -> None:
    ont = _ontology(name)
    rows = _jsonl(DATA / file)
    assert len({r["id"] for r in rows}) == len(rows)
    order = {label: i for i, label in enumerate(ont.label_names)}
    for r in rows:
        if ont.task == TaskType.MULTI_LABEL:
            assert r["labels"], r
            # Canonical multi_label answers are in ontology order without repeats.
            assert r["labels"] == sorted(set(r["labels"]), key=order.__getitem__)
        else:
            starts = [s["start"] for s in r["spans"]]
            assert starts == sorted(starts)
            for s in r["spans"]:
                assert s["label"] in order
                assert r["text"][s["start"] : s["end"]] == s["text"]
                assert s["text"] == s["text"].strip() and s["text"]


def test_wnut17_spans_have_known_offsets() -> None:
    rows = {r["id"]: r for r in _jsonl(DATA / "wnut17_test.jsonl")}
    assert len(rows) == 150
    n_entities = sum(len(r["spans"]) for r in rows.values())
    assert 0 < n_entities
    first = rows["wnut17-test-0006"]
    assert first["spans"] == [
        {"start": 161, "end": 181, "text": "Colonel Rajesh Kalia", "label": "person"}
    ]


def test_shipped_subsets_are_disjoint_and_sized() -> None:
    sizes = {
        "sst2_dev.csv": 200,
        "sst2_test.csv": 200,
        "banking77_test.csv": 200,
        "tweet_sentiment_val.csv": 150,
        "tweet_sentiment_test.csv": 150,
    }
    for file, n in sizes.items():
        assert len(_csv(DATA / file)) == n, file
    assert len(_jsonl(DATA / "goemotions_test.jsonl")) == 150
    test_ids = {r["id"] for r in _csv(DATA / "sst2_test.csv")}
    sample = _csv(EXAMPLES / "sst2_sample.csv")
    gold = _csv(EXAMPLES / "sst2_sample_gold.csv")
    assert len(sample) == 100 and [r["id"] for r in sample] == [r["id"] for r in gold]
    assert not test_ids & {r["id"] for r in sample}
    assert sorted(r["label"] for r in gold).count("positive") == 50
    dev = {r["id"]: r for r in _csv(DATA / "sst2_dev.csv")}
    for r in _csv(SMALL / "sst2_dev_40.csv"):
        assert dev[r["id"]] == r  # small slices are subsets of the full ones


def test_sst2_text_is_detokenised() -> None:
    texts = [r["text"] for r in _csv(DATA / "sst2_dev.csv")]
    joined = "\n".join(texts)
    for artefact in (" 's ", " n't ", "-lrb-", "-rrb-", " , ", "``", "\\/"):
        assert artefact not in joined, artefact


# -- loader error messages ------------------------------------------------------------------------
VALID = """\
name: demo
task: classify
labels:
  - name: refund
  - name: card
  - name: transfer
"""


def _error(tmp_path: Path, text: str) -> tuple[str, OntologyError]:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OntologyError) as info:
        load_ontology(path)
    return str(path), info.value


def test_valid_baseline_loads() -> None:
    assert parse_ontology(VALID).label_names == ["refund", "card", "transfer"]


def test_duplicate_label_names_file_line_and_path(tmp_path: Path) -> None:
    path, err = _error(tmp_path, VALID + "  - name: refund\n")
    assert f"{path}:7 labels[3].name: duplicate label 'refund'" in err.problems
    assert f"{path}:7 labels[3].name: duplicate label 'refund'" in str(err)


def test_unknown_key_file_line_and_path(tmp_path: Path) -> None:
    text = VALID.replace("  - name: card\n", "  - name: card\n    colour: red\n")
    path, err = _error(tmp_path, text)
    assert err.problems == [f"{path}:6 labels[1].colour: unknown key 'colour'"]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path, err = _error(tmp_path, VALID + "lables: []\n")
    assert err.problems == [f"{path}:7 lables: unknown key 'lables'"]


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    path, err = _error(tmp_path, VALID + "review:\n  threshold: [0.5\n")
    assert str(err).startswith(f"{path}:")
    assert "invalid YAML" in str(err)
    line = int(str(err).split(":")[1])
    assert line >= 8  # the unclosed bracket is on line 8; the parser notices at or after it


def test_wrong_type_file_line_and_path(tmp_path: Path) -> None:
    path, err = _error(tmp_path, VALID + "review:\n  threshold: high\n")
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert problem.startswith(f"{path}:8 review.threshold: ")
    assert "number" in problem


def test_out_of_range_threshold_and_unknown_task(tmp_path: Path) -> None:
    text = VALID.replace("task: classify", "task: classfy") + "review:\n  threshold: 1.5\n"
    path, err = _error(tmp_path, text)
    joined = "\n".join(err.problems)
    assert f"{path}:2 task: " in joined
    assert f"{path}:8 review.threshold: " in joined
    assert "invalid ontology (2 problem(s))" in str(err)


def test_not_a_mapping(tmp_path: Path) -> None:
    path, err = _error(tmp_path, "- just\n- a list\n")
    assert str(err) == f"{path}: an ontology must be a YAML mapping (name:, task:, ...)"


def test_missing_ontology_name_gives_a_hint() -> None:
    with pytest.raises(OntologyError) as info:
        load_ontology("no_such_ontology_anywhere")
    assert "ontology not found: no_such_ontology_anywhere" in str(info.value)
    assert info.value.hint
