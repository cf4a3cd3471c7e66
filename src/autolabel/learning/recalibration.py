"""Recalibration from human decisions: (model confidence, was the model right) pairs.

Three methods, chosen by how much data there is (``method="auto"``):

- ``temperature`` (one parameter, fewest pairs): the label distribution is sharpened
  or flattened, p_i ∝ p_i^(1/T); needs the distribution (classify choice scoring).
- ``platt`` (two parameters): p' = σ(a·logit(p) + b) on the top label's confidence.
- ``isotonic`` (monotone step function, pool-adjacent-violators): most flexible,
  needs the most pairs.

Pure numpy; a fitted :class:`Calibrator` is a small JSON-able record (stored in the
``calibrators`` table with the ids of the decisions it was fitted on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["auto", "temperature", "platt", "isotonic", "identity"]
_EPS = 1e-6
# Below this many pairs a calibrator is not fitted at all (identity).
MIN_PAIRS = 10
PLATT_MIN_PAIRS = 30
ISOTONIC_MIN_PAIRS = 200


@dataclass(frozen=True)
class Calibrator:
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    n_fitted: int = 0
    fitted_on: tuple[str, ...] = ()  # refs (item/decision ids) of the pairs used

    def apply(self, confidence: float | None, distribution: Any = None) -> float | None:
        """The calibrated confidence of the predicted label."""
        if confidence is None or (isinstance(confidence, float) and math.isnan(confidence)):
            return confidence
        p = min(max(float(confidence), _EPS), 1 - _EPS)
        if self.method == "platt":
            z = self.params["a"] * _logit(p) + self.params["b"]
            return float(1 / (1 + math.exp(-z)))
        if self.method == "isotonic":
            return float(np.interp(p, self.params["x"], self.params["y"]))
        if self.method == "temperature" and isinstance(distribution, Mapping) and distribution:
            tempered = _temper(np.array(list(distribution.values()), float), self.params["t"])
            return float(tempered.max())
        return float(confidence)

    def apply_many(
        self, confidences: Sequence[float | None], distributions: Sequence[Any] | None = None
    ) -> list[float | None]:
        dists = distributions or [None] * len(confidences)
        return [self.apply(c, d) for c, d in zip(confidences, dists, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "n_fitted": self.n_fitted,
            "fitted_on": list(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(
            data["method"],
            dict(data.get("params") or {}),
            int(data.get("n_fitted", 0)),
            tuple(data.get("fitted_on") or ()),
        )


IDENTITY = Calibrator("identity")


def fit_calibrator(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    distributions: Sequence[Any] | None = None,
    refs: Sequence[str] = (),
    method: Method = "auto",
) -> Calibrator:
    """Fit on pairs; ``refs`` name them so the same items are never used for reporting."""
    conf = np.clip(np.asarray(confidences, dtype=float), _EPS, 1 - _EPS)
    y = np.asarray(correct, dtype=float)
    n = int(conf.size)
    if n < MIN_PAIRS or method == "identity" or y.min(initial=1) == y.max(initial=0):
        # All right or all wrong: no contrast to fit a slope on; Platt's intercept alone.
        if n >= MIN_PAIRS and method != "identity":
            rate = (y.sum() + 1) / (n + 2)
            return Calibrator("isotonic", {"x": [0.0, 1.0], "y": [rate, rate]}, n, tuple(refs))
        return Calibrator("identity", {}, n, tuple(refs))
    has_dists = distributions is not None and all(
        isinstance(d, Mapping) and d for d in distributions
    )
    if method == "auto":
        if n >= ISOTONIC_MIN_PAIRS:
            method = "isotonic"
        elif n >= PLATT_MIN_PAIRS or not has_dists:
            method = "platt"
        else:
            method = "temperature"
    if method == "temperature" and not has_dists:
        method = "platt"
    if method == "temperature":
        params = {"t": _fit_temperature(distributions or [], y)}
    elif method == "platt":
        params = _fit_platt(conf, y)
    else:
        params = _fit_isotonic(conf, y)
    return Calibrator(method, params, n, tuple(refs))


def _logit(p: float | np.ndarray) -> Any:
    return np.log(p) - np.log1p(-p) if isinstance(p, np.ndarray) else math.log(p / (1 - p))


def _fit_platt(conf: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> dict[str, float]:
    """Newton's method on the logistic log-loss of σ(a·logit(p) + b), Platt's smoothed
    targets (so a perfectly separated set does not diverge)."""
    n_pos, n_neg = y.sum(), y.size - y.sum()
    t = np.where(y > 0.5, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = np.stack([_logit(conf), np.ones_like(conf)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -35, 35)))
        grad = x.T @ (p - t) + l2 * w
        hess = x.T @ (x * (p * (1 - p))[:, None]) + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        # Damped: a full Newton step can overshoot when the logits are extreme.
        step *= min(1.0, 2.0 / max(float(np.abs(step).max()), 1e-12))
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return {"a": float(w[0]), "b": float(w[1])}


def _fit_isotonic(conf: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Pool-adjacent-violators; stored as interpolation knots."""
    order = np.argsort(conf, kind="stable")
    xs, ys = conf[order], y[order]
    blocks: list[list[float]] = []  # [sum_y, count, min_x, max_x]
    for xv, yv in zip(xs, ys, strict=True):
        blocks.append([yv, 1.0, xv, xv])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, c, lo, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][3] = hi
    knots_x: list[float] = []
    knots_y: list[float] = []
    for s, c, lo, hi in blocks:
        # Shrink each block toward 1/2 a little: a block of 3 right answers is not 100%.
        value = (s + 0.5) / (c + 1)
        knots_x += [float(lo), float(hi)]
        knots_y += [value, value]
    return {"x": knots_x, "y": knots_y}


def _temper(probs: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / t
    logp -= logp.max()
    e = np.exp(logp)
    return e / e.sum()


def _fit_temperature(distributions: Sequence[Any], correct: np.ndarray) -> float:
    """T minimising the log-loss of "the top label is right" (grid over log T)."""
    tops = [np.array(list(d.values()), float) for d in distributions]
    best_t, best_loss = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.25), math.log(20.0), 80)):
        loss = 0.0
        for probs, y in zip(tops, correct, strict=True):
            p = min(max(float(_temper(probs, float(t)).max()), _EPS), 1 - _EPS)
            loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t
