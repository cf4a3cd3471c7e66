"""Quality metrics of predictions against gold labels (pure functions, no I/O).

Conventions, chosen once and documented here because every report depends on them:

- **Failed items count as wrong.** A failed prediction is ``None``. It is a false
  negative for its gold label(s) and never a false positive; ``n_failed`` says how many.
  For Hamming loss a failed multi-label item counts every label as an error.
- **0/0 is 0.** Precision of a label that is never predicted is 0 (not undefined), recall
  of a label without gold support is 0, and F1 is 0 when P + R = 0. Each such case adds a
  line to ``notes`` so a report can say why a number is 0.
- **Macro averages** run over the labels that occur in the gold labels or predictions
  (as scikit-learn does by default). Labels of the ontology that occur in neither are
  listed in the per-label table with zeros but do not drag the average down.
- **Micro P/R (single label):** P = correct / items with a prediction, R = correct / all
  items; they equal accuracy when nothing failed.
- **Spans** match exactly (same start, end and type) or partially (overlapping, same
  type). Partial matching is one-to-one (each gold span is matched at most once, greedy by
  largest overlap), so nested or overlapping predictions cannot double count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

FAILED = "<failed>"


@dataclass
class LabelScore:
    """One row of a per-label table."""

    label: str
    support: int  # gold occurrences
    predicted: int  # predicted occurrences
    tp: int
    precision: float
    recall: float
    f1: float


@dataclass
class Averages:
    precision: float
    recall: float
    f1: float


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _label_rows(
    labels: list[str],
    tp: Counter[str],
    n_pred: Counter[str],
    n_gold: Counter[str],
    notes: list[str],
) -> list[LabelScore]:
    rows = []
    for label in labels:
        p, r, f = _prf(tp[label], n_pred[label], n_gold[label])
        if n_pred[label] == 0 and n_gold[label] > 0:
            notes.append(f"'{label}' was never predicted: its precision is 0 by convention")
        if n_gold[label] == 0 and n_pred[label] > 0:
            notes.append(f"'{label}' has no gold support: its recall is 0 by convention")
        rows.append(LabelScore(label, n_gold[label], n_pred[label], tp[label], p, r, f))
    return rows


def _averages(rows: list[LabelScore]) -> tuple[Averages, Averages]:
    """Macro over labels seen in gold or predictions; weighted by gold support."""
    seen = [r for r in rows if r.support or r.predicted]
    if not seen:
        zero = Averages(0.0, 0.0, 0.0)
        return zero, zero
    macro = Averages(
        sum(r.precision for r in seen) / len(seen),
        sum(r.recall for r in seen) / len(seen),
        sum(r.f1 for r in seen) / len(seen),
    )
    total = sum(r.support for r in seen)
    if total == 0:
        weighted = Averages(0.0, 0.0, 0.0)
    else:
        weighted = Averages(
            sum(r.precision * r.support for r in seen) / total,
            sum(r.recall * r.support for r in seen) / total,
            sum(r.f1 * r.support for r in seen) / total,
        )
    return macro, weighted


def _ordered_labels(labels: list[str] | None, *collections: Any) -> list[str]:
    out = list(labels or [])
    for collection in collections:
        for value in collection:
            if value is not None and value not in out:
                out.append(value)
    return out


# -- single-label classification -------------------------------------------------------


@dataclass
class ClassifyMetrics:
    n: int
    n_failed: int
    accuracy: float
    micro: Averages
    macro: Averages
    weighted: Averages
    per_label: list[LabelScore]
    labels: list[str]
    # confusion[i][j]: gold labels[i] predicted as columns[j]; the last column is <failed>.
    confusion: list[list[int]]
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [*self.labels, FAILED]

    def top_confusions(self, k: int = 10) -> list[tuple[str, str, int]]:
        """The most frequent (gold, predicted, count) mistakes, failures included."""
        pairs = [
            (gold, pred, count)
            for i, gold in enumerate(self.labels)
            for j, (pred, count) in enumerate(zip(self.columns, self.confusion[i], strict=True))
            if i != j and count
        ]
        return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))[:k]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = self.columns
        out["top_confusions"] = [list(t) for t in self.top_confusions()]
        return out


def classify_metrics(
    gold: list[str], pred: list[str | None], labels: list[str] | None = None
) -> ClassifyMetrics:
    """Accuracy, P/R/F1 (micro, macro, weighted, per label) and the confusion matrix.

    ``pred[i] is None`` marks a failed item. ``labels`` fixes the table order (the
    ontology's); labels found only in the data are appended.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but predictions have {len(pred)}")
    notes: list[str] = []
    labels = _ordered_labels(labels, gold, pred)
    n = len(gold)
    n_failed = sum(p is None for p in pred)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    tp: Counter[str] = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    n_gold: Counter[str] = Counter(gold)
    n_pred: Counter[str] = Counter(p for p in pred if p is not None)
    if n == 0:
        notes.append("no items: every metric is 0 by convention")
    elif n_failed == n:
        notes.append("every item failed: every metric is 0")
    elif n_failed:
        notes.append(f"{n_failed} failed item(s) count as wrong")
    rows = _label_rows(labels, tp, n_pred, n_gold, notes)
    macro, weighted = _averages(rows)
    n_predicted = n - n_failed
    micro = Averages(*_prf(correct, n_predicted, n))
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        confusion[index[g]][len(labels) if p is None else index[p]] += 1
    return ClassifyMetrics(
        n=n,
        n_failed=n_failed,
        accuracy=correct / n if n else 0.0,
        micro=micro,
        macro=macro,
        weighted=weighted,
        per_label=rows,
        labels=labels,
        confusion=confusion,
        notes=notes,
    )


# -- multi-label ------------------------------------------------------------------------


@dataclass
class MultiLabelMetrics:
    n: int
    n_failed: int
    subset_accuracy: float
    hamming_loss: float
    micro: Averages
    macro: Averages
    weighted: Averages
    per_label: list[LabelScore]
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Subset (exact set) accuracy, under the name the reports share across tasks."""
        return self.subset_accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def multilabel_metrics(
    gold: list[list[str]], pred: list[list[str] | None], labels: list[str] | None = None
) -> MultiLabelMetrics:
    """Subset accuracy, Hamming loss and per-label / micro / macro P, R, F1."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but predictions have {len(pred)}")
    notes: list[str] = []
    labels = _ordered_labels(
        labels, [x for g in gold for x in g], [x for p in pred if p for x in p]
    )
    n = len(gold)
    n_failed = sum(p is None for p in pred)
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    exact = 0
    errors = 0
    for g, p in zip(gold, pred, strict=True):
        gs = set(g)
        n_gold.update(gs)
        if p is None:
            errors += len(labels)  # no decision on any label: every one is an error
            continue
        ps = set(p)
        n_pred.update(ps)
        tp.update(gs & ps)
        exact += gs == ps
        errors += len(gs ^ ps)
    if n == 0:
        notes.append("no items: every metric is 0 by convention")
    elif n_failed:
        notes.append(f"{n_failed} failed item(s) count as wrong (Hamming: all labels wrong)")
    rows = _label_rows(labels, tp, n_pred, n_gold, notes)
    macro, weighted = _averages(rows)
    micro = Averages(*_prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())))
    cells = n * len(labels)
    return MultiLabelMetrics(
        n=n,
        n_failed=n_failed,
        subset_accuracy=exact / n if n else 0.0,
        hamming_loss=errors / cells if cells else 0.0,
        micro=micro,
        macro=macro,
        weighted=weighted,
        per_label=rows,
        labels=labels,
        notes=notes,
    )


