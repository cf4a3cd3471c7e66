"""The review queue: leased claims, decisions, consensus and undo, all in the database.

Every action is one short write transaction (see ``transactions.py``), committed
before the method returns, so a reviewer process killed at any moment loses
nothing it was told had succeeded. The ``decisions`` table is append-only: undo
appends an ``undo`` row and marks the undone row ``undone=True``.

Several reviewers may hold one task at the same time, but never more than the
consensus still needs (``consensus.still_needed``): with ``required_decisions=2``
two reviewers can work on a fresh task in parallel, a third cannot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from autolabel.errors import NotFoundError, ReviewError, TaskGoneError
from autolabel.images import IMAGE_KEY
from autolabel.ontology.schema import Ontology
from autolabel.review.consensus import (
    ADJUDICATION_STATUSES,
    HUMAN_ACTIONS,
    SERVABLE_STATUSES,
    LiveAction,
    TaskState,
    derive_state,
    still_needed,
)
from autolabel.review.labels import canonical_human_label, label_key
from autolabel.review.transactions import aware, write_session
from autolabel.review.views import DecisionView, QueueStats, TaskView
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Item, Prediction, ReviewClaim, ReviewTask, Run, utcnow

# Recent work that ``stats().pace_per_min`` looks at.
PACE_WINDOW = timedelta(minutes=15)
PACE_MAX_DECISIONS = 30

# "No label given" for ``_gone`` (None is a label: a failed span task may decide None).
_NO_LABEL: Any = object()


class ReviewQueue:
    """One named queue of review tasks, shared by any number of reviewer processes."""

    def __init__(
        self,
        db: Database,
        queue: str = "default",
        *,
        lease_seconds: int = 600,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.queue = queue
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self._ontologies: dict[int, Ontology] = {}

    # -- reviewer actions -----------------------------------------------------------

    def claim(self, reviewer: str, *, adjudicate: bool = False) -> TaskView | None:
        """Lease the reviewer's next task: its own live claim first, then the lowest
        priority task it may take. ``adjudicate=True`` serves flagged tasks and tasks
        whose reviewers disagreed, for an adjudicator to settle."""
        now = self._now()
        with write_session(self.db) as s:
            self._drop_expired(s, now)
            task = self._own_claim(s, reviewer, now, adjudicate) or self._next_task(
                s, reviewer, now, adjudicate
            )
            if task is None:
                return None
            return self._view(s, task)

    def decide(
        self, task_id: int, reviewer: str, label: Any, *, seconds: float | None = None
    ) -> DecisionView:
        """Record the reviewer's label. On a task awaiting adjudication this is the
        adjudicator's final word (action ``adjudicate``).

        Raises :class:`TaskGoneError` when the task was settled, taken or withdrawn
        meanwhile (a lease ran out, another reviewer was faster); the reviewer's label
        is then kept as a ``second_opinion`` row in the audit trail, never dropped."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock_or_gone(s, task_id)
            label = canonical_human_label(self._ontology(s, task.run_id), label)
            state = self._state(s, task, now)
            mine = self._claim_of(s, task.id, reviewer)
            action = "decide"
            reason: str | None = None
            if state.status == "decided":
                reason = "decided"
            elif state.status in ADJUDICATION_STATUSES:
                if mine is None or not mine.adjudicating:
                    reason = "adjudication"
                action = "adjudicate"
            else:
                if self._has_decided(s, task.id, reviewer):
                    raise ReviewError(f"{reviewer} has already decided task {task_id}")
                live_mine = mine is not None and aware(mine.lease_expires_at) > now
                if not live_mine and not self._has_room(s, task, state, reviewer, now):
                    reason = "taken"
            if reason is None:
                return self._record(s, task, reviewer, action, label, now, seconds=seconds)
            # Commit the second opinion first, then tell the caller what happened. A
            # reviewer whose own vote is in (another window, a double press) has no
            # second opinion to add.
            own_vote = reason == "decided" and self._has_decided(s, task.id, reviewer)
            kept = _NO_LABEL if own_vote else label
            gone = self._gone(s, task, reviewer, reason, now, label=kept, seconds=seconds)
        raise gone

    def adjudicate(self, task_id: int, reviewer: str, label: Any) -> DecisionView:
        """Settle a task as adjudicator: final, and overrides any human or model label."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock(s, task_id)
            label = canonical_human_label(self._ontology(s, task.run_id), label)
            return self._record(s, task, reviewer, "adjudicate", label, now)

    def skip(self, task_id: int, reviewer: str, *, note: str | None = None) -> DecisionView:
        """Give the task back; others are served it before this reviewer sees it again.
        Raises :class:`TaskGoneError` when it is no longer the reviewer's to give back."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock_or_gone(s, task_id)
            state = self._state(s, task, now)
            mine = self._claim_of(s, task.id, reviewer)
            reason: str | None = None
            if state.status == "decided":
                reason = "decided"
            elif state.status in ADJUDICATION_STATUSES:
                if mine is None or not mine.adjudicating:
                    reason = "adjudication"
            elif (mine is None or aware(mine.lease_expires_at) <= now) and not self._has_room(
                s, task, state, reviewer, now
            ):
                reason = "taken"
            if reason is None:
                return self._record(s, task, reviewer, "skip", None, now, note=note)
            gone = self._gone(s, task, reviewer, reason, now)
        raise gone

    def renew(self, task_id: int, reviewer: str) -> datetime:
        """Extend the reviewer's lease on a task it still holds (the TUI's heartbeat);
        returns the new expiry. Never creates a claim: a heartbeat that arrives after a
        decide, skip or release must not take the task back. Raises
        :class:`TaskGoneError` when the hold is lost (the lease ran out and someone else
        took the task, or it was settled meanwhile)."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock_or_gone(s, task_id)
            state = self._state(s, task, now)
            mine = self._claim_of(s, task.id, reviewer)
            reason = "lapsed" if mine is None else None
            if mine is not None:
                wanted = ADJUDICATION_STATUSES if mine.adjudicating else SERVABLE_STATUSES
                if state.status == "decided":
                    reason = "decided"
                elif state.status not in wanted:
                    reason = "adjudication" if state.status in ADJUDICATION_STATUSES else "taken"
                elif aware(mine.lease_expires_at) <= now:
                    # Expired but not yet dropped: still ours if nobody filled the room.
                    others = self._holders(s, task.id, reviewer, now)
                    if mine.adjudicating:
                        reason = "taken" if others else None
                    elif not self._has_room(s, task, state, reviewer, now):
                        reason = "taken"
            if reason is None:
                assert mine is not None
                mine.lease_expires_at = now + self.lease
                s.add(mine)
                s.flush()
                self._refresh(s, task, now)
                return now + self.lease
            if reason == "lapsed" and self._holders(s, task.id, reviewer, now):
                reason = "taken"
            gone = self._gone(s, task, reviewer, reason, now)
        raise gone

    def flag(self, task_id: int, reviewer: str, note: str) -> DecisionView:
        """Send the task to the adjudicator with a note (a broken item, unclear guideline)."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock(s, task_id)
            return self._record(s, task, reviewer, "flag", None, now, note=note)

    def undo(self, reviewer: str) -> TaskView | None:
        """Undo the reviewer's last action in this queue that is not undone yet, and
        hand that task back to them (claimed). None when there is nothing to undo."""
        now = self._now()
        with write_session(self.db) as s:
            last = s.exec(
                select(Decision)
                .join(ReviewTask, col(Decision.task_id) == col(ReviewTask.id))
                .where(
                    col(ReviewTask.queue) == self.queue,
                    col(Decision.reviewer) == reviewer,
                    col(Decision.action).in_(HUMAN_ACTIONS),
                    col(Decision.undone).is_(False),
                )
                .order_by(col(Decision.id).desc())
                .limit(1)
            ).first()
            if last is None:
                return None
            task = self._lock(s, last.task_id)
            last.undone = True
            s.add(last)
            # before/after are the task's label around the undo; undoes_id names the row.
            undo_row = Decision(
                task_id=task.id,  # type: ignore[arg-type]
                item_id=task.item_id,
                reviewer=reviewer,
                action="undo",
                label_before=task.final_label,
                reasons=list(task.reasons),
                undoes_id=last.id,
                created_at=now,
            )
            s.add(undo_row)
            # The reviewer goes back to that task: whatever it held since returns to the queue.
            for other, held in s.exec(
                select(ReviewClaim, ReviewTask)
                .join(ReviewTask, col(ReviewClaim.task_id) == col(ReviewTask.id))
                .where(
                    col(ReviewTask.queue) == self.queue,
                    col(ReviewClaim.reviewer) == reviewer,
                    col(ReviewClaim.task_id) != task.id,
                )
            ).all():
                s.delete(other)
                s.flush()
                self._refresh(s, held, now)
            claim = self._hold(s, task, reviewer, now, adjudicating=False)
            s.flush()
            state = self._refresh(s, task, now)
            undo_row.label = state.final_label
            s.add(undo_row)
            if state.status in ADJUDICATION_STATUSES:
                # Undoing an adjudication (or a vote that completed a disagreement)
                # leaves the task for settling: the reviewer holds it as adjudicator.
                claim.adjudicating = True
                s.add(claim)
            return self._view(s, task)

    def release(self, task_id: int, reviewer: str) -> None:
        """Drop the reviewer's claim (on quit); the task returns to the queue at once."""
        now = self._now()
        with write_session(self.db) as s:
            task = self._lock(s, task_id)
            s.exec(  # type: ignore[call-overload]
                delete(ReviewClaim).where(
                    col(ReviewClaim.task_id) == task_id, col(ReviewClaim.reviewer) == reviewer
                )
            )
            self._refresh(s, task, now)

    # -- reading ----------------------------------------------------------------------

    def get(self, task_id: int) -> TaskView:
        """The task as a reviewer sees it."""
        with self.db.session() as s:
            task = s.get(ReviewTask, task_id)
            if task is None:
                raise NotFoundError(f"review task {task_id} does not exist")
            return self._view(s, task)

    def history(self, task_id: int) -> list[DecisionView]:
        """Every action on the task, oldest first (undone ones included)."""
        with self.db.session() as s:
            rows = s.exec(
                select(Decision).where(Decision.task_id == task_id).order_by(col(Decision.id))
            ).all()
            return [_decision_view(d) for d in rows]

    def stats(self, reviewer: str | None = None) -> QueueStats:
        """Counts by effective status (expired leases count as pending) and reviewer pace."""
        now = self._now()
        in_queue = col(ReviewTask.queue) == self.queue
        with self.db.session() as s:
            counts = dict.fromkeys(
                ("pending", "claimed", "decided", "skipped", "flagged", "adjudication"), 0
            )
            for status, n in s.exec(
                select(ReviewTask.status, func.count()).where(in_queue).group_by(ReviewTask.status)
            ).all():
                counts[status] = counts.get(status, 0) + n
            # The stored status lags leases: correct it from the (small) live claims.
            held = s.exec(
                select(ReviewTask.id, ReviewTask.status)
                .join(ReviewClaim, col(ReviewClaim.task_id) == col(ReviewTask.id))
                .where(in_queue, col(ReviewClaim.lease_expires_at) > now)
                .distinct()
            ).all()
            live_claimed = sum(1 for _, status in held if status == "claimed")
            counts["pending"] += counts["claimed"] - live_claimed  # leases ran out
            for _, status in held:
                if status in ("pending", "skipped"):
                    counts[status] -= 1
                    live_claimed += 1
            counts["claimed"] = live_claimed
            done = dict(
                s.exec(
                    select(Decision.reviewer, func.count())
                    .join(ReviewTask, col(Decision.task_id) == col(ReviewTask.id))
                    .where(
                        in_queue,
                        col(Decision.action).in_(("decide", "adjudicate")),
                        col(Decision.undone).is_(False),
                    )
                    .group_by(Decision.reviewer)
                ).all()
            )
            stmt = (
                select(Decision.label, ReviewTask.suggestion, Decision.created_at, Decision.seconds)
                .join(ReviewTask, col(Decision.task_id) == col(ReviewTask.id))
                .where(
                    in_queue,
                    col(Decision.action).in_(("decide", "adjudicate")),
                    col(Decision.undone).is_(False),
                )
                .order_by(col(Decision.id))
            )
            if reviewer is not None:
                stmt = stmt.where(col(Decision.reviewer) == reviewer)
            mine = s.exec(stmt).all()
        agree = (
            sum(label_key(lab) == label_key(sug) for lab, sug, _, _ in mine) / len(mine)
            if mine
            else None
        )
        return QueueStats(
            **counts,
            total=sum(counts.values()),
            done_by_reviewer=done,
            pace_per_min=_pace([(at, sec) for _, _, at, sec in mine], now),
            agreement_with_model=agree,
        )

    # -- internals ----------------------------------------------------------------------

    def _now(self) -> datetime:
        moment = aware(self.clock())
        assert moment is not None
        return moment

    def _drop_expired(self, s: Session, now: datetime) -> None:
        # The claims table is small (one row per active reviewer): find expired ones
        # through it rather than through the (large) task table.
        expired = s.exec(
            select(ReviewClaim.id)
            .join(ReviewTask, col(ReviewClaim.task_id) == col(ReviewTask.id))
            .where(col(ReviewClaim.lease_expires_at) <= now, col(ReviewTask.queue) == self.queue)
        ).all()
        if expired:
            s.exec(delete(ReviewClaim).where(col(ReviewClaim.id).in_(expired)))  # type: ignore[call-overload]

    def _own_claim(
        self, s: Session, reviewer: str, now: datetime, adjudicate: bool
    ) -> ReviewTask | None:
        rows = s.exec(
            select(ReviewClaim, ReviewTask)
            .join(ReviewTask, col(ReviewClaim.task_id) == col(ReviewTask.id))
            .where(col(ReviewTask.queue) == self.queue, col(ReviewClaim.reviewer) == reviewer)
            .order_by(col(ReviewClaim.id))
        ).all()
        for claim, task in rows:
            if claim.adjudicating != adjudicate:
                continue  # the other role's claim: left for when they work in that role
            wanted = ADJUDICATION_STATUSES if adjudicate else SERVABLE_STATUSES
            if self._state(s, task, now).status not in wanted:
                # Stale: settled meanwhile, or others' decisions sent it to adjudication.
                s.delete(claim)
                continue
            claim.lease_expires_at = now + self.lease
            s.add(claim)
            self._refresh(s, task, now)
            return task
        return None

    def _next_task(
        self, s: Session, reviewer: str, now: datetime, adjudicate: bool
    ) -> ReviewTask | None:
        statuses = ADJUDICATION_STATUSES if adjudicate else SERVABLE_STATUSES
        # Only tasks still open matter here, which keeps these sets (and the NOT IN
        # lists built from them) small however much the reviewer has done.
        mine = s.exec(
            select(Decision.task_id, Decision.action)
            .join(ReviewTask, col(Decision.task_id) == col(ReviewTask.id))
            .where(
                col(Decision.reviewer) == reviewer,
                col(Decision.undone).is_(False),
                col(ReviewTask.queue) == self.queue,
                col(ReviewTask.status).in_(statuses),
            )
        ).all()
        decided = set() if adjudicate else {t for t, a in mine if a in ("decide", "adjudicate")}
        skipped = {t for t, a in mine if a == "skip"} - decided
        # Tasks this reviewer skipped come last, after everything else it may take.
        # PostgreSQL: a first pass skips rows another claimer has locked; if that finds
        # nothing, a blocking pass waits for them (they may still have room for us).
        blocking_passes = [False] if self.db.is_sqlite else [False, True]
        for only_skipped in (False, True):
            if only_skipped and not skipped:
                break
            for blocking in blocking_passes:
                tried: set[int] = set()
                while batch := self._candidates(
                    s, statuses, decided | tried, skipped, only_skipped
                ):
                    for task_id in batch:
                        tried.add(task_id)
                        task = self._try_lock(s, task_id, statuses, blocking)
                        if task is None:
                            continue
                        state = self._state(s, task, now)
                        if adjudicate:
                            room = state.status in ADJUDICATION_STATUSES and not self._holders(
                                s, task.id, reviewer, now
                            )
                        else:
                            room = self._has_room(s, task, state, reviewer, now)
                        if room:
                            self._hold(s, task, reviewer, now, adjudicating=adjudicate)
                            s.flush()
                            self._refresh(s, task, now)
                            return task
        return None

    def _candidates(
        self,
        s: Session,
        statuses: tuple[str, ...],
        exclude: set[int],
        skipped: set[int],
        only_skipped: bool,
        batch: int = 16,
    ) -> list[int]:
        """Next task ids in (priority, id) order. One indexed query per status (an IN on
        status would make the database sort the whole queue), merged here."""
        found: list[tuple[float, int]] = []
        for status in statuses:
            stmt = select(ReviewTask.priority, ReviewTask.id).where(
                col(ReviewTask.queue) == self.queue, col(ReviewTask.status) == status
            )
            if exclude:
                stmt = stmt.where(col(ReviewTask.id).not_in(exclude))
            if only_skipped:
                stmt = stmt.where(col(ReviewTask.id).in_(skipped))
            elif skipped:
                stmt = stmt.where(col(ReviewTask.id).not_in(skipped))
            stmt = stmt.order_by(col(ReviewTask.priority), col(ReviewTask.id)).limit(batch)
            found.extend((p, i) for p, i in s.exec(stmt).all())  # type: ignore[misc]
        return [task_id for _, task_id in sorted(found)[:batch]]

    def _try_lock(
        self, s: Session, task_id: int, statuses: tuple[str, ...], blocking: bool
    ) -> ReviewTask | None:
        """The task, if still in one of ``statuses``; on PostgreSQL row-locked (None if
        another transaction holds it and ``blocking`` is off)."""
        stmt = select(ReviewTask).where(
            col(ReviewTask.id) == task_id, col(ReviewTask.status).in_(statuses)
        )
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=not blocking)
        return s.exec(stmt).first()

    def _has_room(
        self, s: Session, task: ReviewTask, state: TaskState, reviewer: str, now: datetime
    ) -> bool:
        need = still_needed(
            state, required=task.required_decisions, reviewers_per_item=task.reviewers_per_item
        )
        return self._holders(s, task.id, reviewer, now) < need

    def _holders(self, s: Session, task_id: int | None, reviewer: str, now: datetime) -> int:
        """Live claims on the task by reviewers other than ``reviewer``."""
        return s.exec(
            select(func.count()).where(
                col(ReviewClaim.task_id) == task_id,
                col(ReviewClaim.reviewer) != reviewer,
                col(ReviewClaim.lease_expires_at) > now,
            )
        ).one()

    def _hold(
        self, s: Session, task: ReviewTask, reviewer: str, now: datetime, *, adjudicating: bool
    ) -> ReviewClaim:
        claim = self._claim_of(s, task.id, reviewer)
        if claim is None:
            claim = ReviewClaim(
                task_id=task.id,  # type: ignore[arg-type]
                reviewer=reviewer,
                lease_expires_at=now,
                created_at=now,  # on the queue's clock: "taken by bob at …" reads it
            )
        claim.lease_expires_at = now + self.lease
        claim.adjudicating = adjudicating
        s.add(claim)
        task.claimed_by = reviewer
        task.lease_expires_at = claim.lease_expires_at
        return claim

    def _claim_of(self, s: Session, task_id: int | None, reviewer: str) -> ReviewClaim | None:
        return s.exec(
            select(ReviewClaim).where(
                col(ReviewClaim.task_id) == task_id, col(ReviewClaim.reviewer) == reviewer
            )
        ).first()

    def _has_decided(self, s: Session, task_id: int | None, reviewer: str) -> bool:
        return (
            s.exec(
                select(Decision.id).where(
                    col(Decision.task_id) == task_id,
                    col(Decision.reviewer) == reviewer,
                    col(Decision.action) == "decide",
                    col(Decision.undone).is_(False),
                )
            ).first()
            is not None
        )

    def _lock_or_gone(self, s: Session, task_id: int) -> ReviewTask:
        try:
            return self._lock(s, task_id)
        except NotFoundError:
            raise TaskGoneError(
                f"task {task_id} was withdrawn from the queue",
                task_id=task_id,
                reason="withdrawn",
            ) from None

    def _gone(
        self,
        s: Session,
        task: ReviewTask,
        reviewer: str,
        reason: str,
        now: datetime,
        *,
        label: Any = _NO_LABEL,
        seconds: float | None = None,
    ) -> TaskGoneError:
        """What happened to the reviewer's task, as an error to raise after commit.
        Keeps ``label`` (when given) as a second opinion, and drops the reviewer's stale
        claim so the task is not held for nobody."""
        by, at, how = self._who(s, task, reviewer, reason, now)
        second_id: int | None = None
        if label is not _NO_LABEL:
            row = Decision(
                task_id=task.id,  # type: ignore[arg-type]
                item_id=task.item_id,
                reviewer=reviewer,
                action="second_opinion",
                label=label,
                label_before=task.final_label if task.final_label is not None else task.suggestion,
                note=f"{reason} by {by}" if by else reason,
                reasons=list(task.reasons),
                seconds=seconds,
                created_at=now,
            )
            s.add(row)
            s.flush()
            second_id = row.id
        stale = self._claim_of(s, task.id, reviewer)
        if stale is not None:
            s.delete(stale)
            s.flush()
            self._refresh(s, task, now)
        when = _when(at, now)
        if reason == "decided":
            message = (
                f"task {task.id} was already decided by {by}{when}: {_short(task.final_label)}"
            )
        elif reason == "adjudication":
            message = f"task {task.id} went to adjudication ({how}{when})"
        elif reason == "taken":
            message = f"task {task.id} was taken by {by}{when} after your lease ran out"
        else:
            message = f"your hold on task {task.id} lapsed{when}"
        if second_id is not None:
            message += f"; your choice ({_short(label)}) is kept as a second opinion"
        return TaskGoneError(
            message,
            task_id=task.id,  # type: ignore[arg-type]
            reason=reason,
            by=by,
            at=at,
            final_label=task.final_label if reason == "decided" else None,
            second_opinion_id=second_id,
        )

    def _who(
        self, s: Session, task: ReviewTask, reviewer: str, reason: str, now: datetime
    ) -> tuple[str | None, datetime | None, str]:
        """Who moved the task away from the reviewer, when, and how (in words)."""
        if reason in ("taken", "lapsed"):
            claim = s.exec(
                select(ReviewClaim)
                .where(
                    col(ReviewClaim.task_id) == task.id,
                    col(ReviewClaim.reviewer) != reviewer,
                    col(ReviewClaim.lease_expires_at) > now,
                )
                .order_by(col(ReviewClaim.id).desc())
            ).first()
            if claim is None:
                return None, None, reason
            return claim.reviewer, aware(claim.created_at), "claimed"
        actions = ("decide", "adjudicate") if reason == "decided" else ("decide", "flag")
        last = s.exec(
            select(Decision)
            .where(
                col(Decision.task_id) == task.id,
                col(Decision.action).in_(actions),
                col(Decision.undone).is_(False),
            )
            .order_by(col(Decision.id).desc())
        ).first()
        if last is None:
            return None, None, reason
        how = f"flagged by {last.reviewer}" if last.action == "flag" else "the reviewers disagreed"
        return last.reviewer, aware(last.created_at), how

    def _lock(self, s: Session, task_id: int) -> ReviewTask:
        stmt = select(ReviewTask).where(ReviewTask.id == task_id)
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        task = s.exec(stmt).first()
        if task is None:
            raise NotFoundError(f"review task {task_id} does not exist")
        return task

    def _state(self, s: Session, task: ReviewTask, now: datetime) -> TaskState:
        return task_state(s, task, now)

    def _refresh(self, s: Session, task: ReviewTask, now: datetime) -> TaskState:
        """Write the derived status, final label and current holder onto the task row."""
        state = self._state(s, task, now)
        task.status = state.status
        task.final_label = state.final_label
        task.final_source = state.final_source
        latest = s.exec(
            select(ReviewClaim)
            .where(col(ReviewClaim.task_id) == task.id, col(ReviewClaim.lease_expires_at) > now)
            .order_by(col(ReviewClaim.id).desc())
        ).first()
        task.claimed_by = latest.reviewer if latest else None
        task.lease_expires_at = latest.lease_expires_at if latest else None
        task.updated_at = now
        s.add(task)
        return state

    def _record(
        self,
        s: Session,
        task: ReviewTask,
        reviewer: str,
        action: str,
        label: Any,
        now: datetime,
        *,
        seconds: float | None = None,
        note: str | None = None,
    ) -> DecisionView:
        before = task.final_label if task.final_label is not None else task.suggestion
        decision = Decision(
            task_id=task.id,  # type: ignore[arg-type]
            item_id=task.item_id,
            reviewer=reviewer,
            action=action,
            label=label,
            label_before=before,
            note=note,
            reasons=list(task.reasons),
            seconds=seconds,
            created_at=now,
        )
        s.add(decision)
        claim = self._claim_of(s, task.id, reviewer)
        if claim is not None:
            s.delete(claim)
        s.flush()
        self._refresh(s, task, now)
        return _decision_view(decision)

    def _ontology(self, s: Session, run_id: int | None) -> Ontology:
        if run_id is None:
            raise ReviewError("this review task has no run, so no ontology to check labels")
        if run_id not in self._ontologies:
            run = s.get(Run, run_id)
            if run is None:
                raise NotFoundError(f"run {run_id} does not exist")
            self._ontologies[run_id] = Ontology.model_validate(run.ontology)
        return self._ontologies[run_id]

    def _view(self, s: Session, task: ReviewTask) -> TaskView:
        ont = self._ontology(s, task.run_id)
        item = s.get(Item, task.item_id)
        assert item is not None
        distribution = None
        if task.prediction_id is not None:
            pred = s.get(Prediction, task.prediction_id)
            if pred is not None and isinstance(pred.distribution, dict):
                distribution = pred.distribution
        shown = {k: item.payload[k] for k in ont.input.fields if k in item.payload}
        if IMAGE_KEY in item.payload:  # the picture to show: {path, sha256, width, height}
            shown[IMAGE_KEY] = item.payload[IMAGE_KEY]
        decided = s.exec(
            select(func.count()).where(
                col(Decision.task_id) == task.id,
                col(Decision.action) == "decide",
                col(Decision.undone).is_(False),
            )
        ).one()
        return TaskView(
            task_id=task.id,  # type: ignore[arg-type]
            item_id=item.id,  # type: ignore[arg-type]
            external_id=item.external_id,
            queue=task.queue,
            fields=shown or dict(item.payload),
            task_type=ont.task.value,
            labels=ont.label_names,
            label_keys=ont.label_keys(),
            guidelines=ont.guidelines,
            label_descriptions={lab.name: lab.description for lab in ont.labels},
            suggestion=task.suggestion,
            confidence=task.confidence,
            distribution=distribution,
            reasons=shown_reasons(task),
            alternatives=dict(task.alternatives or {}),
            status=task.status,
            decisions_so_far=decided,
            required_decisions=task.required_decisions,
        )


