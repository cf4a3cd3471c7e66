"""Task state from its decisions: the one place that knows what makes a label final.

Pure functions over the live (not undone) decisions of one task, so the queue, the
final-label resolution and the tests all agree. Rules:

- an ``adjudicate`` decision is final and overrides everything (the last one wins);
- otherwise the task is final once ``required`` human ``decide`` labels agree
  (source ``human`` when one decision suffices, ``consensus`` when several agree);
- ``reviewers_per_item`` decisions in without ``required`` agreeing → ``adjudication``;
- a live ``flag`` sends the task to the adjudicator (``flagged``);
- else ``claimed`` while someone holds a live lease, ``skipped`` if the last action
  was a skip, otherwise ``pending``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from autolabel.review.labels import label_key

HUMAN_ACTIONS = ("decide", "skip", "flag", "adjudicate")
FINAL_STATUSES = ("decided",)
# Tasks an ordinary reviewer can be served; flagged/adjudication go to adjudicators.
SERVABLE_STATUSES = ("pending", "claimed", "skipped")
ADJUDICATION_STATUSES = ("adjudication", "flagged")


@dataclass(frozen=True)
class LiveAction:
    """The part of a Decision row that state derivation needs."""

    reviewer: str
    action: str
    label: Any


@dataclass(frozen=True)
class TaskState:
    status: str
    final_label: Any = None
    final_source: str | None = None
    agreeing: int = 0  # size of the largest group of equal human labels
    decided: int = 0  # live human ``decide`` actions
    reviewers: int = 0  # distinct reviewers with a live decide/adjudicate


def derive_state(
    actions: list[LiveAction], *, required: int, reviewers_per_item: int, live_claims: int
) -> TaskState:
    """Status and final label of a task from its live actions, in order."""
    decides = [a for a in actions if a.action == "decide"]
    groups = Counter(label_key(a.label) for a in decides)
    agreeing = max(groups.values(), default=0)
    reviewers = len({a.reviewer for a in actions if a.action in ("decide", "adjudicate")})
    common = {"agreeing": agreeing, "decided": len(decides), "reviewers": reviewers}
    adjudications = [a for a in actions if a.action == "adjudicate"]
    if adjudications:
        return TaskState("decided", adjudications[-1].label, "adjudicator", **common)
    if agreeing >= required:
        winner = next(a.label for a in decides if groups[label_key(a.label)] == agreeing)
        source = "human" if required == 1 else "consensus"
        return TaskState("decided", winner, source, **common)
    if len(decides) >= max(reviewers_per_item, required):
        return TaskState("adjudication", **common)
    if any(a.action == "flag" for a in actions):
        return TaskState("flagged", **common)
    if live_claims:
        return TaskState("claimed", **common)
    if actions and actions[-1].action == "skip":
        return TaskState("skipped", **common)
    return TaskState("pending", **common)


def still_needed(state: TaskState, *, required: int, reviewers_per_item: int) -> int:
    """How many more reviewers may hold the task at once: the fewest further decisions
    that could finalise it, never more than the decisions left before adjudication."""
    if state.status not in SERVABLE_STATUSES:
        return 0
    to_agree = required - state.agreeing
    before_adjudication = max(reviewers_per_item, required) - state.decided
    return max(0, min(to_agree, before_adjudication))
