"""The review app: one screen that shows a claimed task and sends every keypress that
decides something straight to the queue (the app keeps no unsaved state).

The queue is injected (``ReviewApp(queue, reviewer)``), so tests drive the real
``ReviewQueue`` on a temporary SQLite file and the CLI builds it from settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from autolabel.errors import AutolabelError, TaskGoneError
from autolabel.review.labels import label_key
from autolabel.tui.images import BoxState
from autolabel.tui.keys import effective_keys
from autolabel.tui.panes import (
    GuidelinesPane,
    ItemPane,
    LabelList,
    LabelState,
    StatusBar,
    SuggestionPane,
)
from autolabel.tui.render import span_source
from autolabel.tui.screens import FlagNoteScreen, HelpScreen, SpanEditorScreen

if TYPE_CHECKING:
    from autolabel.review.queue import ReviewQueue
    from autolabel.review.views import QueueStats, TaskView

# How often the footer's counts are re-read from the database (when something changed).
# Between reads the footer counts locally: stats() scans the whole queue (~1 s at 100k).
STATS_EVERY_S = 30.0

EMPTY_MESSAGE = (
    "Nothing left to review in this queue. 🎉\n\nPress u to undo your last decision, or q to quit."
)
IDLE_MESSAGE = (
    "You were idle for {idle}, so item {item} went back to the queue for others.\n\n"
    "Press Enter to continue reviewing, u to undo your last decision, or q to quit."
)

# Events that count as the reviewer being at the keyboard (for --idle-release).
ACTIVITY_EVENTS = (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)


class ReviewScreen(Screen[None]):
    """The main screen: item, suggestion, labels, guidelines, status."""

    AUTO_FOCUS = None  # keys go to the screen; the filter box takes focus only on '/'

    BINDINGS = [
        Binding("enter", "accept", "accept"),
        Binding("s", "skip", "skip"),
        Binding("f", "flag", "flag"),
        Binding("u", "undo", "undo"),
        Binding("e", "edit_spans", "edit spans"),
        Binding("delete,backspace", "delete_box", "delete box"),
        Binding("slash", "filter", "filter"),
        Binding("g", "guidelines", "guidelines"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_review", "quit"),
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("space", "toggle", "toggle", show=False),
        Binding("escape", "close_filter", "close filter", show=False),
        Binding("pageup", "scroll_item(-1)", "scroll up", show=False),
        Binding("pagedown", "scroll_item(1)", "scroll down", show=False),
    ]

    def __init__(
        self,
        queue: ReviewQueue,
        reviewer: str,
        clock: Callable[[], float],
        *,
        adjudicate: bool = False,
        heartbeat_s: float | None = None,
        idle_release_s: float | None = None,
        image_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.reviewer = reviewer
        self.clock = clock
        # How images are drawn (tui.image_view.MODES); None: AUTOLABEL_TUI_IMAGES or auto.
        self.image_mode = image_mode
        # Boxes tasks: the boxes being edited (None for other tasks).
        self.boxes: BoxState | None = None
        # Adjudicator mode: serves flagged and disputed items; a decision is final.
        self.adjudicate = adjudicate
        # The lease on the shown item is renewed this often (default: a third of the
        # lease, so two heartbeats may fail before it runs out).
        lease_s = queue.lease.total_seconds() if hasattr(queue, "lease") else 600.0
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else max(lease_s / 3, 1.0)
        # No keypress for this long (app clock): the item goes back to the queue.
        self.idle_release_s = idle_release_s
        self.last_active = clock()
        self.idle = False  # released for idleness; Enter claims again
        self._renewing = False
        self._lease_lost: set[int] = set()  # tasks whose loss was already announced
        self.current: TaskView | None = None
        self.keys: dict[str, str] = {}
        self.by_key: dict[str, str] = {}
        self.shown_at = clock()
        self.stats: QueueStats | None = None
        self._stats_dirty = False
        self._stats_running = False

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="body"):
            yield ItemPane(id="item", image_mode=self.image_mode)
            with Vertical(id="side"):
                yield SuggestionPane(id="suggestion")
                yield LabelList(id="labels")
                # Disabled (unfocusable) until '/', so label keys never land in it.
                yield Input(placeholder="filter labels…", id="filter", disabled=True)
            yield GuidelinesPane(id="guidelines")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#item").border_title = "Item"
        self.query_one("#suggestion").border_title = "Model"
        self.query_one("#labels").border_title = "Labels"
        self.query_one("#guidelines").border_title = "Guidelines (g)"
        self.query_one("#filter", Input).display = False
        self.query_one("#guidelines", GuidelinesPane).display = False
        # The first paint shows real numbers: one synchronous stats call at start.
        self._show_stats(self.queue.stats(self.reviewer))
        self.set_interval(STATS_EVERY_S, self._tick_stats)
        self.set_interval(self.heartbeat_s, self._heartbeat)
        if self.idle_release_s is not None:
            # Checked at least every heartbeat, and often enough that the release
            # lands within ~10% of the limit.
            every = min(self.idle_release_s / 10, self.heartbeat_s, 30.0)
            self.set_interval(max(every, 0.01), self._check_idle)
        self.show_task(self._call(self._claim))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that do nothing for this item's task type (the footer follows)."""
        kind = self.current.task_type if self.current is not None else None
        if action == "edit_spans":
            return kind == "spans"
        if action == "delete_box":
            return kind == "boxes"
        if action == "filter":
            return kind in ("classify", "multi_label")
        return True

    # -- showing ----------------------------------------------------------------------

    def show_task(self, task: TaskView | None, empty_message: str = EMPTY_MESSAGE) -> None:
        """Render ``task`` (None: the queue is empty, or ``empty_message``) and start its
        clock."""
        self.current = task
        if task is not None:
            self.idle = False
        self.refresh_bindings()
        self.shown_at = self.clock()
        self._close_filter()
        title = self.query_one("#title", Static)
        item = self.query_one("#item", ItemPane)
        labels = self.query_one("#labels", LabelList)
        self.query_one("#suggestion", SuggestionPane).show(task)
        self.boxes = None
        if task is None:
            self.keys, self.by_key = {}, {}
            title.update(f"autolabel review · queue {self.queue_name} · {self.reviewer}")
            item.show(None, empty_message)
            labels.set_state(LabelState(labels=[], keys={}))
            return
        self.keys = effective_keys(task.labels, task.label_keys)
        self.by_key = {key: label for label, key in self.keys.items()}
        need = ""
        if task.required_decisions > 1:
            need = f" · decision {task.decisions_so_far + 1} of {task.required_decisions}"
        title.update(
            f"autolabel review · queue {task.queue} · {self.reviewer} · "
            f"{task.task_type.replace('_', '-')}{need}"
        )
        if task.task_type == "boxes":
            self.boxes = BoxState.from_suggestion(task.suggestion)
        item.show(task, boxes=self.boxes)
        multi = task.task_type == "multi_label"
        state = LabelState(labels=list(task.labels), keys=self.keys, multi=multi)
        if multi:
            state.ticked = set(task.suggestion or [])
            state.highlight = 0
        elif task.task_type == "classify" and task.suggestion in task.labels:
            state.highlight = task.labels.index(task.suggestion)
        labels.set_state(state)
        self._follow_box()
        self.query_one("#guidelines", GuidelinesPane).show(
            task.guidelines, task.label_descriptions, task.labels
        )

    @property
    def queue_name(self) -> str:
        return str(getattr(self.queue, "queue", "default"))

    def _show_stats(self, stats: QueueStats) -> None:
        self.stats = stats
        self.query_one("#status", StatusBar).show(
            done=stats.decided,
            remaining=stats.remaining,
            mine=stats.done_by_reviewer.get(self.reviewer, 0),
            pace=stats.pace_per_min,
            agreement=stats.agreement_with_model,
        )

    def _count_locally(self, action: str, task: TaskView, label: Any = None) -> None:
        """Move the footer's numbers at once; the real counts follow from ``stats``.

        ``stats`` reads every task of the queue (hundreds of ms at 100k items), so it
        runs off the UI thread and at most every ``STATS_EVERY_S`` seconds.
        """
        st = self.stats
        if st is None:
            return
        if action == "decide":
            mine = st.done_by_reviewer.get(self.reviewer, 0)
            agree = label_key(label) == label_key(task.suggestion)
            old = st.agreement_with_model if st.agreement_with_model is not None else 0.0
            final = task.decisions_so_far + 1 >= task.required_decisions
            st = replace(
                st,
                decided=st.decided + final,
                pending=max(st.pending - final, 0),
                done_by_reviewer={**st.done_by_reviewer, self.reviewer: mine + 1},
                agreement_with_model=(old * mine + agree) / (mine + 1),
            )
        elif action == "flag":
            st = replace(st, flagged=st.flagged + 1, pending=max(st.pending - 1, 0))
        self._show_stats(st)
        self._stats_dirty = True

    def _tick_stats(self) -> None:
        if self._stats_dirty and not self._stats_running:
            self._stats_dirty = False
            self._stats_running = True
            self.refresh_stats()

    @work(thread=True, group="stats")
    def refresh_stats(self) -> None:
        """The true counts, off the UI thread (a full pass over the queue's tasks)."""
        try:
            stats = self.queue.stats(self.reviewer)
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._show_stats, stats)
        finally:
            self._stats_running = False

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run a queue call; a queue error becomes a notification, not a crash."""
        try:
            return fn()
        except AutolabelError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return None

    def _moved_on(self, gone: TaskGoneError) -> None:
        """The task left us meanwhile (settled, taken, withdrawn): say so in one line and
        serve the next item. The queue already kept our label as a second opinion."""
        self.notify(gone.message, severity="warning", timeout=10)
        self._stats_dirty = True
        self.show_task(self._call(self._claim))

    # -- lease heartbeat and idle release ---------------------------------------------

    def touch(self) -> None:
        """The reviewer did something: the idle clock starts again."""
        self.last_active = self.clock()

    def _heartbeat(self) -> None:
        task = self.current
        if task is None or self._renewing or task.task_id in self._lease_lost:
            return
        self._renewing = True
        self.renew_lease(task.task_id)

    @work(thread=True, group="lease")
    def renew_lease(self, task_id: int) -> None:
        """Extend the lease off the UI thread (a write that may wait on other reviewers)."""
        try:
            self.queue.renew(task_id, self.reviewer)
        except AutolabelError as exc:
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._renew_failed, task_id, exc)
        finally:
            self._renewing = False

    def _renew_failed(self, task_id: int, exc: AutolabelError) -> None:
        # A heartbeat racing a decide on the same task fails harmlessly: ignore it.
        # Otherwise warn once but stay on the item (a key meant for it must never land
        # on another one); the next decide or skip moves on and keeps the choice.
        if self.current is None or self.current.task_id != task_id:
            return
        self._lease_lost.add(task_id)
        text = exc.message if isinstance(exc, TaskGoneError) else str(exc)
        if isinstance(exc, TaskGoneError) and exc.reason in ("decided", "taken", "adjudication"):
            text += "; deciding it keeps your choice as a second opinion"
        self.notify(text, severity="warning")

    def _check_idle(self) -> None:
        task = self.current
        if self.idle_release_s is None or task is None or self.idle:
            return
        idle_for = self.clock() - self.last_active
        if idle_for < self.idle_release_s:
            return
        self._call(lambda: self.queue.release(task.task_id, self.reviewer))
        self.show_task(None, IDLE_MESSAGE.format(idle=_duration(idle_for), item=task.external_id))
        self.idle = True
        self.notify(
            f"idle for {_duration(idle_for)}: item {task.external_id} went back to the queue; "
            "press Enter to continue",
            severity="warning",
        )

    def resume(self) -> None:
        """Back from idle release: claim the next item (possibly the same one)."""
        self.idle = False
        self.touch()
        self.show_task(self._call(self._claim))

    def _after_action(self, action: str, task: TaskView, label: Any = None) -> None:
        self._count_locally(action, task, label)
        self.show_task(self._call(self._claim))

    def _claim(self) -> TaskView | None:
        return self.queue.claim(self.reviewer, adjudicate=self.adjudicate)

    # -- deciding ---------------------------------------------------------------------

    def decide(self, label: Any) -> None:
        """Commit ``label`` for the current task and move to the next one."""
        task = self.current
        if task is None:
            self.notify("the queue is empty", severity="warning")
            return
        seconds = round(max(self.clock() - self.shown_at, 0.0), 3)
        # On a task claimed for adjudication the queue records this as the final word.
        try:
            done = self.queue.decide(task.task_id, self.reviewer, label, seconds=seconds)
        except TaskGoneError as gone:
            self._moved_on(gone)
            return
        except AutolabelError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return
        self._after_action("decide", task, done.label)

    def pick(self, label: str) -> None:
        """A label key: classify decides at once; multi-label toggles the working set."""
        task = self.current
        if task is None:
            return
        if task.task_type == "classify":
            self.decide(label)
        elif task.task_type == "multi_label":
            labels = self.query_one("#labels", LabelList)
            labels.state.toggle(label)
            labels.refresh_list()
        elif task.task_type == "spans":
            self.notify("press e to edit spans", severity="information")
        elif task.task_type == "boxes" and self.boxes is not None:
            if self.boxes.current() is None:
                self.notify("no box to relabel (drawing boxes is not supported)", timeout=4)
                return
            self.boxes.relabel(label)
            self._redraw_boxes()

    def on_key(self, event: events.Key) -> None:
        if isinstance(self.focused, Input):
            return
        label = self.by_key.get(event.character or "")
        if label is not None:
            event.stop()
            event.prevent_default()
            self.pick(label)

    def action_accept(self) -> None:
        if self.idle:
            self.resume()
            return
        task = self.current
        if task is None:
            self.notify("the queue is empty", severity="warning")
            return
        state = self.query_one("#labels", LabelList).state
        if task.task_type == "multi_label":
            self.decide(state.working_set())
        elif task.task_type == "boxes" and self.boxes is not None:
            self.decide(self.boxes.decision())
        elif task.task_type == "classify":
            if state.moved or task.suggestion is None:
                chosen = state.highlighted()
                if task.suggestion is None and not state.moved:
                    self.notify("no model suggestion: pick a label", severity="warning")
                    return
                self.decide(chosen)
            else:
                self.decide(task.suggestion)
        else:
            if task.suggestion is None:
                self.notify("no model suggestion to accept", severity="warning")
                return
            self.decide(task.suggestion)

    def _redraw_boxes(self) -> None:
        if self.current is not None and self.boxes is not None:
            self.query_one("#item", ItemPane).redraw_boxes(self.current, self.boxes)
            self._follow_box()

    def _follow_box(self) -> None:
        """Boxes: the label list highlights the selected box's label (what a key changes)."""
        box = self.boxes.current() if self.boxes is not None else None
        labels = self.query_one("#labels", LabelList)
        if box is not None and box.label in labels.state.labels:
            labels.state.highlight = labels.state.labels.index(box.label)
            labels.refresh_list()

    def action_move(self, delta: int) -> None:
        if self.boxes is not None:  # boxes: up/down select a box
            self.boxes.move(delta)
            self._redraw_boxes()
            return
        labels = self.query_one("#labels", LabelList)
        labels.state.move(delta)
        labels.refresh_list()

    def action_toggle(self) -> None:
        task = self.current
        if task is not None and self.boxes is not None:  # boxes: space accepts the box
            self.boxes.accept()
            self._redraw_boxes()
            return
        if task is None or task.task_type != "multi_label":
            return
        labels = self.query_one("#labels", LabelList)
        current = labels.state.highlighted()
        if current is not None:
            labels.state.toggle(current)
            labels.refresh_list()

    def action_delete_box(self) -> None:
        if self.boxes is None or self.boxes.current() is None:
            return
        self.boxes.delete()
        self._redraw_boxes()

    def action_skip(self) -> None:
        task = self.current
        if task is None:
            return
        try:
            self.queue.skip(task.task_id, self.reviewer)
        except TaskGoneError as gone:
            self._moved_on(gone)
            return
        except AutolabelError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return
        self._after_action("skip", task)

    def action_flag(self) -> None:
        task = self.current
        if task is None:
            return

        def flagged(note: str | None) -> None:
            if not note:
                return
            if self._call(lambda: self.queue.flag(task.task_id, self.reviewer, note)):
                self._after_action("flag", task)

        self.app.push_screen(FlagNoteScreen(), flagged)

    def action_undo(self) -> None:
        current = self.current
        previous = self._call(lambda: self.queue.undo(self.reviewer))
        if previous is None:
            self.notify("nothing to undo", severity="warning")
            return
        if current is not None and current.task_id != previous.task_id:
            # The undone task is ours again; hand the one on screen back to the queue.
            self._call(lambda: self.queue.release(current.task_id, self.reviewer))
        self.show_task(previous)
        self._stats_dirty = True
        self._tick_stats()

    def action_edit_spans(self) -> None:
        task = self.current
        if task is None or task.task_type != "spans":
            self.notify("e edits spans; this is not a span task", severity="warning")
            return
        spans = task.suggestion if isinstance(task.suggestion, list) else []

        def saved(result: list[dict[str, Any]] | None) -> None:
            if result is not None:
                self.decide(result)

        self.app.push_screen(
            SpanEditorScreen(span_source(task), spans, task.labels, self.keys), saved
        )

    def action_filter(self) -> None:
        if self.current is None or self.current.task_type not in ("classify", "multi_label"):
            return
        box = self.query_one("#filter", Input)
        box.disabled = False
        box.display = True
        box.value = ""
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        labels = self.query_one("#labels", LabelList)
        labels.state.filter_text = event.value
        labels.state.highlight = 0
        labels.refresh_list()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        event.stop()
        visible = self.query_one("#labels", LabelList).state.visible()
        if len(visible) != 1:
            self.notify(f"{len(visible)} labels match; type more", severity="warning")
            return
        self._close_filter()
        self.pick(visible[0])

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            box.disabled = True
            self.set_focus(None)
        labels = self.query_one("#labels", LabelList)
        if labels.state.filter_text:
            labels.state.filter_text = ""
            labels.refresh_list()

    def action_close_filter(self) -> None:
        self._close_filter()

    def action_guidelines(self) -> None:
        pane = self.query_one("#guidelines", GuidelinesPane)
        pane.display = not pane.display

    def action_help(self) -> None:
        labels = self.current.labels if self.current is not None else []
        self.app.push_screen(HelpScreen(self.keys, labels))

    def action_scroll_item(self, direction: int) -> None:
        item = self.query_one("#item", ItemPane)
        if direction < 0:
            item.scroll_page_up(animate=False)
        else:
            item.scroll_page_down(animate=False)

    def action_quit_review(self) -> None:
        task = self.current
        if task is not None:
            self._call(lambda: self.queue.release(task.task_id, self.reviewer))
            self.current = None
        self.app.exit()


