"""Metrics against small cases computed by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import pytest

from autolabel.evaluation.metrics import (
    FAILED,
    classify_metrics,
    field_metrics,
    is_correct,
    multilabel_metrics,
    span_metrics,
)


def test_classify_hand_case_with_failure_and_never_predicted_label() -> None:
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", None, "a"]
    res = classify_metrics(gold, pred, ["a", "b", "c"])
    assert res.n == 5 and res.n_failed == 1
    assert res.accuracy == pytest.approx(2 / 5)
    rows = {r.label: r for r in res.per_label}
    # a: tp 1 of 2 predicted, 2 gold; b the same; c never predicted.
    assert (rows["a"].precision, rows["a"].recall, rows["a"].f1) == pytest.approx((0.5, 0.5, 0.5))
    assert (rows["b"].support, rows["b"].predicted, rows["b"].tp) == (2, 2, 1)
    assert (rows["c"].precision, rows["c"].recall, rows["c"].f1) == (0.0, 0.0, 0.0)
    assert any("'c' was never predicted" in n for n in res.notes)
    assert res.macro.f1 == pytest.approx(1 / 3)
    assert res.macro.precision == pytest.approx(1 / 3)
    # micro: P = 2 correct / 4 predicted, R = 2 / 5, F1 = 2·.5·.4/.9
    assert res.micro.precision == pytest.approx(0.5)
    assert res.micro.recall == pytest.approx(0.4)
    assert res.micro.f1 == pytest.approx(0.4 / 0.9)
    assert res.weighted.f1 == pytest.approx((0.5 * 2 + 0.5 * 2 + 0) / 5)
    assert res.columns == ["a", "b", "c", FAILED]
    assert res.confusion == [[1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]]
    assert res.top_confusions() == [("a", "b", 1), ("b", FAILED, 1), ("c", "a", 1)]


def test_classify_all_failed() -> None:
    res = classify_metrics(["a", "b"], [None, None], ["a", "b"])
    assert res.n_failed == 2
    assert res.accuracy == 0.0
    assert res.macro.f1 == 0.0 and res.micro.precision == 0.0
    assert any("every item failed" in n for n in res.notes)
    assert res.confusion == [[0, 0, 1], [0, 0, 1]]


def test_classify_no_items() -> None:
    res = classify_metrics([], [], ["a", "b"])
    assert res.n == 0 and res.accuracy == 0.0 and res.macro.f1 == 0.0
    assert any("no items" in n for n in res.notes)


def test_classify_perfect_and_macro_ignores_absent_labels() -> None:
    res = classify_metrics(["a", "b"], ["a", "b"], ["a", "b", "c"])
    assert res.accuracy == 1.0
    # 'c' appears nowhere: listed with zeros, not averaged in.
    assert res.macro.f1 == 1.0
    assert [r.label for r in res.per_label] == ["a", "b", "c"]


def test_classify_label_outside_ontology_is_appended() -> None:
    res = classify_metrics(["a", "x"], ["a", "a"], ["a", "b"])
    assert res.labels == ["a", "b", "x"]
    rows = {r.label: r for r in res.per_label}
    assert rows["a"].precision == 0.5 and rows["x"].recall == 0.0


def test_classify_length_mismatch() -> None:
    with pytest.raises(ValueError):
        classify_metrics(["a"], [], ["a"])


def test_multilabel_hand_case() -> None:
    gold = [["a", "b"], ["a"], [], ["b"]]
    pred = [["a"], ["a", "c"], None, ["b"]]
    res = multilabel_metrics(gold, pred, ["a", "b", "c"])
    assert res.n_failed == 1
    assert res.subset_accuracy == pytest.approx(1 / 4)
    # errors: item0 {b}, item1 {c}, item2 failed = all 3 labels, item3 none → 5 / 12
    assert res.hamming_loss == pytest.approx(5 / 12)
    rows = {r.label: r for r in res.per_label}
    assert (rows["a"].precision, rows["a"].recall) == (1.0, 1.0)
    assert rows["b"].precision == 1.0 and rows["b"].recall == 0.5
    assert rows["b"].f1 == pytest.approx(2 / 3)
    assert rows["c"].f1 == 0.0
    assert any("'c' has no gold support" in n for n in res.notes)
    assert res.micro.f1 == pytest.approx(0.75)  # tp 3, predicted 4, gold 4
    assert res.macro.f1 == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_multilabel_empty_predictions_are_valid_answers() -> None:
    res = multilabel_metrics([[], ["a"]], [[], []], ["a", "b"])
    assert res.subset_accuracy == 0.5
    assert res.hamming_loss == pytest.approx(1 / 4)
    assert res.micro.precision == 0.0  # nothing predicted: 0 by convention


def _s(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label, "text": "x" * (end - start)}


def test_spans_exact_partial_nested_empty_and_failed() -> None:
    gold = [
        [_s(0, 5, "PER"), _s(10, 15, "LOC")],
        [_s(0, 3, "ORG")],
        [_s(0, 4, "PER")],
    ]
    pred = [
        [_s(0, 5, "PER"), _s(10, 14, "LOC"), _s(11, 13, "LOC")],  # nested LOC predictions
        [],  # empty prediction
        None,  # failed
    ]
    res = span_metrics(gold, pred, ["PER", "LOC", "ORG"])
    assert res.n_failed == 1 and res.item_accuracy == 0.0
    # exact: tp 1, predicted 3, gold 4
    assert res.exact.precision == pytest.approx(1 / 3)
    assert res.exact.recall == pytest.approx(1 / 4)
    assert res.exact.f1 == pytest.approx(2 / 7)
    # partial: one-to-one, so the nested (11,13) cannot match (10,15) a second time: tp 2
    assert res.partial.precision == pytest.approx(2 / 3)
    assert res.partial.recall == pytest.approx(1 / 2)
    assert res.partial.f1 == pytest.approx(4 / 7)
    rows = {r.label: r for r in res.per_type}
    assert (rows["PER"].precision, rows["PER"].recall) == (1.0, 0.5)
    assert rows["LOC"].tp == 0 and rows["LOC"].predicted == 2
    assert rows["ORG"].predicted == 0 and rows["ORG"].precision == 0.0
    partial_rows = {r.label: r for r in res.per_type_partial}
    assert partial_rows["LOC"].tp == 1


def test_spans_partial_needs_same_type_and_overlap() -> None:
    res = span_metrics([[_s(0, 5, "PER")]], [[_s(0, 5, "LOC"), _s(5, 9, "PER")]])
    assert res.exact.f1 == 0.0
    assert res.partial.f1 == 0.0  # touching (5..9) is not overlapping; LOC is another type


def test_spans_nothing_predicted_and_nothing_to_find() -> None:
    res = span_metrics([[], []], [[], []], ["PER"])
    assert res.item_accuracy == 1.0
    assert res.exact.f1 == 0.0  # 0/0 → 0 by convention, item accuracy carries the credit
    assert any("no spans were predicted" in n for n in res.notes)


def test_fields_and_is_correct() -> None:
    res = field_metrics(
        [{"price": 1.5, "currency": "EUR"}, {"price": 2, "currency": "USD"}],
        [{"price": 1.5, "currency": "eur "}, None],
        ["price", "currency"],
    )
    assert res.accuracy == 0.5 and res.per_field == {"price": 0.5, "currency": 0.5}
    assert is_correct("classify", "a", "a") and not is_correct("classify", "a", None)
    assert is_correct("multi_label", ["a", "b"], ["b", "a"])
    assert is_correct("spans", [_s(0, 1, "X")], [{"start": 0, "end": 1, "label": "X"}])
