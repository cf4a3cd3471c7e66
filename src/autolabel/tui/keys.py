"""Keyboard map of the review TUI: which key picks which label, and which keys are commands.

Pure Python (no textual import), so it is testable on its own and the help screen,
the label list and the docs all read the same table.
"""

from __future__ import annotations

import string

from autolabel.ontology.schema import REVIEW_COMMAND_KEYS

# Command keys of the main screen. A label never gets one of these: a reviewer must always
# be able to skip, flag, undo or quit, whatever the ontology's labels are called.
COMMAND_KEYS: dict[str, str] = {
    "enter": "accept the suggestion (multi-label: the ticked set; or the highlighted label)",
    "s": "skip this item (it goes back to the queue for someone else)",
    "f": "flag this item with a note (for the adjudicator)",
    "u": "undo your last action and return to that item",
    "e": "edit spans (span tasks): a keyboard span editor",
    "/": "filter the label list by typing; Enter picks when one label remains",
    "g": "show / hide the guidelines and label descriptions",
    "?": "this help",
    "q": "quit (your claim on the current item is released)",
    "up/down": "move the label highlight (boxes: select a box)",
    "space": "tick / untick the highlighted label (multi-label); boxes: accept the box",
    "delete": "boxes: delete the selected box (again: restore it); backspace too",
    "label key": "boxes: relabel the selected box. Drawing new boxes is not supported: "
    "skip (s) or flag (f) an item with a missing object",
}

# The ontology hands out label keys avoiding the same set (one definition, two guards).
RESERVED: frozenset[str] = REVIEW_COMMAND_KEYS

# Keys handed out when the ontology gives none (or gives a reserved one): digits first,
# then lower-case letters, then upper-case (shift+letter) for long label lists.
_POOL = [*"123456789", *string.ascii_lowercase, "0", *string.ascii_uppercase]


def effective_keys(labels: list[str], wanted: dict[str, str]) -> dict[str, str]:
    """Map each label to the key that picks it; labels beyond the key pool get none.

    ``wanted`` is the queue's ``label_keys`` (the ontology's choices or its defaults);
    a wanted key that is reserved for a command or already taken is replaced by the
    next free key, so every shown key works.
    """
    taken: set[str] = set()
    out: dict[str, str] = {}
    pending: list[str] = []
    for label in labels:
        key = wanted.get(label)
        if key and len(key) == 1 and key not in RESERVED and key not in taken:
            out[label] = key
            taken.add(key)
        else:
            pending.append(label)
    pool = (k for k in _POOL if k not in RESERVED and k not in taken)
    for label in pending:
        key = next(pool, None)
        if key is None:
            break
        out[label] = key
        taken.add(key)
    return {label: out[label] for label in labels if label in out}


# Reason codes the router writes (``review/routing.py``), in words a reviewer understands.
# Unknown codes are shown as written; ``rule:<name>`` keeps the rule's name.
REASON_TEXT: dict[str, str] = {
    "model_failed": "the model gave no valid answer",
    "low_confidence": "model confidence below the threshold",
    "sample_disagreement": "the model's samples disagree",
    "run_disagreement": "another run labelled it differently",
    "prior_label_disagreement": "the dataset's existing label differs",
    "rule": "a review rule matched",
    "audit": "random audit sample",
    # Written by `autolabel ontology migrate` and Label Studio imports (interop).
    "label_split": "its label was split in the new ontology version: pick the new label",
    "label_removed": "its label was removed in the new ontology version",
    "imported": "decision imported from another tool",
}


def describe_reason(code: str) -> str:
    """Human-readable text for a routing reason code."""
    head, _, detail = code.partition(":")
    text = REASON_TEXT.get(code) or REASON_TEXT.get(head)
    if text is None:
        return code.replace("_", " ")
    if detail and head == "rule":
        return f"review rule '{detail}' matched"
    if detail:
        return f"{text} ({detail})"
    return text