def task_state(s: Session, task: ReviewTask, now: datetime) -> TaskState:
    """Derive a task's state from its live decisions and live claims."""
    rows = s.exec(
        select(Decision)
        .where(
            col(Decision.task_id) == task.id,
            col(Decision.undone).is_(False),
            col(Decision.action).in_(HUMAN_ACTIONS),
        )
        .order_by(col(Decision.id))
    ).all()
    claims = s.exec(
        select(func.count()).where(
            col(ReviewClaim.task_id) == task.id, col(ReviewClaim.lease_expires_at) > now
        )
    ).one()
    return derive_state(
        [LiveAction(d.reviewer, d.action, d.label) for d in rows],
        required=task.required_decisions,
        reviewers_per_item=task.reviewers_per_item,
        live_claims=claims,
    )


def shown_reasons(task: ReviewTask) -> list[str]:
    """Routing reasons a reviewer may see. ``honeypot`` never shows. A honeypot with no
    other reason was an auto-accepted prediction, exactly like an audit sample, so it
    shows as ``audit``."""
    reasons = [r for r in task.reasons if r != "honeypot"]
    if not reasons and task.is_honeypot:
        return ["audit"]
    return reasons


def _decision_view(d: Decision) -> DecisionView:
    return DecisionView(
        id=d.id,  # type: ignore[arg-type]
        task_id=d.task_id,
        reviewer=d.reviewer,
        action=d.action,
        label=d.label,
        label_before=d.label_before,
        seconds=d.seconds,
        created_at=aware(d.created_at),  # type: ignore[arg-type]
        note=d.note,
    )


