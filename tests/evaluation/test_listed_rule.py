"""The ``listed`` multi-label rule: fitted on dev items, written by ``eval --apply``,
applied by the engine to a provider's raw shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autolabel.engine.confidence import listed_decision
from autolabel.errors import OntologyError
from autolabel.evaluation.apply import patch_listed_rule_text
from autolabel.evaluation.gold import import_gold
from autolabel.evaluation.multilabel_rule import fit_listed_rule, raw_shares
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.loader import load_ontology, parse_ontology
from autolabel.store.database import Database

from .builders import cli, dataset_with_items, make_run

LABELS = ["joy", "anger", "neutral"]
ONTOLOGY = """# emotions, scored as the list's lead
name: emo
task: multi_label
labels:
  - name: joy
  - name: anger
  - name: neutral
multi_label:
  method: listed   # fitted below
review:
  threshold: 0.5
  audit_rate: 0.02
"""


def _shares(true: list[str], k: int) -> dict[str, float]:
    """A model that leads with "neutral" whatever the item says: the true labels come
    second, at shares that vary a little from item to item."""
    wiggle = 0.01 * (k % 5)
    raw = {"joy": 0.05, "anger": 0.05, "neutral": 0.55 + wiggle}
    for label in true:
        if label != "neutral":
            raw[label] = 0.3 - wiggle
    total = sum(raw.values())
    return {n: v / total for n, v in raw.items()}


def _items() -> list[tuple[str, list[str]]]:
    golds = [["joy"], ["anger"], ["neutral"], ["joy", "anger"], ["joy"], ["anger"]] * 5
    return [(f"i{k:02d}", gold) for k, gold in enumerate(golds)]


def test_fit_corrects_a_favourite_label() -> None:
    items = _items()
    shares = [_shares(gold, k) for k, (_, gold) in enumerate(items)]
    golds = [gold for _, gold in items]
    rule = fit_listed_rule(LABELS, shares, golds)
    # The likeliest label alone is "neutral" nearly everywhere: macro-F1 well below 1.
    plain = fit_listed_rule(LABELS, shares, golds)
    assert rule == plain  # deterministic
    assert rule.power > 0 and rule.priors["neutral"] > rule.priors["joy"]
    assert rule.macro_f1 > 0.9 and rule.n_items == len(items)
    ontology = parse_ontology(ONTOLOGY, source="emo.yaml").model_copy(
        update={
            "multi_label": parse_ontology(ONTOLOGY, source="emo.yaml").multi_label.model_copy(  # type: ignore[union-attr]
                update={"priors": rule.priors, "relative_threshold": rule.relative_threshold}
            )
        }
    )
    right = sum(
        sorted(listed_decision(ontology, s).label) == sorted(g)
        for s, g in zip(shares, golds, strict=True)
    )
    assert right >= 0.9 * len(items)
    # Without the correction the same shares give "neutral" for every item.
    bare = parse_ontology(ONTOLOGY, source="emo.yaml")
    assert {tuple(listed_decision(bare, s).label) for s in shares} == {("neutral",)}


def test_decision_reads_shares_through_the_rule() -> None:
    ontology = parse_ontology(
        ONTOLOGY.replace(
            "  method: listed   # fitted below\n",
            "  method: listed\n  relative_threshold: 0.5\n  priors: {neutral: 5.0}\n",
        ),
        source="emo.yaml",
    )
    scored = listed_decision(ontology, {"joy": 0.3, "anger": 0.1, "neutral": 0.6})
    # neutral 0.6 / 5 = 0.12 < half of joy's 0.3: joy alone, holding 0.3 / 0.52 of the mass
    assert scored.label == ["joy"] and scored.method == "listed_shares"
    assert scored.distribution["joy"] == pytest.approx(0.3 / 0.52)
    assert scored.confidence == pytest.approx(0.3 / 0.52)
    # raw_shares undoes the correction exactly
    assert raw_shares(scored.distribution, {"neutral": 5.0}, LABELS) == pytest.approx(
        {"joy": 0.3, "anger": 0.1, "neutral": 0.6}
    )


def test_rule_is_validated_and_not_part_of_the_prompt() -> None:
    with pytest.raises(OntologyError, match="unknown label 'fear'"):
        parse_ontology(
            ONTOLOGY.replace("# fitted below", "\n  priors: {fear: 0.2}"), source="emo.yaml"
        )
    classify = "name: c\ntask: classify\nlabels: [{name: a}, {name: b}]\nmulti_label: {}\n"
    with pytest.raises(OntologyError, match="has no multi_label scoring"):
        parse_ontology(classify, source="c.yaml")
    with pytest.raises(OntologyError, match="positive"):
        parse_ontology(
            ONTOLOGY.replace("# fitted below", "\n  priors: {joy: 0}"), source="emo.yaml"
        )
    fitted = parse_ontology(
        ONTOLOGY.replace("# fitted below", "\n  relative_threshold: 0.4\n  priors: {joy: 0.2}"),
        source="emo.yaml",
    )
    plain = parse_ontology(ONTOLOGY, source="emo.yaml")
    questions = parse_ontology(ONTOLOGY.replace("listed", "questions"), source="emo.yaml")
    hash_ = PromptCompiler(plain).prompt_hash
    assert PromptCompiler(fitted).prompt_hash == hash_  # the rule acts on answers only
    assert PromptCompiler(questions).prompt_hash != hash_
    assert PromptCompiler(plain).compile({"text": "x"}).answer_prefix == '{"labels": ["'
    assert PromptCompiler(questions).compile({"text": "x"}).answer_prefix == ""
    # An ontology without the section dumps as it always did (hashes, run keys).
    assert "multi_label" not in questions.model_copy(update={"multi_label": None}).model_dump()


def test_patch_replaces_only_the_block() -> None:
    rule = fit_listed_rule(
        LABELS,
        [_shares(g, k) for k, (_, g) in enumerate(_items())],
        [g for _, g in _items()],
    )
    once = patch_listed_rule_text(ONTOLOGY, rule, "fitted on 30 items")
    twice = patch_listed_rule_text(once, rule, "fitted on 30 items")
    assert once == twice  # the old block is replaced, not stacked
    assert once.startswith("# emotions, scored as the list's lead\n")
    assert once.endswith("review:\n  threshold: 0.5\n  audit_rate: 0.02\n")
    parsed = parse_ontology(once, source="emo.yaml")
    assert parsed.multi_label is not None
    assert parsed.multi_label.priors == pytest.approx(rule.priors)
    assert parsed.multi_label.relative_threshold == rule.relative_threshold
    assert "    neutral: " in once  # plain names stay bare; odd ones are quoted
    odd = fit_listed_rule(["yes", "a b"], [{"yes": 0.7, "a b": 0.3}] * 2, [["yes"], ["a b"]])
    quoted = patch_listed_rule_text(ONTOLOGY, odd)
    if odd.priors:
        assert '"yes": ' in quoted and '"a b": ' in quoted
    # Appended when the file has no block yet.
    bare = ONTOLOGY.replace("multi_label:\n  method: listed   # fitted below\n", "")
    assert parse_ontology(patch_listed_rule_text(bare, rule), source="e").listed_scoring


def test_cli_apply_fits_the_rule_then_the_threshold(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(sqlite_url)
    items = _items()
    dataset_with_items(db, "emo", {ext: f"text {ext}" for ext, _ in items})
    gold = tmp_path / "emo.jsonl"
    gold.write_text(
        "".join(json.dumps({"id": e, "text": f"text {e}", "labels": g}) + "\n" for e, g in items),
        encoding="utf-8",
    )
    path = tmp_path / "emo.yaml"
    path.write_text(ONTOLOGY, encoding="utf-8")
    ontology = load_ontology(path)
    import_gold(db, ontology, gold, id_column="id", label_column="labels")

    def labelled(ontology, name: str) -> int:  # type: ignore[no-untyped-def]
        """What the engine stores for these raw shares under the ontology's rule."""
        scored = {e: listed_decision(ontology, _shares(g, k)) for k, (e, g) in enumerate(items)}
        return make_run(
            db,
            ontology,
            "emo",
            {e: (s.label, s.confidence) for e, s in scored.items()},
            distributions={e: s.distribution for e, s in scored.items()},
            method="listed_shares",
            name=name,
        )

    args = ["--db", sqlite_url, "--gold", "emo", "--apply", "--ontology", str(path)]
    # Answers without listed shares (an endpoint's, say): nothing to fit, file untouched.
    other = make_run(db, ontology, "emo", {e: (g, 0.9) for e, g in items}, name="endpoint")
    assert cli(["eval", str(other), *args]) == 2
    assert "no item of the run has listed label shares" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == ONTOLOGY
    first = labelled(ontology, "dev-1")
    assert cli(["eval", str(first), *args]) == 0
    out = capsys.readouterr().out
    assert "wrote multi_label" in out and "review.threshold left as it is" in out
    fitted = load_ontology(path)
    assert fitted.multi_label is not None and fitted.multi_label.priors["neutral"] > 0.3
    assert fitted.review.threshold == 0.5  # not chosen on the old rule's confidences
    assert path.read_text(encoding="utf-8").startswith("# emotions")
    # The same answers under the fitted rule: the fit is unchanged, so the threshold goes in.
    second = labelled(fitted, "dev-2")
    assert cli(["eval", str(second), *args, "--target-precision", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "wrote review.threshold" in out and "left as it is" not in out
    again = load_ontology(path)
    assert again.multi_label == fitted.multi_label and again.review.threshold != 0.5