class ReviewApp(App[None]):
    """``autolabel review``: label the queued items from the keyboard.

    ``clock`` times each item (seconds from shown to decided); tests inject a fake one.
    """

    CSS_PATH = "styles.tcss"
    TITLE = "autolabel review"
    ENABLE_COMMAND_PALETTE = False
    # ctrl+q must release the claim too, like q.
    BINDINGS = [Binding("ctrl+q", "quit_review", "quit", show=False, priority=True)]

    def __init__(
        self,
        queue: ReviewQueue,
        reviewer: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        adjudicate: bool = False,
        heartbeat_s: float | None = None,
        idle_release_s: float | None = None,
        image_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.reviewer = reviewer
        self.clock = clock
        self.adjudicate = adjudicate
        self.heartbeat_s = heartbeat_s
        self.idle_release_s = idle_release_s
        self.image_mode = image_mode

    def get_default_screen(self) -> Screen[Any]:
        return ReviewScreen(
            self.queue,
            self.reviewer,
            self.clock,
            adjudicate=self.adjudicate,
            heartbeat_s=self.heartbeat_s,
            idle_release_s=self.idle_release_s,
            image_mode=self.image_mode,
        )

    async def on_event(self, event: events.Event) -> None:
        # Every key or click, on any screen (modals included), counts as activity.
        if isinstance(event, ACTIVITY_EVENTS) and self.screen_stack:
            screen = self.screen_stack[0]
            if isinstance(screen, ReviewScreen):
                screen.touch()
        await super().on_event(event)

    def action_quit_review(self) -> None:
        self.review.action_quit_review()

    @property
    def review(self) -> ReviewScreen:
        """The main screen (also while a modal is open on top of it)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, ReviewScreen)
        return screen


def _duration(seconds: float) -> str:
    """'45 s', '12 min', '2.5 h': how long, for a notice."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
