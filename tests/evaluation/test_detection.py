"""Box mAP through pycocotools' COCOeval, checked against hand-computed cases.

COCO's AP is the mean over 101 recall points (0, 0.01, ..., 1) of the interpolated
precision (the best precision at that recall or beyond); mAP@[.5:.95] also averages
over the ten IoU thresholds 0.50, 0.55, ..., 0.95.
"""

from __future__ import annotations

import pytest

from autolabel.evaluation.detection import box_answers_match, detection_metrics

pytest.importorskip("pycocotools")


def _ans(*objects: tuple[str, list[float], float | None]) -> dict:
    return {"objects": [{"label": lb, "box": box, "confidence": c} for lb, box, c in objects]}


A = [10.0, 10.0, 20.0, 20.0]
B = [50.0, 40.0, 10.0, 30.0]
FAR = [200.0, 200.0, 10.0, 10.0]


def _ap(metrics, label: str):
    return next(c for c in metrics.per_class if c.label == label)


def test_perfect_boxes_score_one_and_classes_without_gold_have_no_ap() -> None:
    gold = [_ans(("cat", A, None)), _ans(("dog", B, None), ("cat", FAR, None))]
    pred = [_ans(("cat", A, 0.9)), _ans(("dog", B, 0.7), ("cat", FAR, 0.6))]
    m = detection_metrics(gold, pred, ["cat", "dog", "bird"])
    assert m.map50 == pytest.approx(1.0) and m.map == pytest.approx(1.0)
    assert _ap(m, "bird").ap is None and _ap(m, "bird").n_gold == 0
    assert (_ap(m, "cat").n_gold, _ap(m, "cat").n_pred) == (2, 2)
    assert m.item_accuracy == 1.0


def test_a_false_positive_below_the_true_one_halves_recall_not_precision() -> None:
    # Ranked: TP (0.9), FP (0.8). Precision 1 up to recall 0.5, recall 1 never reached:
    # 51 of the 101 recall points have precision 1 -> AP = 51/101.
    gold = [_ans(("cat", A, None)), _ans(("cat", B, None))]
    pred = [_ans(("cat", A, 0.9)), _ans(("cat", FAR, 0.8))]
    m = detection_metrics(gold, pred, ["cat"])
    assert _ap(m, "cat").ap50 == pytest.approx(51 / 101)
    assert m.item_accuracy == 0.5


def test_a_false_positive_ranked_first_costs_precision() -> None:
    # Ranked: FP (0.9), TP (0.8): precision 0.5 at recall 0.5 -> AP = 51 * 0.5 / 101.
    gold = [_ans(("cat", A, None)), _ans(("cat", B, None))]
    pred = [_ans(("cat", A, 0.8)), _ans(("cat", FAR, 0.9))]
    assert _ap(detection_metrics(gold, pred, ["cat"]), "cat").ap50 == pytest.approx(25.5 / 101)


def test_a_loose_box_counts_only_at_the_iou_thresholds_it_reaches() -> None:
    # IoU([0,0,10,10], [0,0,10,6.4]) = 0.64: a hit at 0.50, 0.55, 0.60, a miss at 0.65+.
    gold = [_ans(("cat", [0.0, 0.0, 10.0, 10.0], None))]
    pred = [_ans(("cat", [0.0, 0.0, 10.0, 6.4], 0.9))]
    m = detection_metrics(gold, pred, ["cat"])
    assert m.map50 == pytest.approx(1.0)
    assert m.map == pytest.approx(3 / 10)


def test_wrong_class_or_missing_answers_find_nothing() -> None:
    gold = [_ans(("cat", A, None)), _ans(("dog", B, None))]
    pred = [_ans(("dog", A, 0.9)), None]  # the second item failed
    m = detection_metrics(gold, pred, ["cat", "dog"])
    assert _ap(m, "cat").ap50 == 0.0 and _ap(m, "dog").ap50 == 0.0
    assert m.map == 0.0 and m.n_failed == 1
    nothing = detection_metrics(gold, [_ans(), _ans()], ["cat", "dog"])
    assert nothing.map50 == 0.0 and nothing.item_accuracy == 0.0


def test_item_match_is_one_to_one() -> None:
    gold = _ans(("cat", A, None), ("cat", B, None))
    assert box_answers_match(gold, _ans(("cat", B, 0.5), ("cat", A, 0.5)))
    assert not box_answers_match(gold, _ans(("cat", A, 0.5), ("cat", A, 0.5)))
    assert not box_answers_match(gold, _ans(("cat", A, 0.5)))
