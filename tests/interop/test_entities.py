"""spaCy DocBin and CoNLL/BIO: exports spaCy and our CoNLL reader read back identically."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.errors import ConfigError, InputError
from autolabel.evaluation.gold import read_conll
from autolabel.interop import entities, records
from autolabel.store.database import Database
from autolabel.store.tables import GoldLabel, GoldSet
from tests.interop.builders import NER_LABELS, NER_TEXTS, ner_run
from tests.review.factories import make_dataset, make_run, ontology

spacy = pytest.importorskip("spacy")


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def test_docbin_round_trip(db: Database, tmp_path: Path) -> None:
    ont, run_id = ner_run(db)
    run = records.load_run(db, run_id)
    recs = records.run_records(db, run)
    out = tmp_path / "ner.spacy"
    result = entities.export_docbin(ont, recs, out)
    assert (result.docs, result.spans, result.problems) == (3, 5, [])
    from spacy.tokens import DocBin

    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == NER_TEXTS
    got = [[(e.start_char, e.end_char, e.text, e.label_) for e in d.ents] for d in docs]
    want = [[(s["start"], s["end"], s["text"], s["label"]) for s in spans] for spans in NER_LABELS]
    assert got == want
    back = entities.read_docbin(out, ont)
    assert [(r.external_id, r.label) for r in back] == [
        (f"ex{i}", spans) for i, spans in enumerate(NER_LABELS)
    ]
    gold, n = records.store_as_gold(db, ont, back, name="ner-gold", dataset="ner-ds", source="x")
    with db.session() as s:
        stored = s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == gold.id)).all()
    assert n == 3 and sorted(len(g.label) for g in stored) == [0, 2, 3]


def test_misaligned_spans_are_reported_and_nothing_written(db: Database, tmp_path: Path) -> None:
    ont = ontology({"name": "ner", "task": "spans", "labels": [{"name": "LOC"}, {"name": "PER"}]})
    ids = make_dataset(db, ["Visit Londonderry now."], name="mis")
    bad = [{"start": 6, "end": 12, "text": "London", "label": "LOC"}]  # inside a token
    run_id = make_run(db, ids, [bad], [0.9], ont=ont)
    run = records.load_run(db, run_id)
    recs = records.run_records(db, run)
    out = tmp_path / "mis.spacy"
    with pytest.raises(InputError) as info:
        entities.export_docbin(ont, recs, out)
    message = str(info.value)
    assert "record 'ex0' span [6, 12) 'London' LOC: not on token boundaries" in message
    assert "'Londonderry'" in message and "--misaligned" in message
    assert not out.exists()
    skipped = entities.export_docbin(ont, recs, out, misaligned="skip")
    assert skipped.spans == 0 and len(skipped.problems) == 1
    expanded = entities.export_docbin(ont, recs, tmp_path / "exp.spacy", misaligned="expand")
    assert expanded.spans == 1
    assert entities.read_docbin(tmp_path / "exp.spacy", ont)[0].label[0]["text"] == "Londonderry"
    with pytest.raises(InputError, match="not on token boundaries"):
        entities.export_conll(ont, recs, tmp_path / "mis.conll")
    assert not (tmp_path / "mis.conll").exists()


def test_docbin_with_unknown_entity_types_names_file_and_doc(tmp_path: Path) -> None:
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    doc = nlp.make_doc("Ada met Acme")
    doc.ents = [doc.char_span(0, 3, label="PERSON")]
    DocBin(docs=[nlp.make_doc("fine"), doc]).to_disk(tmp_path / "other.spacy")
    ont = ontology({"name": "ner", "task": "spans", "labels": [{"name": "PER"}]})
    with pytest.raises(InputError, match=r"other.spacy doc 2: entity type\(s\) \['PERSON'\]"):
        entities.read_docbin(tmp_path / "other.spacy", ont)
    (tmp_path / "junk.spacy").write_bytes(b"not a docbin")
    with pytest.raises(InputError, match="not a readable spaCy DocBin"):
        entities.read_docbin(tmp_path / "junk.spacy", ont)


def test_conll_round_trip_through_the_gold_reader(db: Database, tmp_path: Path) -> None:
    ont, run_id = ner_run(db)
    recs = records.run_records(db, records.load_run(db, run_id))
    out = tmp_path / "ner.conll"
    result = entities.export_conll(ont, recs, out)
    assert result.problems == [] and result.spans == 5
    lines = out.read_text().splitlines()
    assert lines[:3] == ["Ada B-PER", "Lovelace I-PER", "lived O"]
    back = read_conll(out, ont)
    # CoNLL keeps tokens, not whitespace: compare the entity texts and types.
    got = [[(s["text"], s["label"]) for s in row.label] for row in back]
    assert got == [[(s["text"], s["label"]) for s in spans] for spans in NER_LABELS]


def test_entity_exports_need_a_spans_task(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="entity formats hold spans"):
        entities.export_conll(ontology(), [], tmp_path / "x.conll")
    with db.session() as s:
        assert s.exec(select(GoldSet)).all() == []
