"""Lease renewal and graceful recovery in the queue API, on SQLite and PostgreSQL.

A reviewer whose task was settled, taken or withdrawn meanwhile gets a
``TaskGoneError`` that says who and when; their label is kept as a second opinion.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from autolabel.errors import TaskGoneError
from autolabel.review.agreement import agreement_report
from autolabel.review.queue import ReviewQueue
from autolabel.review.transactions import aware
from autolabel.store.database import Database
from autolabel.store.tables import Decision, ReviewClaim, ReviewTask
from tests.review.factories import FakeClock, seed_queue


@pytest.fixture
def db(db_url: str) -> Database:
    return Database(db_url)


def _claim_expiry(db: Database, task_id: int, reviewer: str):  # type: ignore[no-untyped-def]
    with db.session() as s:
        claim = s.exec(
            select(ReviewClaim).where(
                ReviewClaim.task_id == task_id, ReviewClaim.reviewer == reviewer
            )
        ).first()
        task = s.get(ReviewTask, task_id)
        assert task is not None
        return (aware(claim.lease_expires_at) if claim else None), aware(task.lease_expires_at)


def _rows(db: Database, action: str) -> list[Decision]:
    with db.session() as s:
        return list(
            s.exec(select(Decision).where(Decision.action == action).order_by(col(Decision.id)))
        )


def test_renew_moves_the_lease_forward_and_keeps_the_task(db: Database) -> None:
    tasks = seed_queue(db, 2)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    assert q.claim("ann").task_id == tasks[0]  # type: ignore[union-attr]
    for _ in range(3):  # 120 s in all, twice the lease: only renewal keeps it
        clock.advance(40)
        assert q.renew(tasks[0], "ann") == clock.now + timedelta(seconds=60)
    assert _claim_expiry(db, tasks[0], "ann") == (clock.now + timedelta(seconds=60),) * 2
    assert q.claim("bob").task_id == tasks[1]  # type: ignore[union-attr]  # not ann's item
    q.decide(tasks[0], "ann", "positive")


def test_renew_after_expiry_and_takeover_says_who(db: Database) -> None:
    tasks = seed_queue(db, 1)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    q.claim("ann")
    clock.advance(61)
    assert q.claim("bob").task_id == tasks[0]  # type: ignore[union-attr]
    with pytest.raises(TaskGoneError) as info:
        q.renew(tasks[0], "ann")
    assert (info.value.reason, info.value.by, info.value.at) == ("taken", "bob", clock.now)
    assert "taken by bob at 12:01:01 UTC" in info.value.message
    assert _claim_expiry(db, tasks[0], "bob")[0] == clock.now + timedelta(seconds=60)


def test_renew_never_takes_back_a_decided_or_skipped_task(db: Database) -> None:
    tasks = seed_queue(db, 2, required=2, reviewers=2)
    q = ReviewQueue(db)
    q.claim("ann")
    q.decide(tasks[0], "ann", "positive")  # the task still needs a second vote
    with pytest.raises(TaskGoneError) as info:
        q.renew(tasks[0], "ann")  # a heartbeat racing the decision
    assert info.value.reason == "lapsed"
    q.claim("ann")
    q.skip(tasks[1], "ann")
    with pytest.raises(TaskGoneError):
        q.renew(tasks[1], "ann")
    with db.session() as s:
        assert s.exec(select(ReviewClaim)).all() == []


def test_stale_decide_keeps_the_label_as_a_second_opinion(db: Database) -> None:
    tasks = seed_queue(db, 2)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    q.claim("ann")
    clock.advance(61)
    assert q.claim("bob").task_id == tasks[0]  # type: ignore[union-attr]
    clock.advance(5)
    q.decide(tasks[0], "bob", "negative")
    clock.advance(5)
    with pytest.raises(TaskGoneError) as info:
        q.decide(tasks[0], "ann", "positive", seconds=71.0)
    gone = info.value
    assert (gone.reason, gone.by, gone.final_label) == ("decided", "bob", "negative")
    assert gone.at == clock.now - timedelta(seconds=5)
    assert gone.message == (
        f"task {tasks[0]} was already decided by bob at 12:01:06 UTC: negative; "
        "your choice (positive) is kept as a second opinion"
    )
    [second] = _rows(db, "second_opinion")
    assert (second.id, second.task_id, second.reviewer, second.label, second.seconds) == (
        gone.second_opinion_id,
        tasks[0],
        "ann",
        "positive",
        71.0,
    )
    assert [(d.reviewer, d.label) for d in _rows(db, "decide")] == [("bob", "negative")]
    view = q.get(tasks[0])
    assert (view.status, view.decisions_so_far) == ("decided", 1)  # not a vote
    assert q.claim("ann").task_id == tasks[1]  # type: ignore[union-attr]  # she moves on
    with pytest.raises(TaskGoneError) as again:
        q.decide(tasks[0], "bob", "neutral")  # bob's own vote is in: nothing to keep
    assert again.value.second_opinion_id is None
    # agreement metrics read the second opinion as ann's rating of the item
    report = agreement_report(db, "default")
    assert report.n_second_opinions == 1
    assert [(p.a, p.b, p.items, p.percent) for p in report.pairs] == [("ann", "bob", 1, 0.0)]


def test_decide_on_a_task_taken_meanwhile_leaves_it_to_the_taker(db: Database) -> None:
    tasks = seed_queue(db, 1)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    q.claim("ann")
    clock.advance(61)
    q.claim("bob")
    with pytest.raises(TaskGoneError) as info:
        q.decide(tasks[0], "ann", "neutral")
    assert (info.value.reason, info.value.by) == ("taken", "bob")
    assert info.value.second_opinion_id is not None
    q.decide(tasks[0], "bob", "positive")  # bob's hold is intact
    assert q.get(tasks[0]).status == "decided"


def test_skip_on_a_settled_task_moves_on_without_a_row(db: Database) -> None:
    tasks = seed_queue(db, 1)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    q.claim("ann")
    clock.advance(61)
    q.claim("bob")
    q.decide(tasks[0], "bob", "negative")
    with pytest.raises(TaskGoneError) as info:
        q.skip(tasks[0], "ann")
    assert (info.value.reason, info.value.by, info.value.second_opinion_id) == (
        "decided",
        "bob",
        None,
    )
    assert _rows(db, "skip") == [] and _rows(db, "second_opinion") == []


def test_decide_on_a_task_sent_to_adjudication_says_so(db: Database) -> None:
    tasks = seed_queue(db, 1)
    q = ReviewQueue(db)
    q.claim("ann")
    q.flag(tasks[0], "bob", "garbled text")
    with pytest.raises(TaskGoneError) as info:
        q.decide(tasks[0], "ann", "positive")
    assert info.value.reason == "adjudication"
    assert "flagged by bob" in info.value.message
    with pytest.raises(TaskGoneError) as withdrawn:
        q.decide(10_000, "ann", "positive")
    assert withdrawn.value.reason == "withdrawn"
