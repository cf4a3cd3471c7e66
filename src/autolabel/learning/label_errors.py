"""Label-error detection on existing labels (confident learning, via cleanlab).

Inputs are plain arrays, like cleanlab's own ``find_label_issues(labels, pred_probs)``:
``labels[i]`` is the given label's index, ``pred_probs[i]`` the model's distribution
over the ontology's labels. cleanlab is an optional dependency (``autolabel[learning]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autolabel.errors import ConfigError

SUSPECT_REASON = "suspected_label_error"


@dataclass(frozen=True)
class Suspect:
    index: int  # row in the inputs
    given: str
    suggested: str  # the model's most probable label
    quality: float  # cleanlab's label quality score (low = likely wrong)


def pred_probs_matrix(
    distributions: Sequence[Mapping[str, float] | None], label_names: Sequence[str]
) -> np.ndarray:
    """Rows of probabilities in ontology label order; a missing distribution is uniform
    (the model told us nothing, so it neither accuses nor clears the label)."""
    k = len(label_names)
    out = np.full((len(distributions), k), 1.0 / k)
    for i, dist in enumerate(distributions):
        if dist:
            row = np.array([max(float(dist.get(n, 0.0)), 0.0) for n in label_names])
            total = row.sum()
            if total > 0:
                out[i] = row / total
    # cleanlab requires strictly valid rows; a tiny floor keeps log-based scores finite.
    out = np.clip(out, 1e-9, None)
    return out / out.sum(axis=1, keepdims=True)


def find_suspects(
    given: Sequence[str],
    distributions: Sequence[Mapping[str, float] | None],
    label_names: Sequence[str],
    *,
    top: int | None = None,
) -> list[Suspect]:
    """Given labels most likely wrong, worst first (cleanlab ``find_label_issues``)."""
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise ConfigError(
            "label-error detection needs cleanlab",
            hint="pip install 'autolabel[learning]'",
        ) from None
    index = {n: i for i, n in enumerate(label_names)}
    unknown = sorted({g for g in given if g not in index})
    if unknown:
        raise ConfigError(
            f"labels not in the ontology: {', '.join(map(str, unknown[:5]))}",
            hint="the label column must hold the ontology's label names",
        )
    labels = np.array([index[g] for g in given], dtype=int)
    probs = pred_probs_matrix(distributions, label_names)
    with warnings.catch_warnings():
        # "too few examples in class k": expected on small labelled sets; ranking still works.
        warnings.simplefilter("ignore", UserWarning)
        issues = find_label_issues(
            labels,
            probs,
            return_indices_ranked_by="self_confidence",
            n_jobs=1,  # no process pool: these sets are small and the machines shared
            **_safe_kwargs(labels, probs),
        )
    quality = get_label_quality_scores(labels, probs)
    out = [
        Suspect(int(i), given[i], label_names[int(np.argmax(probs[i]))], float(quality[i]))
        for i in issues
    ]
    return out[:top] if top is not None else out


def _safe_kwargs(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    # Labels absent from the given set make cleanlab's per-class thresholds undefined:
    # the "predicted_neq_given" filter needs none and works for any class coverage.
    if len(np.unique(labels)) < probs.shape[1]:
        return {"filter_by": "predicted_neq_given"}
    return {}
