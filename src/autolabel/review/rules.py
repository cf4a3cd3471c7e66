"""Rule checks from the ontology's ``review.rules``: a violated rule routes the item
for review with reason ``rule:<name>``."""

from __future__ import annotations

import re
from typing import Any

from autolabel.ontology.schema import Ontology, ReviewRule, TaskType


def violated_rules(
    ontology: Ontology, rules: list[ReviewRule], payload: dict[str, Any], label: Any
) -> list[str]:
    """Reason codes (``rule:<name>``) of the rules this item and label break."""
    return [f"rule:{rule.name}" for rule in rules if _violates(ontology, rule, payload, label)]


def _violates(ontology: Ontology, rule: ReviewRule, payload: dict[str, Any], label: Any) -> bool:
    if rule.kind == "regex":
        if not rule.pattern:
            return False
        if rule.field:
            text = str(payload.get(rule.field, ""))
        else:
            text = "\n".join(str(payload.get(f, "")) for f in ontology.input.fields)
        return re.search(rule.pattern, text) is not None
    if rule.kind == "required_fields":
        if ontology.task != TaskType.FIELDS or label is None:
            return False
        wanted = rule.fields or [f.name for f in ontology.fields if f.required]
        values = label if isinstance(label, dict) else {}
        return any(values.get(name) in (None, "") for name in wanted)
    if rule.kind == "forbidden_combination":
        if ontology.task != TaskType.MULTI_LABEL or not isinstance(label, list):
            return False
        return bool(rule.labels) and set(rule.labels) <= set(label)
    return False
