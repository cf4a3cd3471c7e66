"""ECE, Brier, AUROC, coverage and threshold selection against hand-computed values."""

from __future__ import annotations

import pytest

from autolabel.evaluation import calibration as cal


def test_ece_equal_mass_bins() -> None:
    # sorted: [0.6, 0.6 | 0.9, 0.9]; bin 1 acc 1 vs .6, bin 2 acc .5 vs .9 → .5·.4 + .5·.4
    conf, ok = [0.9, 0.9, 0.6, 0.6], [True, False, True, True]
    assert cal.expected_calibration_error(conf, ok, n_bins=2) == pytest.approx(0.4)
    bins = cal.reliability_bins(conf, ok, n_bins=2)
    assert [(b.count, b.mean_confidence, b.accuracy) for b in bins] == [
        (2, pytest.approx(0.6), 1.0),
        (2, pytest.approx(0.9), 0.5),
    ]
    assert cal.expected_calibration_error([], []) == 0.0


def test_ece_perfectly_calibrated_is_zero() -> None:
    conf = [0.5, 0.5, 1.0, 1.0]
    assert cal.expected_calibration_error(conf, [True, False, True, True], n_bins=2) == 0.0


def test_brier_binary_and_multiclass() -> None:
    # (.1² + .9² + .4² + .4²) / 4
    assert cal.brier_binary([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(1.14 / 4)
    dists = [{"a": 0.7, "b": 0.2, "c": 0.1}, {"a": 0.5, "b": 0.5}]
    # item 1: .3² + .2² + .1² = .14; item 2: .5² + .5² + 0 = .5
    assert cal.brier_multiclass(dists, ["a", "b"], ["a", "b", "c"]) == pytest.approx(0.32)


def test_auroc_with_ties_and_undefined() -> None:
    # pairs (right, wrong): .9>.8, .9>.3, .8=.8 (½), .8>.3 → 3.5 / 4
    assert cal.auroc([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert cal.auroc([0.2, 0.9], [1, 0]) == 0.0
    assert cal.auroc([0.5, 0.6], [True, True]) is None


def test_coverage_curve_groups_ties_and_counts_failed_items() -> None:
    curve = cal.coverage_curve([0.9, 0.8, 0.8], [True, True, False], n_total=4)
    assert [(p.threshold, p.n_accepted) for p in curve] == [(0.9, 1), (0.8, 3)]
    assert curve[1].coverage == pytest.approx(3 / 4)
    assert curve[1].accuracy == pytest.approx(2 / 3)


CONF = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6]
OK = [True, True, True, False, True, False]


def test_recommend_threshold_takes_the_most_coverage_meeting_the_target() -> None:
    # cumulative accuracy from the top: 1, 1, 1, .75, .8, .667
    choice = cal.recommend_threshold(CONF, OK, 0.78)
    assert choice is not None
    # 0.8 misses (0.75) but 0.7 reaches 0.8: accuracy is not monotone in the threshold.
    assert choice.threshold == 0.7 and choice.n_accepted == 5
    assert choice.coverage == pytest.approx(5 / 6)
    assert cal.recommend_threshold(CONF, OK, 0.9).threshold == 0.85  # type: ignore[union-attr]
    assert cal.recommend_threshold(CONF, OK, 1.0).threshold == 0.85  # type: ignore[union-attr]
    assert cal.recommend_threshold([0.9], [False], 0.5) is None
    assert cal.recommend_threshold(CONF, OK, 0.78, min_accepted=6) is None


def test_threshold_chosen_on_one_split_reported_on_another() -> None:
    choice = cal.recommend_threshold(CONF, OK, 0.78)
    assert choice is not None
    held_conf = [0.9, 0.75, 0.5, None]  # the last item failed: never accepted
    held_ok = [True, False, True, False]
    rep = cal.evaluate_threshold(choice.threshold, held_conf, held_ok, target_precision=0.78)
    assert (rep.n_items, rep.n_accepted) == (4, 2)
    assert rep.coverage == 0.5 and rep.accuracy == 0.5
    assert (rep.ci_low, rep.ci_high) == (
        pytest.approx(0.0945, abs=1e-3),
        pytest.approx(0.9055, abs=1e-3),
    )
    text = rep.sentence()
    assert "labels 50.0% of items at 50.0% accuracy" in text and "held-out" in text


def test_wilson_interval_textbook() -> None:
    lo, hi = cal.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert cal.wilson_interval(0, 0) == (0.0, 1.0)


def test_summarize_picks_multiclass_brier_when_distributions_exist() -> None:
    s = cal.summarize(
        [0.7, 0.5],
        [True, True],
        distributions=[{"a": 0.7, "b": 0.3}, {"a": 0.5, "b": 0.5}],
        gold=["a", "a"],
        labels=["a", "b"],
    )
    assert s.brier_kind == "multiclass"
    assert s.brier == pytest.approx((0.09 + 0.09 + 0.25 + 0.25) / 2)
    assert cal.summarize([0.7], [True]).brier_kind == "binary"


def test_confidence_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        cal.expected_calibration_error([1.2], [True])
