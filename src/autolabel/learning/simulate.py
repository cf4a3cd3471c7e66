"""``autolabel simulate``: replay a gold set as the reviewer and measure effort to quality.

Strategies (one report):

- ``random``      zero-shot labels, reviewer works in a seeded random order, no learning;
- ``confidence``  zero-shot labels, least confident first, no learning;
- ``loop``        the full loop: active order → reviewer answers a batch from gold →
                  learn (demonstrations pool, recalibration) → re-label every undecided
                  item → repeat.

Accuracy of the whole dataset at each point = (items reviewed [the human label is
the gold one] + undecided items whose current model label equals gold) / N; failed
items count as wrong. Pure: the model is reached only through ``label_fn``, so the
simulation, the tests and the live loop share the learning functions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autolabel.hashing import canonical_json
from autolabel.learning.active import active_order, uncertainty
from autolabel.learning.demonstrations import (
    Demonstration,
    DemoSelector,
    build_pool,
)
from autolabel.learning.embeddings import EmbeddingCache
from autolabel.learning.recalibration import IDENTITY, Calibrator, fit_calibrator
from autolabel.review.ordering import seeded_unit

STRATEGIES = ("random", "confidence", "loop")


@dataclass(frozen=True)
class SimItem:
    ref: str
    payload: dict[str, Any]
    text: str
    gold: Any


@dataclass(frozen=True)
class SimPrediction:
    label: Any  # None: failed
    confidence: float | None = None
    distribution: Any = None
    demos: tuple[str, ...] = ()


# (items, demonstrations per item) -> one prediction per item
LabelFn = Callable[[Sequence[SimItem], Sequence[Sequence[Demonstration]]], list[SimPrediction]]


@dataclass
class StrategyResult:
    name: str
    points: list[dict[str, float]] = field(default_factory=list)
    effort_to_target: float | None = None
    model_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "effort_to_target": self.effort_to_target,
            "model_calls": self.model_calls,
            **self.extra,
        }


@dataclass
class SimConfig:
    target: float = 0.95
    batch: int = 20
    seed: int = 0
    k: int = 8
    budget: float = 1.0  # most share of items the loop may review
    min_share: float = 0.2  # the loop runs at least this far (for the 20% figure)
    audit_share: float = 0.0
    targets: tuple[float, ...] = (0.9, 0.95)


def is_right(pred: SimPrediction, gold: Any) -> bool:
    return pred.label is not None and canonical_json(pred.label) == canonical_json(gold)


def _accuracy(n: int, reviewed: int, right_rest: int) -> float:
    return (reviewed + right_rest) / n if n else 0.0


def effort(points: Sequence[dict[str, float]], target: float) -> float | None:
    """The smallest share reviewed at which the whole-dataset accuracy reaches ``target``."""
    for p in points:
        if p["accuracy"] >= target - 1e-12:
            return round(p["share"], 6)
    return None


def static_curve(
    name: str, order: Sequence[int], correct: Sequence[bool], config: SimConfig
) -> StrategyResult:
    """Review in ``order`` with fixed (zero-shot) predictions: one point per item."""
    n = len(correct)
    right_rest = int(sum(correct))
    points = [{"reviewed": 0, "share": 0.0, "accuracy": _accuracy(n, 0, right_rest)}]
    for m, i in enumerate(order, start=1):
        right_rest -= int(correct[i])
        points.append({"reviewed": m, "share": m / n, "accuracy": _accuracy(n, m, right_rest)})
    result = StrategyResult(name, points)
    result.effort_to_target = effort(points, config.target)
    result.extra["effort"] = {f"{t:g}": effort(points, t) for t in config.targets}
    return result


def confidence_order(preds: Sequence[SimPrediction], items: Sequence[SimItem], seed: int):
    def key(i: int) -> tuple[float, float]:
        c = preds[i].confidence if preds[i].label is not None else None
        return (-1.0 if c is None else c, seeded_unit(seed, "tie", items[i].ref))

    return sorted(range(len(items)), key=key)


def random_order(items: Sequence[SimItem], seed: int) -> list[int]:
    return sorted(range(len(items)), key=lambda i: seeded_unit(seed, "order", items[i].ref))


def cpu_seconds() -> float:
    """CPU time of this process (all threads, the model's included): on a shared
    machine wall time alone says little."""
    t = os.times()
    return t.user + t.system


Checkpoint = Callable[[dict[str, StrategyResult]], None]


def simulate(
    items: Sequence[SimItem],
    label_fn: LabelFn,
    cache: EmbeddingCache,
    config: SimConfig,
    *,
    strategies: Sequence[str] = STRATEGIES,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_checkpoint: Checkpoint | None = None,
) -> dict[str, StrategyResult]:
    """Run the strategies; the zero-shot labels are computed once and shared.

    ``on_checkpoint`` gets the results so far after the zero-shot pass and after every
    loop round (the loop's curve up to that round, ``extra["partial"]`` true), so a long
    run that is stopped still leaves a report of what it measured.
    """
    n = len(items)
    started = time.perf_counter()
    cpu0 = cpu_seconds()
    zero = label_fn(items, [[] for _ in items])
    zero_s = (round(time.perf_counter() - started, 2), round(cpu_seconds() - cpu0, 2))
    zero_correct = [is_right(p, it.gold) for p, it in zip(zero, items, strict=True)]
    results: dict[str, StrategyResult] = {}
    if "random" in strategies:
        results["random"] = static_curve(
            "random", random_order(items, config.seed), zero_correct, config
        )
    if "confidence" in strategies:
        results["confidence"] = static_curve(
            "confidence", confidence_order(zero, items, config.seed), zero_correct, config
        )

    def stamp(r: StrategyResult) -> StrategyResult:
        r.extra["zero_shot_accuracy"] = sum(zero_correct) / n if n else 0.0
        r.extra["zero_shot_s"], r.extra["zero_shot_cpu_s"] = zero_s
        r.extra["elapsed_s"] = round(time.perf_counter() - started, 2)
        r.extra["cpu_s"] = round(cpu_seconds() - cpu0, 2)
        return r

    for r in results.values():
        r.model_calls = n
        stamp(r)
    if on_checkpoint is not None:
        on_checkpoint({k: _snapshot(v) for k, v in results.items()})
    if "loop" in strategies:

        def checkpoint(loop: StrategyResult) -> None:
            if on_checkpoint is not None:
                snap = {**{k: stamp(v) for k, v in results.items()}, "loop": stamp(loop)}
                on_checkpoint({k: _snapshot(v) for k, v in snap.items()})

        results["loop"] = _loop(
            items, zero, zero_correct, label_fn, cache, config, on_round, checkpoint
        )
    for r in results.values():
        stamp(r)
    return results


def _loop(
    items: Sequence[SimItem],
    zero: list[SimPrediction],
    zero_correct: list[bool],
    label_fn: LabelFn,
    cache: EmbeddingCache,
    config: SimConfig,
    on_round: Callable[[dict[str, Any]], None] | None,
    checkpoint: Callable[[StrategyResult], None] | None = None,
) -> StrategyResult:
    n = len(items)
    vectors = cache.embed([it.text for it in items])
    preds = list(zero)
    reviewed: list[int] = []
    is_reviewed = np.zeros(n, dtype=bool)
    # (confidence, distribution, was right) of the prediction a human saw, per reviewed item.
    seen: list[tuple[float, Any, bool]] = []
    calibrator: Calibrator = IDENTITY
    result = StrategyResult("loop", model_calls=n)

    def right_rest() -> int:
        return sum(is_right(preds[i], items[i].gold) for i in range(n) if not is_reviewed[i])

    result.points.append({"reviewed": 0, "share": 0.0, "accuracy": _accuracy(n, 0, right_rest())})
    budget = int(round(config.budget * n))
    rounds: list[dict[str, Any]] = []
    at_20: dict[str, Any] | None = None

    def finish(partial: bool) -> StrategyResult:
        # Efforts of the curve so far: a partial result can only under-state the loop.
        result.effort_to_target = effort(result.points, config.target)
        result.extra["effort"] = {f"{t:g}": effort(result.points, t) for t in config.targets}
        result.extra["rounds"] = rounds
        result.extra["at_20_percent"] = at_20
        result.extra["calibrator"] = calibrator.to_dict() | {"fitted_on": len(calibrator.fitted_on)}
        result.extra["partial"] = partial
        return result

    while len(reviewed) < budget:
        undecided = [i for i in range(n) if not is_reviewed[i]]
        unc = [
            uncertainty(
                calibrator.apply(preds[i].confidence, preds[i].distribution)
                if preds[i].label is not None
                else None,
                preds[i].distribution,
            )
            for i in undecided
        ]
        order = active_order(
            [items[i].ref for i in undecided],
            unc,
            vectors[undecided],
            vectors[reviewed] if reviewed else np.zeros((0, vectors.shape[1]), np.float32),
            seed=config.seed + len(reviewed),
            audit_share=config.audit_share,
            greedy=config.batch,
        )
        batch = [undecided[j] for j in order[: min(config.batch, budget - len(reviewed))]]
        rest_right = right_rest()
        for i in batch:
            ok = is_right(preds[i], items[i].gold)
            seen.append((preds[i].confidence or 0.0, preds[i].distribution, ok))
            rest_right -= int(ok)
            reviewed.append(i)
            is_reviewed[i] = True
            m = len(reviewed)
            result.points.append(
                {"reviewed": m, "share": m / n, "accuracy": _accuracy(n, m, rest_right)}
            )
        share = len(reviewed) / n
        acc = result.points[-1]["accuracy"]
        if acc >= config.target and share >= config.min_share:
            break
        if len(reviewed) >= budget:
            break
        if checkpoint is not None:  # the reviewed batch is measured before the long re-label
            checkpoint(finish(partial=True))
        # Learn: the pool of human labels and a calibrator fitted only on reviewed items.
        demos = [
            Demonstration(items[i].ref, items[i].payload, items[i].gold, items[i].text)
            for i in reviewed
        ]
        selector = DemoSelector(build_pool("simulate", demos, cache), cache, k=config.k)
        calibrator = fit_calibrator(
            [c for c, _, _ in seen],
            [ok for _, _, ok in seen],
            distributions=[d for _, d, _ in seen],
            refs=[items[i].ref for i in reviewed],
        )
        undecided = [i for i in range(n) if not is_reviewed[i]]
        chosen = [
            selector.select(items[i].text, exclude=[items[i].ref], vector=vectors[i])
            for i in undecided
        ]
        t0, c0 = time.perf_counter(), cpu_seconds()
        new = label_fn([items[i] for i in undecided], chosen)
        result.model_calls += len(undecided)
        for i, p in zip(undecided, new, strict=True):
            preds[i] = p
        acc_after = _accuracy(n, len(reviewed), right_rest())
        result.points.append({"reviewed": len(reviewed), "share": share, "accuracy": acc_after})
        unrev = [i for i in range(n) if not is_reviewed[i]]
        info = {
            "reviewed": len(reviewed),
            "share": round(share, 4),
            "accuracy": round(acc_after, 4),
            "unreviewed_accuracy": _mean(is_right(preds[i], items[i].gold) for i in unrev),
            "zero_shot_unreviewed_accuracy": _mean(zero_correct[i] for i in unrev),
            "calibrator": calibrator.method,
            "relabel_s": round(time.perf_counter() - t0, 2),
            "relabel_cpu_s": round(cpu_seconds() - c0, 2),
            "relabelled": len(undecided),
        }
        rounds.append(info)
        if on_round is not None:
            on_round(info)
        if at_20 is None and share >= 0.2 - 1e-9:
            at_20 = info
        if checkpoint is not None:
            checkpoint(finish(partial=True))
        if acc_after >= config.target and share >= config.min_share:
            break
    return finish(partial=False)


def _snapshot(r: StrategyResult) -> StrategyResult:
    """A copy the run will not change later (the loop keeps appending to its own)."""
    extra = {k: list(v) if isinstance(v, list) else v for k, v in r.extra.items()}
    return replace(r, points=list(r.points), extra=extra)


def _mean(values: Any) -> float | None:
    vals = [float(v) for v in values]
    return round(sum(vals) / len(vals), 4) if vals else None
