"""The review TUI keeps its item while the reviewer works, recovers when it lost it,
and gives it back when the reviewer walks away (Textual Pilot, real queue on SQLite).

Intervals are tiny (heartbeat 20 ms) and the queue runs on a fake clock, so the
tests wait for an outcome (bounded polling), never for wall-clock time to pass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select
from textual.pilot import Pilot

from autolabel.review.queue import ReviewQueue
from autolabel.review.transactions import aware
from autolabel.store.database import Database
from autolabel.store.tables import Decision, ReviewClaim, ReviewTask
from autolabel.tui import ReviewApp
from tests.review.factories import FakeClock
from tests.review.test_tui import REVIEWER, SIZE, Tick, _text, build_classify, shown_task_id

LEASE = 60


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _lease_of(db: Database, task_id: int | None) -> tuple[datetime | None, datetime | None]:
    """(alice's claim expiry, the task row's expiry) as stored."""
    with db.session() as s:
        claim = s.exec(
            select(ReviewClaim).where(
                ReviewClaim.task_id == task_id, ReviewClaim.reviewer == REVIEWER
            )
        ).first()
        task = s.get(ReviewTask, task_id)
        assert task is not None
        return (aware(claim.lease_expires_at) if claim else None), aware(task.lease_expires_at)


def _rows(db: Database) -> list[Decision]:
    with db.session() as s:
        return list(s.exec(select(Decision).order_by(col(Decision.id))).all())


def _notices(app: ReviewApp) -> list[str]:
    return [n.message for n in app._notifications]


async def _until(pilot: Pilot, condition: Callable[[], bool], tries: int = 500) -> bool:
    """Let the app run (timers, workers) until ``condition`` holds; False if it never does."""
    for _ in range(tries):
        if condition():
            return True
        await pilot.pause(0.01)
    return condition()


async def test_lease_is_renewed_while_an_item_is_shown(sqlite_url: str, clock: FakeClock) -> None:
    db, _ = build_classify(sqlite_url, clock)
    queue = ReviewQueue(db, lease_seconds=LEASE, clock=clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), heartbeat_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        shown = shown_task_id(app)
        assert _lease_of(db, shown) == (clock.now + timedelta(seconds=LEASE),) * 2
        for _ in range(3):  # 135 s on one item, over twice the lease
            clock.advance(45)
            renewed = clock.now + timedelta(seconds=LEASE)
            assert await _until(pilot, lambda: _lease_of(db, shown) == (renewed, renewed))  # noqa: B023
        # still alice's: bob is served another item
        bob = ReviewQueue(db, lease_seconds=LEASE, clock=clock).claim("bob")
        assert bob is not None and bob.task_id != shown
        await pilot.press("enter")
        await pilot.pause()
    assert [(d.task_id, d.reviewer, d.action) for d in _rows(db)] == [(shown, REVIEWER, "decide")]


async def test_stale_item_moves_on_with_a_notice_and_keeps_her_choice(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, _ = build_classify(sqlite_url, clock)
    queue = ReviewQueue(db, lease_seconds=LEASE, clock=clock)
    # No heartbeat gets through (a suspended laptop, a dropped connection).
    app = ReviewApp(queue, REVIEWER, clock=Tick(), heartbeat_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        assert first is not None
        clock.advance(LEASE + 1)  # her lease runs out
        bob = ReviewQueue(db, lease_seconds=LEASE, clock=clock)
        taken = bob.claim("bob")
        assert taken is not None and taken.task_id == first
        bob.decide(first, "bob", "negative")
        await pilot.press("enter")  # accepts the suggestion: positive
        await pilot.pause()
        assert shown_task_id(app) not in (None, first)  # on to the next item
        # notify() posts a message: the notice lands on a later turn of the event loop
        assert await _until(pilot, lambda: bool(_notices(app)))
        assert _notices(app) == [
            f"task {first} was already decided by bob at 12:01:01 UTC: negative; "
            "your choice (positive) is kept as a second opinion"
        ]
        await pilot.press("s")  # and she works on as usual
        await pilot.pause()
    rows = [(d.task_id, d.reviewer, d.action, d.label) for d in _rows(db)]
    assert rows[:2] == [
        (first, "bob", "decide", "negative"),
        (first, REVIEWER, "second_opinion", "positive"),
    ]
    assert rows[2][1:3] == (REVIEWER, "skip")
    with db.session() as s:
        task = s.get(ReviewTask, first)
        assert task is not None and (task.final_label, task.final_source) == ("negative", "human")


async def test_idle_reviewer_gives_the_item_back_and_enter_resumes(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, _ = build_classify(sqlite_url, clock)
    queue = ReviewQueue(db, lease_seconds=LEASE, clock=clock)
    tick = Tick()
    app = ReviewApp(queue, REVIEWER, clock=tick, heartbeat_s=0.02, idle_release_s=30)
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        tick.t += 20
        await pilot.press("down")  # a key: the idle clock starts again
        tick.t += 20  # 40 s since the item was shown, 20 s since the key
        await pilot.pause(0.1)  # several idle checks
        assert not app.review.idle and _lease_of(db, first)[0] is not None
        tick.t += 11
        assert await _until(pilot, lambda: app.review.idle)
        assert app.review.current is None
        assert _lease_of(db, first) == (None, None)  # back in the queue, at once
        assert "You were idle for 31 s" in _text(app.review.query_one("#item-body"))
        assert await _until(pilot, lambda: bool(_notices(app)))
        assert "went back to the queue" in _notices(app)[-1]
        other = ReviewQueue(db, lease_seconds=LEASE, clock=clock).claim("bob")
        assert other is not None and other.task_id == first  # bob may take it now
        await pilot.press("enter")  # back to claiming
        await pilot.pause()
        assert not app.review.idle
        back = shown_task_id(app)
        assert back not in (None, first)
        assert _lease_of(db, back)[0] == clock.now + timedelta(seconds=LEASE)
    assert [d for d in _rows(db) if d.reviewer == REVIEWER] == []  # idle decides nothing


async def test_heartbeat_that_finds_the_item_taken_warns_and_stays(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, _ = build_classify(sqlite_url, clock)
    queue = ReviewQueue(db, lease_seconds=LEASE, clock=clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), heartbeat_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        first = shown_task_id(app)
        assert await _until(pilot, lambda: not app.review._renewing)
        # No await from here to bob's claim: no heartbeat can run in between (the
        # timer lives on this event loop), as if alice's laptop had slept past the lease.
        clock.advance(LEASE + 1)
        taken = ReviewQueue(db, lease_seconds=LEASE, clock=clock).claim("bob")
        assert taken is not None and taken.task_id == first
        assert await _until(pilot, lambda: bool(_notices(app)))
        assert _notices(app) == [
            f"task {first} was taken by bob at 12:01:01 UTC after your lease ran out; "
            "deciding it keeps your choice as a second opinion"
        ]
        assert shown_task_id(app) == first  # a key meant for it never lands on another item
        await pilot.press("enter")
        await pilot.pause()
        assert shown_task_id(app) not in (None, first)
        assert await _until(pilot, lambda: len(_notices(app)) == 2)
        assert "kept as a second opinion" in _notices(app)[-1]
    assert [(d.task_id, d.reviewer, d.action) for d in _rows(db)] == [
        (first, REVIEWER, "second_opinion")
    ]