# -- spans ------------------------------------------------------------------------------

Span = dict[str, Any]  # {"start", "end", "label", "text"?}


@dataclass
class SpanMetrics:
    n: int
    n_failed: int
    # Items whose predicted span set equals the gold set exactly.
    item_accuracy: float
    exact: Averages  # micro over all entities
    partial: Averages
    exact_macro: Averages  # macro over entity types
    partial_macro: Averages
    per_type: list[LabelScore]  # exact match
    per_type_partial: list[LabelScore]
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.item_accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(span: Span) -> tuple[int, int, str]:
    return int(span["start"]), int(span["end"]), str(span["label"])


def _overlap(a: Span, b: Span) -> int:
    return min(int(a["end"]), int(b["end"])) - max(int(a["start"]), int(b["start"]))


def _partial_matches(gold: list[Span], pred: list[Span]) -> list[tuple[int, int]]:
    """One-to-one (gold index, pred index) pairs of same-type overlapping spans."""
    candidates = [
        (_overlap(g, p), gi, pi)
        for gi, g in enumerate(gold)
        for pi, p in enumerate(pred)
        if g["label"] == p["label"] and _overlap(g, p) > 0
    ]
    used_g: set[int] = set()
    used_p: set[int] = set()
    pairs = []
    for _, gi, pi in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if gi not in used_g and pi not in used_p:
            used_g.add(gi)
            used_p.add(pi)
            pairs.append((gi, pi))
    return pairs


