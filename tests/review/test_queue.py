"""The queue API in one process: claim, decide, skip, flag, undo, release, stats, leases."""

from __future__ import annotations

import pytest
from sqlmodel import select

from autolabel.errors import ReviewError
from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import Decision, ReviewTask
from tests.review.factories import FakeClock, seed_queue


@pytest.fixture
def db(db_url: str) -> Database:
    """Every queue test runs on SQLite and on PostgreSQL."""
    return Database(db_url)


def test_claim_serves_lowest_priority_and_returns_own_claim_first(db: Database) -> None:
    tasks = seed_queue(db, 4)
    q = ReviewQueue(db)
    first = q.claim("ann")
    assert first is not None and first.task_id == tasks[0]  # lowest confidence first
    assert q.claim("ann").task_id == tasks[0]  # type: ignore[union-attr]  # its live claim
    other = q.claim("bob")
    assert other is not None and other.task_id == tasks[1]
    assert first.status == "claimed"
    assert first.labels == ["positive", "negative", "neutral"]
    assert first.label_keys == {"positive": "1", "negative": "2", "neutral": "3"}
    assert first.fields == {"text": "text 0"}
    assert first.label_descriptions["positive"] == "likes it"
    assert first.guidelines == "Judge the writer's attitude."
    assert first.suggestion == "negative"
    assert first.distribution is not None and first.distribution["negative"] == pytest.approx(0.3)
    assert first.reasons == ["low_confidence"]


def test_decide_finalises_and_is_stored(db: Database) -> None:
    tasks = seed_queue(db, 2)
    q = ReviewQueue(db)
    t = q.claim("ann")
    assert t is not None
    d = q.decide(t.task_id, "ann", "neutral", seconds=3.5)
    assert (d.action, d.label, d.label_before, d.seconds) == ("decide", "neutral", "negative", 3.5)
    assert q.get(t.task_id).status == "decided"
    with db.session() as s:
        row = s.get(ReviewTask, tasks[0])
        assert (row.final_label, row.final_source) == ("neutral", "human")  # type: ignore[union-attr]
    nxt = q.claim("ann")
    assert nxt is not None and nxt.task_id == tasks[1]
    with pytest.raises(ReviewError):
        q.decide(t.task_id, "bob", "positive")  # already final
    with pytest.raises(ReviewError):
        q.decide(nxt.task_id, "ann", "nonsense")  # not a label


def test_skip_serves_others_first_and_flag_goes_to_adjudication(db: Database) -> None:
    tasks = seed_queue(db, 3)
    q = ReviewQueue(db)
    t = q.claim("ann")
    q.skip(t.task_id, "ann", note="unsure")  # type: ignore[union-attr]
    assert q.get(tasks[0]).status == "skipped"
    assert q.claim("ann").task_id == tasks[1]  # type: ignore[union-attr]
    assert q.claim("bob").task_id == tasks[0]  # type: ignore[union-attr]  # bob gets the skipped one
    q.flag(tasks[1], "ann", "text is garbled")
    assert q.get(tasks[1]).status == "flagged"
    # flagged tasks are not served to reviewers, only to adjudicators
    assert q.claim("ann").task_id == tasks[2]  # type: ignore[union-attr]
    adj = q.claim("lead", adjudicate=True)
    assert adj is not None and adj.task_id == tasks[1]
    d = q.decide(tasks[1], "lead", "neutral")
    assert d.action == "adjudicate"
    assert q.get(tasks[1]).status == "decided"
    s = q.stats()
    assert (s.decided, s.claimed, s.total) == (1, 2, 3)


def test_undo_survives_a_fresh_queue_instance(db: Database) -> None:
    tasks = seed_queue(db, 3)
    q = ReviewQueue(db)
    q.decide(q.claim("ann").task_id, "ann", "positive")  # type: ignore[union-attr]
    q.decide(q.claim("ann").task_id, "ann", "negative")  # type: ignore[union-attr]
    again = ReviewQueue(db)  # a restart: state lives only in the database
    back = again.undo("ann")
    assert back is not None and back.task_id == tasks[1]
    assert back.status == "claimed" and back.decisions_so_far == 0
    back2 = again.undo("ann")
    assert back2 is not None and back2.task_id == tasks[0]
    assert again.undo("ann") is None
    assert again.claim("ann").task_id == tasks[0]  # type: ignore[union-attr]  # its claim again
    with db.session() as s:
        rows = s.exec(select(Decision).order_by(Decision.id)).all()
    assert [(r.action, r.undone) for r in rows] == [
        ("decide", True),
        ("decide", True),
        ("undo", False),
        ("undo", False),
    ]
    assert rows[2].undoes_id == rows[1].id and rows[3].undoes_id == rows[0].id
    # a re-decision after undo is allowed and counts once
    again.decide(tasks[0], "ann", "neutral")
    assert again.stats().done_by_reviewer == {"ann": 1}


