"""The panes of the main review screen. Each one renders state it is given; the screen
(``app.ReviewScreen``) owns the queue and decides what to show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from autolabel.tui.image_view import ImageView
from autolabel.tui.images import BoxState, image_ref
from autolabel.tui.render import TaskLike, label_color, render_item, render_suggestion


class ItemPane(VerticalScroll, can_focus=False):
    """The item's fields, and its image when it has one; long text scrolls (PageUp/PageDown)."""

    def __init__(self, *, image_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_mode = image_mode

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="item-body")
        yield ImageView(self.image_mode, id="item-image")

    def show(
        self, task: TaskLike | None, empty_message: str = "", boxes: BoxState | None = None
    ) -> None:
        body = self.query_one("#item-body", Static)
        view = self.query_one("#item-image", ImageView)
        if task is None:
            body.update(Text(empty_message, style="bold"))
            view.show(None)
        else:
            body.update(render_item(task))
            view.show(image_ref(task.fields), boxes, task.labels)
        self.scroll_home(animate=False)

    def redraw_boxes(self, task: TaskLike, boxes: BoxState) -> None:
        """The reviewer changed a box: draw the picture and the list again."""
        self.query_one("#item-image", ImageView).show(image_ref(task.fields), boxes, task.labels)


class SuggestionPane(Static):
    """What the model said, how sure it was, and why the item is in the queue."""

    def show(self, task: TaskLike | None) -> None:
        self.update(render_suggestion(task) if task is not None else "")


class GuidelinesPane(VerticalScroll, can_focus=False):
    """Guidelines and label descriptions, as Markdown. Hidden until ``g``."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Markdown(id="guidelines-md")

    def show(self, guidelines: str, descriptions: dict[str, str], labels: list[str]) -> None:
        lines = ["## Guidelines", "", guidelines.strip() or "_No guidelines given._"]
        described = [(name, descriptions.get(name, "")) for name in labels]
        if any(text for _, text in described):
            lines += ["", "## Labels", ""]
            lines += [
                f"- **{name}** — {text}" if text else f"- **{name}**" for name, text in described
            ]
        self.query_one("#guidelines-md", Markdown).update("\n".join(lines))


@dataclass
class LabelState:
    """The label list's state: pure data so it is easy to reason about."""

    labels: list[str]
    keys: dict[str, str]
    multi: bool = False
    ticked: set[str] | None = None
    highlight: int = 0  # index into ``visible()``
    filter_text: str = ""
    moved: bool = False  # the reviewer moved the highlight away from the suggestion

    def visible(self) -> list[str]:
        needle = self.filter_text.strip().casefold()
        if not needle:
            return list(self.labels)
        return [label for label in self.labels if needle in label.casefold()]

    def highlighted(self) -> str | None:
        vis = self.visible()
        if not vis:
            return None
        return vis[min(self.highlight, len(vis) - 1)]

    def move(self, delta: int) -> None:
        vis = self.visible()
        if vis:
            self.highlight = (min(self.highlight, len(vis) - 1) + delta) % len(vis)
            self.moved = True

    def toggle(self, label: str) -> None:
        ticked = self.ticked if self.ticked is not None else set()
        ticked.symmetric_difference_update({label})
        self.ticked = ticked

    def working_set(self) -> list[str]:
        """The ticked labels in ontology order (the canonical multi-label form)."""
        ticked = self.ticked or set()
        return [label for label in self.labels if label in ticked]


class LabelList(Static):
    """The labels with their keys; ticks for multi-label; a highlight moved with ↑/↓."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = LabelState(labels=[], keys={})

    def set_state(self, state: LabelState) -> None:
        self.state = state
        self.refresh_list()

    def refresh_list(self) -> None:
        st = self.state
        vis = st.visible()
        current = st.highlighted()
        lines: list[Text] = []
        if st.filter_text:
            lines.append(Text(f"matching '{st.filter_text}'", style="bold"))
        for label in vis:
            key = st.keys.get(label, " ")
            mark = ""
            if st.multi:
                mark = "[x] " if label in (st.ticked or set()) else "[ ] "
            line = Text.assemble(
                (f" {key} ", "bold reverse"),
                " ",
                mark,
                (label, label_color(st.labels, label)),
            )
            if label == current:
                line.stylize("bold on #3a3f4b")
                line.append("  ◀", style="bold")
            lines.append(line)
        if not vis:
            lines.append(Text("(no label matches)", style="dim"))
        self.update(Text("\n").join(lines))


class StatusBar(Static):
    """Progress, pace and agreement with the model."""

    def show(
        self,
        *,
        done: int,
        remaining: int,
        mine: int,
        pace: float | None,
        agreement: float | None,
        message: str = "",
    ) -> None:
        pace_text = f"{pace:.1f}/min" if pace is not None else "—/min"
        agree_text = f"{agreement:.0%}" if agreement is not None else "—"
        text = Text.assemble(
            ("done ", "dim"),
            (f"{done}", "bold"),
            ("  remaining ", "dim"),
            (f"{remaining}", "bold"),
            ("  you ", "dim"),
            (f"{mine}", "bold"),
            ("  pace ", "dim"),
            (pace_text, "bold"),
            ("  agree w/ model ", "dim"),
            (agree_text, "bold"),
        )
        if message:
            text.append(f"   {message}", style="italic")
        self.update(text)
