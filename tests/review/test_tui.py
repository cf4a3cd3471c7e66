"""The review TUI under Textual's Pilot, driving the real ReviewQueue on a SQLite file.

Every test asserts on what the queue STORED (decisions table, task status), not on
what the screen happened to show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Prediction, ReviewClaim, ReviewTask
from autolabel.tui import ReviewApp
from autolabel.tui.panes import ItemPane, LabelList, StatusBar, SuggestionPane
from autolabel.tui.screens import FlagNoteScreen, HelpScreen, SpanEditorScreen
from tests.review.factories import FakeClock, make_dataset, make_run, make_tasks, ontology

SIZE = (120, 36)
REVIEWER = "alice"

SENTIMENT = {
    "name": "sentiment",
    "task": "classify",
    "guidelines": "Judge the **writer's** attitude, not the topic.",
    "labels": [
        {"name": "positive", "description": "the writer likes it"},
        {"name": "negative", "description": "the writer dislikes it"},
        {"name": "neutral", "description": "no attitude, or mixed"},
    ],
}

EMOTIONS = {
    "name": "emotions",
    "task": "multi_label",
    "guidelines": "Tick every emotion the writer expresses.",
    "labels": [{"name": "anger"}, {"name": "joy"}, {"name": "fear"}, {"name": "surprise"}],
}

NER = {
    "name": "ner",
    "task": "spans",
    "guidelines": "Mark people, places and organisations.",
    "labels": [
        {"name": "PER", "description": "a person"},
        {"name": "LOC", "description": "a place"},
        {"name": "ORG", "description": "an organisation"},
    ],
}

REVIEWS = [
    "The soup was cold but the staff were lovely and apologised twice.",
    "I would not recommend this phone to anyone.",
    "Delivery arrived on Tuesday.",
]

NER_TEXT = "Ada Lovelace met Charles Babbage in London at the Royal Society."


class Tick:
    """The app's clock (seconds per item); tests move it by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def build_classify(url: str, clock: FakeClock) -> tuple[Database, ReviewQueue]:
    """Three sentiment items queued in this order, with distributions and reasons."""
    db = Database(url)
    ids = make_dataset(db, REVIEWS, name="reviews")
    run_id = make_run(
        db, ids, ["positive", "negative", "neutral"], [0.55, 0.62, 0.48], ont=ontology(SENTIMENT)
    )
    tasks = make_tasks(db, run_id, reasons=["low_confidence"])
    with db.session() as s:
        for i, task_id in enumerate(tasks):  # served in item order
            row = s.get(ReviewTask, task_id)
            assert row is not None
            row.priority = float(i)
            s.add(row)
        first = s.get(ReviewTask, tasks[0])
        assert first is not None
        first.reasons = ["low_confidence", "run_disagreement", "rule:sarcasm"]
        first.alternatives = {"gpt-4o-mini": "negative"}
        s.add(first)
        s.commit()
    return db, ReviewQueue(db, clock=clock)


def build_multi(url: str, clock: FakeClock) -> tuple[Database, ReviewQueue]:
    db = Database(url)
    ids = make_dataset(db, ["So happy and a bit scared about the move!"], name="emo")
    run_id = make_run(db, ids, [["joy"]], [0.6], ont=ontology(EMOTIONS))
    with db.session() as s:
        pred = s.exec(select(Prediction).where(Prediction.run_id == run_id)).one()
        pred.distribution = {"anger": 0.05, "joy": 0.93, "fear": 0.41, "surprise": 0.2}
        s.add(pred)
        s.commit()
    make_tasks(db, run_id, reasons=["low_confidence"])
    return db, ReviewQueue(db, clock=clock)


def ner_spans() -> list[dict[str, Any]]:
    out = []
    for text, label in [("Ada Lovelace", "PER"), ("London", "LOC"), ("Royal Society", "LOC")]:
        start = NER_TEXT.index(text)
        out.append({"start": start, "end": start + len(text), "text": text, "label": label})
    return out


