"""What the queue hands to a reviewer (and the TUI): plain, immutable views.

A ``TaskView`` never carries ``gold_label`` or ``is_honeypot``: honeypots must look
exactly like any other task to the person reviewing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TaskView:
    task_id: int
    item_id: int
    external_id: str
    queue: str
    fields: dict[str, Any]  # the item's input fields, in ontology order
    task_type: str  # classify | multi_label | spans | fields
    labels: list[str]
    label_keys: dict[str, str]
    guidelines: str
    label_descriptions: dict[str, str]
    suggestion: Any  # the model's canonical label (None when the model failed)
    confidence: float | None
    distribution: dict[str, Any] | None
    reasons: list[str]
    alternatives: dict[str, Any]  # other run (name or "run N") -> its label
    status: str
    decisions_so_far: int
    required_decisions: int


@dataclass(frozen=True)
class DecisionView:
    id: int
    task_id: int
    reviewer: str
    action: str  # decide | skip | flag | undo | adjudicate | second_opinion
    label: Any
    label_before: Any
    seconds: float | None
    created_at: datetime
    note: str | None = None


@dataclass(frozen=True)
class QueueStats:
    pending: int = 0
    claimed: int = 0
    decided: int = 0
    skipped: int = 0
    flagged: int = 0
    adjudication: int = 0
    total: int = 0
    done_by_reviewer: dict[str, int] = field(default_factory=dict)
    # Decisions per minute over the reviewer's recent work (None: too few to say).
    pace_per_min: float | None = None
    # Share of the reviewer's decisions equal to the model's suggestion.
    agreement_with_model: float | None = None

    @property
    def remaining(self) -> int:
        """Tasks still needing a reviewer (pending, claimed or skipped)."""
        return self.pending + self.claimed + self.skipped
