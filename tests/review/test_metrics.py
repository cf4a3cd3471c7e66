"""Agreement statistics against textbook worked examples and hand-computed cases."""

from __future__ import annotations

import pytest

from autolabel.review.metrics import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    krippendorff_alpha_nominal,
    percent_agreement,
)


def test_cohen_kappa_wikipedia_example() -> None:
    # Wikipedia "Cohen's kappa": 50 proposals; both yes 20, A yes/B no 5, A no/B yes 10,
    # both no 15 → p_o = 0.7, p_e = 0.5, κ = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert percent_agreement(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edge_cases() -> None:
    assert cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0  # p_e = 1
    # hand-computed: p_o = 3/4, p_e = (2*1 + 2*3)/16 = 0.5 → κ = 0.25 / 0.5 = 0.5
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.5)
    # systematic disagreement: p_o = 0, p_e = 0.5 → -1
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories → 0.210
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_table_and_perfect_agreement() -> None:
    ratings = [["a", "a", "b"], ["b", "b", "b"]]
    assert fleiss_table(ratings) == [[2, 1], [0, 3]]
    assert fleiss_kappa(fleiss_table([["a", "a"], ["b", "b"]])) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 1], [2, 1]])


def test_krippendorff_alpha_nominal_with_missing_values() -> None:
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", section C:
    # 4 observers, 12 units, nominal, with missing data → α = 0.743
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3]
    c = [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]
    units = [list(u) for u in zip(a, b, c, d, strict=True)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_hand_computed() -> None:
    # two coders, units (a,a), (a,b): o_aa = 2, o_ab = o_ba = 1; n_a = 3, n_b = 1, n = 4
    # α = 1 - (n-1) * 2 / (2 * 3 * 1) = 0
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "b"]]) == pytest.approx(0.0)
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["c", None]]) == 1.0
