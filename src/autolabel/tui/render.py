"""Rich renderables for the review panes: pure functions of a task, no textual.

Kept apart from the widgets so the look of an item (span highlights, confidence bars)
is one function call away in tests and in the benchmark.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from autolabel.ontology.compiler import as_text
from autolabel.tui.keys import describe_reason

# One colour per label, in ontology order; chosen to stay readable on dark and light themes.
PALETTE = [
    "#e5c07b",
    "#61afef",
    "#98c379",
    "#e06c75",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#abb2bf",
]

# The item field holding an image reference (autolabel.images.IMAGE_KEY): drawn, not printed.
IMAGE_KEY = "__image__"

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TaskLike(Protocol):
    """The parts of the queue's ``TaskView`` the renderers read."""

    task_id: int
    external_id: str
    fields: dict[str, Any]
    task_type: str
    labels: list[str]
    suggestion: Any
    confidence: float | None
    distribution: dict[str, Any] | None
    reasons: list[str]
    alternatives: dict[str, Any]


def label_color(labels: list[str], label: str) -> str:
    """The colour of a label (stable for a given ontology)."""
    try:
        return PALETTE[labels.index(label) % len(PALETTE)]
    except ValueError:
        return "#888888"


def tokenize(text: str) -> list[tuple[int, int]]:
    """Character offsets of the words and punctuation marks of ``text``."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def span_source(task: TaskLike) -> str:
    """The text spans index into: the first input field (as in ``answers._span_source``)."""
    for value in task.fields.values():
        return "" if value is None else str(value)
    return ""


def highlight_spans(
    text: str,
    spans: list[dict[str, Any]],
    labels: list[str],
    *,
    cursor: tuple[int, int] | None = None,
    selection: tuple[int, int] | None = None,
    tags: bool = True,
) -> Text:
    """``text`` with each span coloured by its label and followed by a ``[LABEL]`` tag."""
    out = Text(text)
    for span in spans:
        start, end = int(span["start"]), int(span["end"])
        if not 0 <= start < end <= len(text):
            continue
        color = label_color(labels, span.get("label", ""))
        out.stylize(f"bold black on {color}", start, end)
    if selection is not None:
        out.stylize("underline on #5c6370", *selection)
    if cursor is not None:
        out.stylize("bold black on #ffffff", *cursor)
    if not tags:
        return out
    # Insert the tags from the end so earlier offsets stay valid.
    for span in sorted(spans, key=lambda s: int(s["end"]), reverse=True):
        end = int(span["end"])
        if not 0 < end <= len(text):
            continue
        label = str(span.get("label", ""))
        tag = Text(f"[{label}]", style=f"italic {label_color(labels, label)}")
        out = Text.assemble(out[:end], tag, out[end:])
    return out


def render_item(task: TaskLike) -> RenderableType:
    """The item's fields; for span tasks the suggested spans inline in the first field."""
    parts: list[RenderableType] = [
        Text.assemble(
            ("item ", "dim"), (str(task.external_id), "bold"), (f"  #{task.task_id}", "dim")
        )
    ]
    shown = [(k, v) for k, v in task.fields.items() if k != IMAGE_KEY]
    for i, (name, value) in enumerate(shown):
        parts.append(Text(""))
        parts.append(Text(str(name), style="bold underline"))
        if i == 0 and task.task_type == "spans" and isinstance(task.suggestion, list):
            parts.append(highlight_spans(str(value), task.suggestion, task.labels))
        else:
            parts.append(Text(as_text(value)))
    return Group(*parts)


def bar(p: float | None, width: int = 10) -> Text:
    """A confidence bar: ``███████░░░ 0.72``."""
    if p is None:
        return Text("n/a", style="dim")
    p = min(max(float(p), 0.0), 1.0)
    full = round(p * width)
    style = "green" if p >= 0.8 else "yellow" if p >= 0.5 else "red"
    return Text.assemble(("█" * full, style), ("░" * (width - full), "dim"), f" {p:.2f}")


