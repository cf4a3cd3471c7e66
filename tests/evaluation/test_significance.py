"""Bootstrap intervals and paired tests."""

from __future__ import annotations

import pytest

from autolabel.evaluation import significance as sig


def test_mcnemar_textbook_chi2_with_continuity_correction() -> None:
    # Discordant counts b=121, c=59 (the Wikipedia example): χ²_cc = (|121−59|−1)² / 180
    a = [True] * 121 + [False] * 59 + [True] * 50
    b = [False] * 121 + [True] * 59 + [True] * 50
    res = sig.mcnemar(a, b)
    assert res.method == "chi2_cc" and (res.a_only, res.b_only) == (121, 59)
    assert res.statistic == pytest.approx(61**2 / 180)
    assert res.p_value == pytest.approx(5.45e-6, rel=0.02)


def test_mcnemar_exact_small_counts() -> None:
    # b=1, c=6: p = 2 · (C(7,0) + C(7,1)) / 2⁷ = 0.125
    a = [True] + [False] * 6 + [True] * 3
    b = [False] + [True] * 6 + [True] * 3
    res = sig.mcnemar(a, b)
    assert res.method == "exact" and res.p_value == pytest.approx(0.125)
    assert sig.mcnemar([True, False], [True, False]).p_value == 1.0


def test_bootstrap_accuracy_is_seeded_and_brackets_the_estimate() -> None:
    correct = [True] * 70 + [False] * 30
    one = sig.bootstrap_accuracy(correct, seed=3)
    two = sig.bootstrap_accuracy(correct, seed=3)
    assert one == two
    assert one.estimate == pytest.approx(0.7)
    assert 0.58 < one.low < 0.7 < one.high < 0.8


def test_macro_f1_and_its_bootstrap() -> None:
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", None, "a"]
    assert sig.macro_f1(gold, pred) == pytest.approx(1 / 3)  # same as metrics.py
    ci = sig.bootstrap_macro_f1(gold * 10, pred * 10, n_resamples=200)
    assert ci.estimate == pytest.approx(1 / 3)
    assert ci.low <= ci.estimate <= ci.high


def test_paired_bootstrap_detects_a_clear_difference_and_not_a_null_one() -> None:
    gold = ["a", "b"] * 50
    good = list(gold)
    bad = ["a"] * 100
    res = sig.paired_bootstrap_f1(gold, good, bad, n_resamples=300)
    assert res.difference > 0.5 and res.low > 0
    assert res.p_value == pytest.approx(2 / 301)  # never 0: (0 + 1) / (300 + 1), two-sided
    same = sig.paired_bootstrap_f1(gold, good, good, n_resamples=100)
    assert same.difference == 0.0 and same.p_value == 1.0
