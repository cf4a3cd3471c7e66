"""Human labels: validate what a reviewer submits into the canonical form of the task.

The canonical forms are the ones predictions use (see ``ontology/answers.py``), so a
human label and a model label compare equal exactly when they mean the same thing.
"""

from __future__ import annotations

from typing import Any

from autolabel.errors import ReviewError
from autolabel.hashing import canonical_json
from autolabel.ontology.schema import Ontology, TaskType


def label_key(label: Any) -> str:
    """A hashable identity for a canonical label (dicts and lists compare by content)."""
    return canonical_json(label)


def canonical_human_label(ontology: Ontology, label: Any) -> Any:
    """Check a reviewer's label against the ontology and return its canonical form."""
    names = ontology.label_names
    task = ontology.task
    if task == TaskType.CLASSIFY:
        if label not in names:
            raise ReviewError(
                f"'{label}' is not a label of ontology '{ontology.name}'",
                hint=f"choose one of: {', '.join(names)}",
            )
        return label
    if task == TaskType.MULTI_LABEL:
        if isinstance(label, str):
            label = [label]
        if not isinstance(label, list | tuple | set | frozenset):
            raise ReviewError("a multi_label decision is a list of label names")
        unknown = [v for v in label if v not in names]
        if unknown:
            raise ReviewError(
                f"unknown label(s) {unknown} for ontology '{ontology.name}'",
                hint=f"choose from: {', '.join(names)}",
            )
        chosen = set(label)
        return [name for name in names if name in chosen]
    if task == TaskType.SPANS:
        if not isinstance(label, list):
            raise ReviewError("a spans decision is a list of {start, end, text, label}")
        spans = []
        for span in label:
            if not isinstance(span, dict) or span.get("label") not in names:
                raise ReviewError(f"invalid span {span!r}", hint=f"labels: {', '.join(names)}")
            try:
                start, end = int(span["start"]), int(span["end"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ReviewError(f"span {span!r} needs integer start and end") from exc
            if not 0 <= start < end:
                raise ReviewError(f"span {span!r} has start >= end")
            spans.append(
                {
                    "start": start,
                    "end": end,
                    "text": str(span.get("text", "")),
                    "label": span["label"],
                }
            )
        return sorted(spans, key=lambda s: (s["start"], s["end"], s["label"]))
    if task == TaskType.BOXES:
        # {"objects": [{label, box [x, y, w, h], confidence}]}: boxes the reviewer kept,
        # relabelled or drew; a kept box may carry the model's confidence along.
        from autolabel.ontology.answers import canonical_boxes

        try:
            return canonical_boxes(label, names)
        except ValueError as exc:
            raise ReviewError(f"invalid boxes decision: {exc}") from None
    if not isinstance(label, dict):
        raise ReviewError("a fields decision is a mapping of field name to value")
    known = {f.name for f in ontology.fields}
    unknown = sorted(set(label) - known)
    if unknown:
        raise ReviewError(f"unknown field(s) {unknown}", hint=f"fields: {', '.join(sorted(known))}")
    return {f.name: label.get(f.name) for f in ontology.fields}