def build_spans(url: str, clock: FakeClock) -> tuple[Database, ReviewQueue]:
    db = Database(url)
    ids = make_dataset(db, [NER_TEXT], name="ner")
    run_id = make_run(db, ids, [ner_spans()], [0.5], ont=ontology(NER))
    with db.session() as s:
        pred = s.exec(select(Prediction).where(Prediction.run_id == run_id)).one()
        pred.distribution = [0.97, 0.9, 0.35]
        s.add(pred)
        s.commit()
    make_tasks(db, run_id, reasons=["low_confidence"])
    return db, ReviewQueue(db, clock=clock)


def decisions(db: Database) -> list[Decision]:
    with db.session() as s:
        return list(s.exec(select(Decision).order_by(col(Decision.id))).all())


def live(db: Database, action: str = "decide") -> list[Decision]:
    return [d for d in decisions(db) if d.action == action and not d.undone]


def task_row(db: Database, task_id: int) -> ReviewTask:
    with db.session() as s:
        task = s.get(ReviewTask, task_id)
        assert task is not None
        return task


def shown_task_id(app: ReviewApp) -> int | None:
    task = app.review.current
    return None if task is None else task.task_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def classify(sqlite_url: str, clock: FakeClock) -> tuple[Database, ReviewQueue]:
    return build_classify(sqlite_url, clock)


# -- classify -----------------------------------------------------------------------------


async def test_enter_accepts_the_suggestion_and_times_the_item(classify) -> None:
    db, queue = classify
    tick = Tick()
    app = ReviewApp(queue, REVIEWER, clock=tick)
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        tick.t += 4.5
        await pilot.press("enter")
        await pilot.pause()
        assert shown_task_id(app) not in (None, first)
    stored = live(db)
    assert [(d.task_id, d.label, d.reviewer, d.seconds) for d in stored] == [
        (first, "positive", REVIEWER, 4.5)
    ]
    assert task_row(db, first).status == "decided"  # type: ignore[arg-type]
    assert task_row(db, first).final_label == "positive"  # type: ignore[arg-type]