def test_lease_expiry_returns_task_to_queue(db: Database) -> None:
    tasks = seed_queue(db, 1)
    clock = FakeClock()
    q = ReviewQueue(db, lease_seconds=60, clock=clock)
    assert q.claim("ann").task_id == tasks[0]  # type: ignore[union-attr]
    assert q.claim("bob") is None
    assert q.stats().claimed == 1
    clock.advance(61)
    assert q.stats().pending == 1 and q.stats().claimed == 0
    assert q.claim("bob").task_id == tasks[0]  # type: ignore[union-attr]
    # ann's lease is gone and bob holds it: ann may not decide it
    with pytest.raises(ReviewError):
        q.decide(tasks[0], "ann", "positive")
    q.decide(tasks[0], "bob", "positive")
    assert q.get(tasks[0]).status == "decided"


def test_release_frees_the_task(db: Database) -> None:
    tasks = seed_queue(db, 1)
    q = ReviewQueue(db)
    q.claim("ann")
    q.release(tasks[0], "ann")
    assert q.get(tasks[0]).status == "pending"
    assert q.claim("bob").task_id == tasks[0]  # type: ignore[union-attr]


def test_consensus_two_of_three(db: Database) -> None:
    tasks = seed_queue(db, 1, required=2, reviewers=3)
    q = ReviewQueue(db)
    assert q.claim("a").task_id == tasks[0]  # type: ignore[union-attr]
    assert q.claim("b").task_id == tasks[0]  # type: ignore[union-attr]  # two may hold it
    assert q.claim("c") is None  # a third would exceed what consensus needs
    q.decide(tasks[0], "a", "positive")
    assert q.claim("a") is None  # never an item it already decided
    q.decide(tasks[0], "b", "negative")
    view = q.get(tasks[0])
    assert (view.status, view.decisions_so_far, view.required_decisions) == ("pending", 2, 2)
    assert q.claim("c").task_id == tasks[0]  # type: ignore[union-attr]
    q.decide(tasks[0], "c", "negative")
    with db.session() as s:
        row = s.get(ReviewTask, tasks[0])
        assert (row.status, row.final_label, row.final_source) == (  # type: ignore[union-attr]
            "decided",
            "negative",
            "consensus",
        )


def test_disagreement_goes_to_adjudicator(db: Database) -> None:
    tasks = seed_queue(db, 1, required=2, reviewers=2)
    q = ReviewQueue(db)
    q.claim("a")
    q.claim("b")
    q.decide(tasks[0], "a", "positive")
    q.decide(tasks[0], "b", "negative")
    assert q.get(tasks[0]).status == "adjudication"
    assert q.claim("c") is None
    assert q.stats().adjudication == 1
    with pytest.raises(ReviewError):
        q.decide(tasks[0], "c", "neutral")  # not claimed as adjudicator
    assert q.claim("lead", adjudicate=True).task_id == tasks[0]  # type: ignore[union-attr]
    q.decide(tasks[0], "lead", "neutral")
    with db.session() as s:
        row = s.get(ReviewTask, tasks[0])
        assert (row.final_label, row.final_source) == ("neutral", "adjudicator")  # type: ignore[union-attr]


def test_stats_per_reviewer(db: Database) -> None:
    seed_queue(db, 4)  # suggestions: negative, positive, negative, positive
    clock = FakeClock()
    q = ReviewQueue(db, clock=clock)
    for label in ("negative", "neutral", "negative"):
        t = q.claim("ann")
        q.decide(t.task_id, "ann", label)  # type: ignore[union-attr]
        clock.advance(30)
    t = q.claim("bob")
    q.decide(t.task_id, "bob", "negative")  # type: ignore[union-attr]  # suggestion: positive
    s = q.stats("ann")
    assert s.done_by_reviewer == {"ann": 3, "bob": 1}
    assert s.agreement_with_model == pytest.approx(2 / 3)
    assert s.pace_per_min == pytest.approx(2.0)  # 3 decisions, 60 s apart end to end
    assert (s.decided, s.pending, s.total) == (4, 0, 4)
    assert q.stats().agreement_with_model == pytest.approx(2 / 4)
