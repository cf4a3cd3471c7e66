"""Recalibration lowers ECE on held-out items of a synthetic over-confident model."""

from __future__ import annotations

import numpy as np
import pytest

from autolabel.evaluation.calibration import expected_calibration_error
from autolabel.learning.recalibration import Calibrator, fit_calibrator


def _overconfident(n: int, seed: int) -> tuple[list[float], list[bool], list[dict[str, float]]]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.6, 1.0, n)
    # Truly right only (conf - 0.35) of the time: badly over-confident.
    correct = rng.uniform(size=n) < np.clip(conf - 0.35, 0.05, 1.0)
    dists = [{"a": float(c), "b": float(1 - c) / 2, "c": float(1 - c) / 2} for c in conf]
    return conf.tolist(), correct.tolist(), dists


@pytest.mark.parametrize("method", ["platt", "isotonic", "temperature", "auto"])
def test_lowers_ece_on_held_out(method: str) -> None:
    conf, correct, dists = _overconfident(600, seed=1)
    fit_idx, held = range(0, 300), range(300, 600)
    cal = fit_calibrator(
        [conf[i] for i in fit_idx],
        [correct[i] for i in fit_idx],
        distributions=[dists[i] for i in fit_idx],
        refs=[f"r{i}" for i in fit_idx],
        method=method,  # type: ignore[arg-type]
    )
    assert cal.method == (method if method != "auto" else "isotonic")
    # Reported on items it was never fitted on.
    assert not {f"r{i}" for i in held} & set(cal.fitted_on)
    before = expected_calibration_error([conf[i] for i in held], [correct[i] for i in held])
    after_conf = cal.apply_many([conf[i] for i in held], [dists[i] for i in held])
    after = expected_calibration_error(after_conf, [correct[i] for i in held])  # type: ignore[arg-type]
    assert before > 0.2
    assert after < before / 2


def test_round_trip_and_small_data() -> None:
    cal = fit_calibrator([0.9] * 5, [True] * 5)
    assert cal.method == "identity" and cal.apply(0.9) == 0.9
    conf, correct, _ = _overconfident(50, seed=2)
    fitted = fit_calibrator(conf, correct)
    assert fitted.method == "platt"
    again = Calibrator.from_dict(fitted.to_dict())
    assert again.apply(0.95) == pytest.approx(fitted.apply(0.95))
    assert fitted.apply(None) is None