async def test_label_key_picks_another_label_at_once(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        keys = app.review.keys
        await pilot.press(keys["neutral"])
        await pilot.pause()
        second = shown_task_id(app)
        # Arrow down from the suggestion (negative) to neutral, then Enter picks it.
        await pilot.press("down", "enter")
        await pilot.pause()
    assert [(d.task_id, d.label) for d in live(db)] == [(first, "neutral"), (second, "neutral")]


async def test_filter_narrows_labels_and_enter_picks_the_last_one(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("slash", "n", "e")
        await pilot.pause()
        labels = app.review.query_one("#labels", LabelList)
        assert labels.state.visible() == ["negative", "neutral"]
        await pilot.press("enter")  # two left: nothing is decided
        await pilot.pause()
        assert live(db) == []
        await pilot.press("u")  # "neu" — typed into the filter, not an undo
        await pilot.press("enter")
        await pilot.pause()
    assert [(d.task_id, d.label) for d in live(db)] == [(first, "neutral")]
    assert [d for d in decisions(db) if d.action == "undo"] == []


async def test_skip_returns_the_task_to_the_queue(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("s")
        await pilot.pause()
        assert shown_task_id(app) != first
    skips = live(db, "skip")
    assert [(d.task_id, d.reviewer, d.label) for d in skips] == [(first, REVIEWER, None)]
    assert live(db) == []
    assert task_row(db, first).status == "skipped"  # type: ignore[arg-type]


async def test_flag_stores_the_note(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FlagNoteScreen)
        await pilot.press("enter")  # an empty note is refused
        await pilot.pause()
        assert isinstance(app.screen, FlagNoteScreen)
        await pilot.press(*"sarcasm?", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, FlagNoteScreen)
        assert shown_task_id(app) != first
    flags = live(db, "flag")
    assert [(d.task_id, d.note) for d in flags] == [(first, "sarcasm?")]
    assert task_row(db, first).status == "flagged"  # type: ignore[arg-type]


async def test_flag_cancelled_with_escape_stores_nothing(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("f", "x", "escape")
        await pilot.pause()
        assert shown_task_id(app) == first
    assert decisions(db) == []


async def test_undo_returns_to_the_previous_item_with_its_decision_undone(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press(app.review.keys["negative"])
        await pilot.pause()
        second = shown_task_id(app)
        await pilot.press("u")
        await pilot.pause()
        assert shown_task_id(app) == first
        # The item we left is free again, not held by us.
        with db.session() as s:
            held = s.exec(select(ReviewClaim.task_id).where(ReviewClaim.reviewer == REVIEWER))
            assert list(held) == [first]
        await pilot.press(app.review.keys["neutral"])
        await pilot.pause()
        assert shown_task_id(app) == second
    rows = decisions(db)
    assert [(d.action, d.task_id, d.undone) for d in rows] == [
        ("decide", first, True),
        ("undo", first, False),
        ("decide", first, False),
    ]
    assert [d.label for d in rows if d.action == "decide"] == ["negative", "neutral"]
    assert task_row(db, first).final_label == "neutral"  # type: ignore[arg-type]
    assert task_row(db, second).status == "claimed"  # type: ignore[arg-type]


async def test_undo_survives_a_restart(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("enter")
        await pilot.press("q")
    app = ReviewApp(ReviewQueue(Database(db.url), clock=queue.clock), REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await pilot.pause()
        assert shown_task_id(app) == first
        await pilot.press(app.review.keys["neutral"])
    assert [(d.task_id, d.label) for d in live(db)] == [(first, "neutral")]


async def test_quit_releases_the_claim_and_reopening_resumes(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        await pilot.press("enter")
        await pilot.pause()
        second = shown_task_id(app)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 or app.return_code is None
    with db.session() as s:
        assert s.exec(select(ReviewClaim)).all() == []
    assert task_row(db, second).status == "pending"  # type: ignore[arg-type]
    # A new process (new Database, new queue) picks up at the next pending item.
    reopened = ReviewApp(ReviewQueue(Database(db.url), clock=queue.clock), REVIEWER, clock=Tick())
    async with reopened.run_test(size=SIZE) as pilot:
        assert shown_task_id(reopened) == second
        await pilot.press("enter")
        await pilot.pause()
    assert [d.task_id for d in live(db)] == [first, second]


async def test_reopening_resumes_a_live_claim(classify, clock: FakeClock) -> None:
    db, queue = classify
    held = queue.claim(REVIEWER)  # e.g. the terminal was closed without q
    assert held is not None
    app = ReviewApp(ReviewQueue(Database(db.url), clock=clock), REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE):
        assert shown_task_id(app) == held.task_id


async def test_help_screen_lists_the_keys(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = _text(app.screen.query_one("#help-table"))
        assert "skip this item" in table and "undo" in table
        for label in ("positive", "negative", "neutral"):
            assert re.search(rf"\b{app.review.keys[label]}\s+label {label}\b", table)
        # A label key pressed on the help screen decides nothing.
        await pilot.press(app.review.keys["positive"])
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
    assert decisions(db) == []


async def test_panes_show_suggestion_reasons_alternatives_and_status(classify) -> None:
    db, queue = classify
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.review
        suggestion = _text(screen.query_one("#suggestion", SuggestionPane))
        assert "positive" in suggestion and "0.55" in suggestion
        assert "another run labelled it differently" in suggestion
        assert "review rule 'sarcasm' matched" in suggestion
        assert "gpt-4o-mini: negative" in suggestion
        item = _text(screen.query_one("#item-body"))
        assert REVIEWS[0] in item
        status = _text(screen.query_one("#status", StatusBar))
        assert "remaining 3" in status and "done 0" in status
        assert not screen.query_one("#guidelines").display
        await pilot.press("g")
        assert screen.query_one("#guidelines").display
        assert isinstance(screen.query_one("#item"), ItemPane)


def _text(widget: Any) -> str:
    """A widget's rendered text, as a reviewer would read it."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


async def test_empty_queue_says_so(sqlite_url: str, clock: FakeClock) -> None:
    db, queue = build_classify(sqlite_url, clock)
    for _ in range(3):
        task = queue.claim("bob")
        assert task is not None
        queue.decide(task.task_id, "bob", "positive")
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        assert shown_task_id(app) is None
        assert "Nothing left" in _text(app.review.query_one("#item-body"))
        await pilot.press("enter", "s")
    assert [d.reviewer for d in decisions(db)] == ["bob"] * 3


# -- multi-label -------------------------------------------------------------------------


async def test_multi_label_toggles_then_enter_accepts_the_working_set(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_multi(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        keys = app.review.keys
        labels = app.review.query_one("#labels", LabelList)
        assert labels.state.working_set() == ["joy"]  # starts from the suggestion
        await pilot.press(keys["fear"], keys["surprise"], keys["surprise"])
        # Highlight starts on the first label (anger): down once, space ticks joy off.
        await pilot.press("down", "space")
        await pilot.pause()
        assert labels.state.working_set() == ["fear"]
        assert live(db) == []  # toggling stores nothing until Enter
        await pilot.press(keys["anger"], "enter")
        await pilot.pause()
    assert [d.label for d in live(db)] == [["anger", "fear"]]


# -- spans --------------------------------------------------------------------------------


async def test_span_item_shows_spans_inline_and_enter_accepts_them(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_spans(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        item = _text(app.review.query_one("#item-body"))
        assert "Ada Lovelace[PER]" in item and "London[LOC]" in item
        await pilot.press("enter")
        await pilot.pause()
    assert [d.label for d in live(db)] == [ner_spans()]


async def test_span_editor_edits_and_saves_as_the_decision(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_spans(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        keys = app.review.keys
        await pilot.press("e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, SpanEditorScreen)
        # Cursor starts on the first span ("Ada"). Tab twice: to London, then Royal Society.
        await pilot.press("tab", "tab")
        await pilot.press(keys["ORG"])  # re-type the selected span: Royal Society is an ORG
        # Back to the start, over "met", to "Charles"; select "Charles Babbage" and type PER.
        await pilot.press("home")
        for _ in range(3):
            await pilot.press("right")
        await pilot.press("shift+right", keys["PER"])
        # Delete the London span: tab jumps onto it (the next span after the cursor).
        await pilot.press("tab", "delete")
        await pilot.pause()
        expected = [
            {"start": 0, "end": 12, "text": "Ada Lovelace", "label": "PER"},
            {"start": 17, "end": 32, "text": "Charles Babbage", "label": "PER"},
            {"start": 50, "end": 63, "text": "Royal Society", "label": "ORG"},
        ]
        assert editor.result() == expected
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, SpanEditorScreen)
    assert [d.label for d in live(db)] == [expected]


async def test_span_editor_escape_cancels_without_storing(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_spans(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e", "delete", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, SpanEditorScreen)
        assert app.review.current is not None
    assert decisions(db) == []


def test_db_path_is_a_real_file(sqlite_url: str, clock: FakeClock) -> None:
    build_classify(sqlite_url, clock)
    assert Path(sqlite_url.removeprefix("sqlite:///")).stat().st_size > 0


# -- the command ----------------------------------------------------------------------


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOLABEL_HOME": str(home), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "autolabel.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_review_help_and_empty_queue_error(tmp_path: Path) -> None:
    shown = _cli("review", "--help", home=tmp_path)
    assert shown.returncode == 0
    assert "--reviewer" in shown.stdout and "Example" in shown.stdout
    empty = _cli("review", "--reviewer", "bob", "--queue", "nope", home=tmp_path)
    assert empty.returncode == 2
    assert "review queue 'nope' is empty" in empty.stderr
    assert "Traceback" not in empty.stderr


def test_cli_does_not_load_textual_until_review_runs() -> None:
    code = "import sys, autolabel.cli.main as m; m._register(); print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


async def test_adjudicator_settles_a_flagged_item(classify) -> None:
    db, queue = classify
    flagged = queue.claim("bob")
    assert flagged is not None
    queue.flag(flagged.task_id, "bob", "sarcasm or not?")
    app = ReviewApp(queue, "judge", clock=Tick(), adjudicate=True)
    async with app.run_test(size=SIZE) as pilot:
        assert shown_task_id(app) == flagged.task_id  # only disputed items are served
        await pilot.press(app.review.keys["negative"])
        await pilot.pause()
        assert app.review.current is None  # nothing else awaits adjudication
    final = live(db, "adjudicate")
    assert [(d.task_id, d.reviewer, d.label) for d in final] == [
        (flagged.task_id, "judge", "negative")
    ]
    row = task_row(db, flagged.task_id)
    assert (row.final_label, row.final_source) == ("negative", "adjudicator")