def _pace(decisions: list[tuple[datetime, float | None]], now: datetime) -> float | None:
    """Decisions per minute over recent work: the span between the first and last of
    the last few decisions (within ``PACE_WINDOW``), else their recorded seconds."""
    recent = [
        (aware(at), sec)
        for at, sec in decisions[-PACE_MAX_DECISIONS:]
        if now - aware(at) <= PACE_WINDOW  # type: ignore[operator]
    ]
    if len(recent) >= 2:
        span = (recent[-1][0] - recent[0][0]).total_seconds()  # type: ignore[operator]
        if span > 0:
            return 60.0 * (len(recent) - 1) / span
    timed = [sec for _, sec in recent if sec]
    if timed:
        return 60.0 * len(timed) / sum(timed)
    return None


def _when(at: datetime | None, now: datetime) -> str:
    """' at 10:42:03 UTC' (with the date when not today); '' when unknown."""
    if at is None:
        return ""
    fmt = "%H:%M:%S UTC" if at.date() == now.date() else "%Y-%m-%d %H:%M UTC"
    return f" at {at.astimezone(UTC).strftime(fmt)}"


def _short(label: Any, width: int = 40) -> str:
    """A label in a one-line notice: names as they are, anything else as compact JSON."""
    text = label if isinstance(label, str) else json.dumps(label, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"
