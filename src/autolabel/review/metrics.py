"""Inter-annotator agreement statistics: pure functions over hashable label values.

Values are compared for equality only (nominal data). Callers turn canonical labels
into hashable values first; for multi_label we treat each whole label *set* as one
nominal value (``["anger","joy"]`` and ``["joy"]`` simply differ), the stricter and
simpler of the usual choices; spans and fields likewise compare as whole answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import permutations


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Share of items two raters labelled the same."""
    _same_length(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's κ for two raters over the same items: (p_o - p_e) / (1 - p_e).

    When both raters use a single identical category throughout (p_e = 1) agreement
    is perfect and we return 1.0 rather than dividing by zero.
    """
    _same_length(a, b)
    n = len(a)
    p_o = percent_agreement(a, b)
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[c] * cb[c] for c in ca) / (n * n)
    if p_e == 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float:
    """Fleiss' κ from an items × categories table of how many raters chose each
    category; every item must have the same number of ratings (at least 2)."""
    if not counts:
        raise ValueError("Fleiss' kappa needs at least one item")
    n = sum(counts[0])
    if n < 2 or any(sum(row) != n for row in counts):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    items = len(counts)
    categories = len(counts[0])
    p_j = [sum(row[j] for row in counts) / (items * n) for j in range(categories)]
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts]
    p_bar = sum(p_i) / items
    p_e = sum(p * p for p in p_j)
    if p_e == 1.0:
        return 1.0
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_table(ratings: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """Per-item rating lists → the counts table ``fleiss_kappa`` takes."""
    categories = sorted({v for row in ratings for v in row}, key=repr)
    return [[Counter(row)[c] for c in categories] for row in ratings]


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's α for nominal data; ``units`` are per-item value lists with
    ``None`` for a missing rating. Units with fewer than two values are not pairable
    and are ignored (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability")."""
    coincidence: Counter[tuple[Hashable, Hashable]] = Counter()
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for c, k in permutations(values, 2):
            coincidence[(c, k)] += 1.0 / (m - 1)
    n_c: Counter[Hashable] = Counter()
    for (c, _k), w in coincidence.items():
        n_c[c] += w
    n = sum(n_c.values())
    if n <= 1:
        raise ValueError("Krippendorff's alpha needs at least one unit with two ratings")
    observed = sum(w for (c, k), w in coincidence.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if expected == 0:
        return 1.0  # a single value used throughout: no disagreement possible
    return 1.0 - (n - 1) * observed / expected


def _same_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> None:
    if len(a) != len(b) or not a:
        raise ValueError("agreement needs two equally long, non-empty rating lists")
