"""Commits predictions in small batches from a background thread.

The event loop never waits on the database: outcomes are queued and a thread
writes them in batches (every ``batch_size`` outcomes or ``interval_s``), each
batch one transaction. A killed run loses at most the batch in flight, never
anything committed; a resumed run redoes only what is missing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert

from autolabel.engine.labeler import LabelOutcome
from autolabel.store.database import Database
from autolabel.store.tables import Prediction, utcnow

_STOP = object()


class PredictionWriter:
    def __init__(
        self,
        db: Database,
        run_id: int,
        prompt_hash: str,
        *,
        batch_size: int = 32,
        interval_s: float = 0.25,
        on_commit: Callable[[list[LabelOutcome]], None] | None = None,
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.prompt_hash = prompt_hash
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.on_commit = on_commit
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="autolabel-writer", daemon=True)
        self._thread.start()

    def put(self, outcome: LabelOutcome) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(outcome)

    def close(self) -> None:
        """Flush everything queued and stop; re-raise a write failure."""
        self._queue.put(_STOP)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        pending: list[LabelOutcome] = []
        deadline = time.monotonic() + self.interval_s
        while True:
            try:
                got = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                got = None
            if got is not None and got is not _STOP:
                pending.append(got)
            due = len(pending) >= self.batch_size or time.monotonic() >= deadline
            if pending and (due or got is _STOP):
                try:
                    self._commit(pending)
                except BaseException as exc:  # surfaced to the pipeline on the next put/close
                    self.error = exc
                    return
                pending = []
            if not pending:
                deadline = time.monotonic() + self.interval_s
            if got is _STOP:
                return

    def _commit(self, outcomes: list[LabelOutcome]) -> None:
        now = utcnow()
        rows = [self._row(o, now) for o in outcomes]
        ids = [o.item_id for o in outcomes]
        with self.db.engine.begin() as conn:
            # Replace earlier failed attempts (resume retries failures): one prediction per item.
            conn.execute(
                delete(Prediction).where(
                    Prediction.run_id == self.run_id,  # type: ignore[arg-type]
                    Prediction.item_id.in_(ids),  # type: ignore[attr-defined]
                )
            )
            conn.execute(insert(Prediction), rows)
        if self.on_commit is not None:
            self.on_commit(outcomes)

    def _row(self, o: LabelOutcome, now: Any) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "item_id": o.item_id,
            "label": o.label,
            "confidence": o.confidence,
            "distribution": o.distribution,
            "method": o.method,
            "samples": o.samples,
            "model": o.model,
            "prompt_hash": self.prompt_hash,
            "tokens_in": o.tokens_in,
            "tokens_out": o.tokens_out,
            "latency_ms": round(o.latency_ms, 3),
            "cache_hit": o.cache_hit,
            "attempts": o.attempts,
            "error": o.error,
            "raw": o.raw if o.error else None,
            "created_at": now,
        }