def format_label(task_type: str, label: Any) -> str:
    """A canonical label in one short line."""
    if label is None:
        return "—"
    if task_type == "classify":
        return str(label)
    if task_type == "multi_label":
        return ", ".join(label) if label else "(none)"
    if task_type == "boxes" and isinstance(label, dict):
        objects = label.get("objects") or []
        return ", ".join(str(o.get("label", "")) for o in objects) or "(no objects)"
    if task_type == "spans":
        if not label:
            return "(no spans)"
        return "; ".join(f"{s.get('text', '')!s}→{s.get('label', '')}" for s in label)
    return json.dumps(label, ensure_ascii=False, sort_keys=True)


def render_suggestion(task: TaskLike) -> RenderableType:
    """Model label(s) with confidence, top-5 distribution, why queued, alternatives."""
    parts: list[RenderableType] = [Text("Model suggests", style="bold")]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    grid.add_column(no_wrap=True)
    dist: dict[str, Any] = task.distribution if isinstance(task.distribution, dict) else {}
    if task.task_type == "multi_label" and isinstance(task.suggestion, list):
        for label in task.suggestion or ["(none)"]:
            grid.add_row(Text(label, style=label_color(task.labels, label)), bar(dist.get(label)))
        grid.add_row(Text("overall", style="dim"), bar(task.confidence))
    elif task.task_type == "classify":
        label = str(task.suggestion) if task.suggestion is not None else "—"
        grid.add_row(
            Text(label, style=f"bold {label_color(task.labels, label)}"), bar(task.confidence)
        )
    elif task.task_type == "spans" and isinstance(task.suggestion, list):
        # Span tasks: one row per span, with its own confidence when the run gave one.
        per_span = task.distribution if isinstance(task.distribution, list) else []
        for i, span in enumerate(task.suggestion):
            label = str(span.get("label", ""))
            p = per_span[i] if i < len(per_span) and isinstance(per_span[i], int | float) else None
            name = Text.assemble(
                (str(span.get("text", "")), label_color(task.labels, label)), (f" {label}", "dim")
            )
            grid.add_row(name, bar(p) if p is not None else Text(""))
        if not task.suggestion:
            grid.add_row(Text("(no spans)", style="dim"), Text(""))
        grid.add_row(Text("overall", style="dim"), bar(task.confidence))
    elif task.task_type == "boxes" and isinstance(task.suggestion, dict):
        # One row per box, numbered as on the picture, with the model's confidence.
        objects = task.suggestion.get("objects") or []
        for i, obj in enumerate(objects):
            label = str(obj.get("label", ""))
            conf = obj.get("confidence")
            name = Text.assemble((f"#{i + 1} ", "dim"), (label, label_color(task.labels, label)))
            grid.add_row(name, bar(conf) if isinstance(conf, int | float) else Text(""))
        if not objects:
            grid.add_row(Text("(no objects)", style="dim"), Text(""))
        grid.add_row(Text("overall", style="dim"), bar(task.confidence))
    else:
        grid.add_row(Text(format_label(task.task_type, task.suggestion)), bar(task.confidence))
    parts.append(grid)

    numeric = {k: v for k, v in dist.items() if isinstance(v, int | float)}
    if numeric and task.task_type in ("classify", "multi_label"):
        parts.append(Text(""))
        title = "Distribution (top 5)" if task.task_type == "classify" else "P(applies) (top 5)"
        parts.append(Text(title, style="bold"))
        top = Table.grid(padding=(0, 1))
        top.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        top.add_column(no_wrap=True)
        for label, p in sorted(numeric.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
            top.add_row(Text(label, style=label_color(task.labels, label)), bar(p))
        parts.append(top)

    reasons = [r for r in task.reasons if r != "honeypot"]
    if reasons:
        parts.append(Text(""))
        parts.append(Text("Why you see it", style="bold"))
        for code in reasons:
            parts.append(Text(f"• {describe_reason(code)}"))
    if task.alternatives:
        parts.append(Text(""))
        parts.append(Text("Other runs said", style="bold"))
        for run, label in sorted(task.alternatives.items(), key=lambda kv: str(kv[0])):
            parts.append(Text(f"• {run}: {format_label(task.task_type, label)}"))
    return Group(*parts)