def span_metrics(
    gold: list[list[Span]], pred: list[list[Span] | None], labels: list[str] | None = None
) -> SpanMetrics:
    """Entity-level P/R/F1 per type, exact and partial (overlap, same type)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but predictions have {len(pred)}")
    notes: list[str] = []
    labels = _ordered_labels(
        labels,
        [s["label"] for g in gold for s in g],
        [s["label"] for p in pred if p for s in p],
    )
    n = len(gold)
    n_failed = sum(p is None for p in pred)
    tp: Counter[str] = Counter()
    tp_partial: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    exact_items = 0
    for g, p in zip(gold, pred, strict=True):
        gkeys = {_key(s) for s in g}
        n_gold.update(k[2] for k in gkeys)
        if p is None:
            continue
        # Duplicate predictions of the same span count once (the canonical form has none).
        unique_p = list({_key(s): s for s in p}.values())
        pkeys = {_key(s) for s in unique_p}
        n_pred.update(k[2] for k in pkeys)
        tp.update(k[2] for k in gkeys & pkeys)
        unique_g = list({_key(s): s for s in g}.values())
        for gi, _ in _partial_matches(unique_g, unique_p):
            tp_partial[unique_g[gi]["label"]] += 1
        exact_items += gkeys == pkeys
    if n == 0:
        notes.append("no items: every metric is 0 by convention")
    elif n_failed:
        notes.append(f"{n_failed} failed item(s) count as wrong (their gold spans are missed)")
    if n and not sum(n_pred.values()):
        notes.append("no spans were predicted: precision is 0 by convention")
    rows = _label_rows(labels, tp, n_pred, n_gold, notes)
    rows_partial = _label_rows(labels, tp_partial, n_pred, n_gold, [])
    total_pred, total_gold = sum(n_pred.values()), sum(n_gold.values())
    return SpanMetrics(
        n=n,
        n_failed=n_failed,
        item_accuracy=exact_items / n if n else 0.0,
        exact=Averages(*_prf(sum(tp.values()), total_pred, total_gold)),
        partial=Averages(*_prf(sum(tp_partial.values()), total_pred, total_gold)),
        exact_macro=_averages(rows)[0],
        partial_macro=_averages(rows_partial)[0],
        per_type=rows,
        per_type_partial=rows_partial,
        labels=labels,
        notes=notes,
    )


# -- fields -----------------------------------------------------------------------------


@dataclass
class FieldMetrics:
    n: int
    n_failed: int
    accuracy: float  # all fields right
    per_field: dict[str, float]  # field -> accuracy
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return bool(a == b)


def field_metrics(
    gold: list[dict[str, Any]], pred: list[dict[str, Any] | None], fields: list[str]
) -> FieldMetrics:
    """Per-field and whole-record accuracy (strings compared case- and space-insensitively)."""
    n = len(gold)
    n_failed = sum(p is None for p in pred)
    right: Counter[str] = Counter()
    whole = 0
    for g, p in zip(gold, pred, strict=True):
        if p is None:
            continue
        ok = [f for f in fields if _same_value(g.get(f), p.get(f))]
        right.update(ok)
        whole += len(ok) == len(fields)
    notes = [f"{n_failed} failed item(s) count as wrong"] if n_failed else []
    return FieldMetrics(
        n=n,
        n_failed=n_failed,
        accuracy=whole / n if n else 0.0,
        per_field={f: right[f] / n if n else 0.0 for f in fields},
        notes=notes,
    )


def is_correct(task: str, gold: Any, pred: Any) -> bool:
    """Whether one prediction is entirely right (used by calibration and significance)."""
    if pred is None:
        return False
    if task == "multi_label":
        return set(gold) == set(pred)
    if task == "spans":
        return {_key(s) for s in gold} == {_key(s) for s in pred}
    if task == "fields":
        return all(_same_value(gold.get(k), pred.get(k)) for k in set(gold) | set(pred))
    if task == "boxes":
        from autolabel.evaluation.detection import box_answers_match

        return box_answers_match(gold, pred)
    return bool(gold == pred)
