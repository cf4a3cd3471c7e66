"""Commits predictions in small batches from a background thread.

The event loop never waits on the database: outcomes are buffered on the loop and
handed to a thread in batches (every ``batch_size`` outcomes, or by ``flush()``,
which the pipeline calls every ``interval_s``); each batch is one transaction.
Handing over lists, not single outcomes, wakes the thread once per batch.
A killed run loses at most the batches in flight, never anything committed; a
resumed run redoes only what is missing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from autolabel.engine.labeler import LabelOutcome
from autolabel.store.database import Database
from autolabel.store.tables import Prediction, PredictionDemos, utcnow

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
        self._buffer: list[LabelOutcome] = []
        self._thread = threading.Thread(target=self._loop, name="autolabel-writer", daemon=True)
        self._thread.start()

    def put(self, outcome: LabelOutcome) -> None:
        """Buffer one outcome (event-loop side); a full batch goes to the thread."""
        if self.error is not None:
            raise self.error
        self._buffer.append(outcome)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Hand whatever is buffered to the writer thread."""
        if self._buffer:
            self._queue.put(self._buffer)
            self._buffer = []

    def close(self) -> None:
        """Flush everything and stop; re-raise a write failure."""
        self.flush()
        self._queue.put(_STOP)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        while (batch := self._queue.get()) is not _STOP:
            try:
                self._commit(batch)
            except BaseException as exc:  # surfaced to the pipeline on the next put/close
                self.error = exc
                return

    def _commit(self, outcomes: list[LabelOutcome]) -> None:
        now = utcnow()
        rows = [prediction_row(self.run_id, self.prompt_hash, o, now) for o in outcomes]
        ids = [o.item_id for o in outcomes]
        with self.db.engine.begin() as conn:
            # One prediction per item: an earlier failed attempt (resume retries failures) is
            # updated in place, keeping its id, which review tasks may point at.
            earlier = dict(
                conn.execute(
                    select(Prediction.item_id, Prediction.id).where(
                        Prediction.run_id == self.run_id,  # type: ignore[arg-type]
                        Prediction.item_id.in_(ids),  # type: ignore[attr-defined]
                    )
                ).all()
            )
            fresh = [r for r in rows if r["item_id"] not in earlier]
            redo = [
                {"pid": earlier[r["item_id"]], **{f"v_{k}": v for k, v in r.items()}}
                for r in rows
                if r["item_id"] in earlier
            ]
            if redo:
                conn.execute(
                    update(Prediction)
                    .where(Prediction.id == bindparam("pid"))  # type: ignore[arg-type]
                    .values({k: bindparam(f"v_{k}") for k in rows[0]}),
                    redo,
                )
            if fresh:
                conn.execute(insert(Prediction), fresh)
            replace_prediction_demos(conn, self.run_id, outcomes)
        if self.on_commit is not None:
            self.on_commit(outcomes)


def replace_prediction_demos(conn: Any, run_id: int, outcomes: Sequence[LabelOutcome]) -> None:
    """Record which demonstrations each item's prompt showed (the row of a re-labelled
    item is replaced); shared by this writer and the Ray engine's batch writes."""
    ids = [o.item_id for o in outcomes]
    demos = [
        {"run_id": run_id, "item_id": o.item_id, "refs": list(o.demonstrations)}
        for o in outcomes
        if o.demonstrations
    ]
    conn.execute(
        delete(PredictionDemos).where(
            PredictionDemos.run_id == run_id,  # type: ignore[arg-type]
            PredictionDemos.item_id.in_(ids),  # type: ignore[attr-defined]
        )
    )
    if demos:
        conn.execute(insert(PredictionDemos), demos)


def prediction_row(run_id: int, prompt_hash: str, o: LabelOutcome, now: Any) -> dict[str, Any]:
    """One ``predictions`` row; shared by this writer and the Ray engine's batch writes."""
    return {
        "run_id": run_id,
        "item_id": o.item_id,
        "label": o.label,
        "confidence": o.confidence,
        "distribution": o.distribution,
        "method": o.method,
        "samples": o.samples,
        "model": o.model,
        # With demonstrations from reviews each item's prompt (and hash) is its own.
        "prompt_hash": o.prompt_hash or prompt_hash,
        "tokens_in": o.tokens_in,
        "tokens_out": o.tokens_out,
        "latency_ms": round(o.latency_ms, 3),
        "model_ms": None if o.model_ms is None else round(o.model_ms, 3),
        "content_hash": o.content_hash,
        "cache_hit": o.cache_hit,
        "attempts": o.attempts,
        "error": o.error,
        "raw": o.raw if o.error else None,
        "created_at": now,
    }
