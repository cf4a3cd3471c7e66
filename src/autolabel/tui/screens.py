"""Modal screens: help, flag note, span editor."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from autolabel.tui.keys import COMMAND_KEYS
from autolabel.tui.render import highlight_spans, label_color, tokenize


class HelpScreen(ModalScreen[None]):
    """The key map: commands, then this item's label keys."""

    BINDINGS = [
        Binding("escape,q,question_mark,enter", "dismiss", "close", show=False),
    ]

    def __init__(self, label_keys: dict[str, str], labels: list[str]) -> None:
        super().__init__()
        self.label_keys = label_keys
        self.labels = labels

    def compose(self) -> ComposeResult:
        table = Table(title="Keys", show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in COMMAND_KEYS.items():
            table.add_row(key, what)
        for label in self.labels:
            key = self.label_keys.get(label)
            table.add_row(
                key or "—",
                Text.assemble("label ", (label, label_color(self.labels, label))),
            )
        with VerticalScroll(id="help-box"):
            yield Static(table, id="help-table")
            yield Label("Esc or ? closes this help", classes="hint")

    async def action_dismiss(self, result: Any = None) -> None:
        self.dismiss(None)


class FlagNoteScreen(ModalScreen[str | None]):
    """Ask for the note that goes with a flag. Enter saves, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="flag-box"):
            yield Label("Flag this item — what is wrong? (Enter saves, Esc cancels)")
            yield Input(placeholder="e.g. ambiguous: sarcasm", id="flag-note")

    def on_mount(self) -> None:
        self.query_one("#flag-note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        note = event.value.strip()
        if not note:
            self.notify("a flag needs a note", severity="warning")
            return
        self.dismiss(note)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SpanEditorScreen(ModalScreen[list[dict[str, Any]] | None]):
    """Edit typed spans from the keyboard.

    ←/→ move between tokens, shift+←/→ grow a selection, ``[`` / ``]`` set its start /
    end at the cursor, Tab / shift+Tab jump between spans, a label key types the
    selection (or re-types the span under the cursor), Delete removes the span under the
    cursor, Enter saves the spans as the decision, Esc clears the selection or cancels.
    """

    BINDINGS = [
        Binding("left", "move(-1)", "prev token", show=False),
        Binding("right", "move(1)", "next token", show=False),
        Binding("home", "edge(0)", "first token", show=False),
        Binding("end", "edge(1)", "last token", show=False),
        Binding("shift+left", "grow(-1)", "grow left", show=False),
        Binding("shift+right", "grow(1)", "grow right", show=False),
        Binding("left_square_bracket", "mark_start", "set start", show=False),
        Binding("right_square_bracket", "mark_end", "set end", show=False),
        Binding("tab", "jump(1)", "next span", show=False, priority=True),
        Binding("shift+tab", "jump(-1)", "prev span", show=False, priority=True),
        Binding("delete,backspace", "delete", "delete span", show=False),
        Binding("enter", "save", "save", show=False),
        Binding("escape", "cancel", "cancel", show=False),
    ]

    def __init__(
        self, text: str, spans: list[dict[str, Any]], labels: list[str], keys: dict[str, str]
    ) -> None:
        super().__init__()
        self.text = text
        self.labels = labels
        self.keys = keys
        self.by_key = {key: label for label, key in keys.items()}
        self.tokens = tokenize(text) or [(0, len(text))]
        self.spans: list[dict[str, Any]] = [
            {"start": int(s["start"]), "end": int(s["end"]), "label": str(s["label"])}
            for s in spans
            if 0 <= int(s["start"]) < int(s["end"]) <= len(text)
        ]
        self.cursor = self._token_at(self.spans[0]["start"]) if self.spans else 0
        self.start: int | None = None  # selection start (token index)
        self.end: int | None = None

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="span-box"):
            yield Label("Edit spans", classes="title")
            with VerticalScroll(id="span-text-scroll"):
                yield Static(id="span-text")
            yield Static(id="span-legend")
            yield Static(id="span-list")
            yield Label(
                "←/→ move  shift+←/→ select  [ ] start/end  tab next span  "
                "key: type  del: delete  enter: save  esc: cancel",
                classes="hint",
            )

    def on_mount(self) -> None:
        self._redraw()

    # -- state helpers ----------------------------------------------------------------

    def _token_at(self, char: int) -> int:
        for i, (s, e) in enumerate(self.tokens):
            if s <= char < e or char < s:
                return i
        return len(self.tokens) - 1

    def selection(self) -> tuple[int, int]:
        """The selected character range (a single token at the cursor when none set)."""
        a = self.start if self.start is not None else self.cursor
        b = self.end if self.end is not None else self.cursor
        a, b = min(a, b), max(a, b)
        return self.tokens[a][0], self.tokens[b][1]

    def _spans_overlapping(self, start: int, end: int) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["start"] < end and start < s["end"]]

    def result(self) -> list[dict[str, Any]]:
        """The spans in canonical form: sorted, with their text."""
        out = [
            {
                "start": s["start"],
                "end": s["end"],
                "text": self.text[s["start"] : s["end"]],
                "label": s["label"],
            }
            for s in self.spans
        ]
        return sorted(out, key=lambda s: (s["start"], s["end"], s["label"]))

    def _redraw(self) -> None:
        has_sel = self.start is not None or self.end is not None
        cur = self.tokens[self.cursor]
        self.query_one("#span-text", Static).update(
            highlight_spans(
                self.text,
                self.spans,
                self.labels,
                cursor=cur,
                selection=self.selection() if has_sel else None,
            )
        )
        legend = Text("types: ", style="bold")
        for label in self.labels:
            key = self.keys.get(label)
            if key:
                legend.append(f" {key} ", style="bold reverse")
                legend.append(f" {label}  ", style=label_color(self.labels, label))
        self.query_one("#span-legend", Static).update(legend)
        listing = Text(f"{len(self.spans)} span(s): ", style="bold")
        for s in self.result():
            listing.append(f"{s['text']}", style=label_color(self.labels, s["label"]))
            listing.append(f" [{s['label']}]  ", style="dim")
        self.query_one("#span-list", Static).update(listing)

    # -- actions ----------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.cursor = min(max(self.cursor + delta, 0), len(self.tokens) - 1)
        self.start = self.end = None
        self._redraw()

    def action_edge(self, last: int) -> None:
        self.cursor = len(self.tokens) - 1 if last else 0
        self.start = self.end = None
        self._redraw()

    def action_grow(self, delta: int) -> None:
        if self.start is None:
            self.start = self.cursor
        self.cursor = min(max(self.cursor + delta, 0), len(self.tokens) - 1)
        self.end = self.cursor
        self._redraw()

    def action_mark_start(self) -> None:
        self.start = self.cursor
        if self.end is None or self.end < self.cursor:
            self.end = self.cursor
        self._redraw()

    def action_mark_end(self) -> None:
        self.end = self.cursor
        if self.start is None or self.start > self.cursor:
            self.start = self.cursor
        self._redraw()

    def action_jump(self, delta: int) -> None:
        if not self.spans:
            return
        ordered = sorted(self.spans, key=lambda s: s["start"])
        here = self.tokens[self.cursor][0]
        if delta > 0:
            nxt = next((s for s in ordered if s["start"] > here), ordered[0])
        else:
            nxt = next((s for s in reversed(ordered) if s["start"] < here), ordered[-1])
        self.cursor = self._token_at(nxt["start"])
        self.start = self.cursor
        self.end = self._token_at(nxt["end"] - 1)
        self._redraw()

    def action_delete(self) -> None:
        start, end = self.selection()
        doomed = self._spans_overlapping(start, end)
        if not doomed:
            self.notify("no span here to delete", severity="warning")
            return
        self.spans = [s for s in self.spans if s not in doomed]
        self.start = self.end = None
        self._redraw()

    def set_label(self, label: str) -> None:
        """Type the selection as ``label``: re-type an identical span or replace overlaps."""
        start, end = self.selection()
        if self.start is None and self.end is None:
            # No explicit selection: re-type the span under the cursor, if any.
            under = self._spans_overlapping(start, end)
            if len(under) == 1:
                start, end = under[0]["start"], under[0]["end"]
        self.spans = [s for s in self.spans if not (s["start"] < end and start < s["end"])]
        self.spans.append({"start": start, "end": end, "label": label})
        self.start = self.end = None
        self._redraw()

    def on_key(self, event: events.Key) -> None:
        label = self.by_key.get(event.character or "")
        if label is not None:
            event.stop()
            event.prevent_default()
            self.set_label(label)

    def action_save(self) -> None:
        self.dismiss(self.result())

    def action_cancel(self) -> None:
        if self.start is not None or self.end is not None:
            self.start = self.end = None
            self._redraw()
            return
        self.dismiss(None)
