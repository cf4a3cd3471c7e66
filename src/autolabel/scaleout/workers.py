"""What runs on Ray workers: item upsert (tasks) and labeling (an actor pool).

Both stages reuse the local engine's code: ``_prepare_chunk`` registers items and
finds those already labeled in this run, the :class:`Labeler` labels one item, and
``prediction_row`` builds the stored row. Predictions are committed per batch with one
multi-row ``INSERT … ON CONFLICT (run_id, item_id)``: a batch that Ray retries after a
worker died, a duplicate row labeled by two actors, or a driver that died and was
resumed while its last actor was still writing, all end with one prediction per item
(a success is never replaced; an earlier failure is).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Table, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError

from autolabel.engine.cache import ResponseCache
from autolabel.engine.inputs import InputItem
from autolabel.engine.labeler import Labeler, LabelerOptions, LabelOutcome
from autolabel.engine.limits import RateLimits
from autolabel.engine.pipeline import _prepare_chunk
from autolabel.engine.writer import prediction_row, replace_prediction_demos
from autolabel.errors import ConfigError
from autolabel.learning.live import demo_chooser
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import Provider
from autolabel.store.database import Database
from autolabel.store.tables import Prediction, utcnow

PREPARED = pa.schema(
    [
        ("status", pa.string()),  # todo | done | dup | bad | changed (a count)
        ("item_id", pa.int64()),
        ("payload", pa.string()),
        ("content_hash", pa.string()),
        ("row", pa.int64()),
        ("field", pa.string()),
        ("message", pa.string()),
    ]
)
LABELED = pa.schema(
    [
        ("status", pa.string()),  # labeled | failed | done | dup | bad
        ("cache_hit", pa.bool_()),
        ("model_calls", pa.int64()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("permanent", pa.bool_()),
        ("error", pa.string()),
        ("row", pa.int64()),
        ("field", pa.string()),
        ("message", pa.string()),
    ]
)

# One Database per worker process and URL: Ray reuses worker processes across tasks.
_DATABASES: dict[str, Database] = {}
_DB_LOCK = threading.Lock()


def worker_db(url: str) -> Database:
    with _DB_LOCK:
        db = _DATABASES.get(url)
        if db is None:
            db = _DATABASES[url] = Database(url)
        return db


# -- the provider, rebuilt once per actor ---------------------------------------------------


@dataclass(frozen=True)
class ProviderSpec:
    """How to build the job's provider again inside an actor (providers hold clients,
    loops or a loaded model, none of which can be shipped)."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Provider:
        if self.kind == "openai":
            from autolabel.providers.openai import OpenAIProvider

            return OpenAIProvider(**self.kwargs)
        if self.kind == "local":
            from autolabel.providers.local import LocalProvider

            return LocalProvider(**self.kwargs)
        raise ConfigError(f"the Ray engine cannot run the '{self.kind}' provider")


def provider_spec(provider: Provider) -> ProviderSpec:
    if provider.name == "openai":
        from autolabel.providers.openai import OpenAIProvider

        assert isinstance(provider, OpenAIProvider)
        # The key travels with the actor's arguments: on a shared cluster prefer
        # AUTOLABEL_API_KEY set on every node (see docs/scale.md).
        return ProviderSpec(
            "openai",
            {
                "model": provider.model,
                "base_url": provider.base_url,
                "api_key": provider._api_key,  # noqa: SLF001 - rebuilt as is
                "timeout_s": provider.timeout_s,
                "max_connections": provider.max_connections,
                "top_logprobs": provider.top_logprobs,
                "structured": provider.structured_mode,
                "extra_body": provider.extra_body,
            },
        )
    if provider.name == "local":
        from autolabel.providers.local import LocalProvider

        assert isinstance(provider, LocalProvider)
        return ProviderSpec(
            "local",
            {
                "model_path": str(provider.model_path),
                "model_name": provider.model,
                "n_ctx": provider.runtime.n_ctx,
            },
        )
    raise ConfigError(
        f"the Ray engine supports the openai and local providers, not '{provider.name}'"
    )


@dataclass(frozen=True)
class StageConfig:
    """Everything a worker needs, picklable."""

    db_url: str
    dataset_id: int
    run_id: int
    ontology: Ontology
    template: str | None
    prompt_hash: str
    provider: ProviderSpec
    options: LabelerOptions
    concurrency: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    cache_dir: str | None


# -- stage 1: register items, skip the ones this run already has ----------------------------


def prepare_batch(batch: pa.Table, cfg: StageConfig) -> pa.Table:
    rows = batch.to_pylist()
    chunk = [
        InputItem(r["row"], r["external_id"], r["content_hash"], json.loads(r["payload"]))
        for r in rows
        if r["status"] == "item"
    ]
    out: list[dict[str, Any]] = [
        {"status": "bad", "row": r["row"], "field": r["field"], "message": r["message"]}
        for r in rows
        if r["status"] == "bad"
    ]
    if chunk:
        todo, n_done, n_changed = _prepare_with_retry(worker_db(cfg.db_url), cfg, chunk)
        out += [
            {"status": "todo", "item_id": i, "payload": json.dumps(p), "content_hash": h}
            for i, p, h in todo
        ]
        out += [{"status": "done"}] * n_done
        out += [{"status": "dup"}] * (len(chunk) - len(todo) - n_done)
        out += [{"status": "changed"}] * n_changed
    return pa.Table.from_pylist(out, schema=PREPARED)


def _prepare_with_retry(
    db: Database, cfg: StageConfig, chunk: list[InputItem]
) -> tuple[list[tuple[int, dict[str, Any], str]], int, int]:
    # Two tasks may insert the same new external id at once (a repeated row in two
    # blocks): the loser's transaction rolls back and its retry finds the item.
    for attempt in range(5):
        try:
            return _prepare_chunk(db, cfg.dataset_id, cfg.run_id, chunk, set())
        except (IntegrityError, OperationalError):
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


# -- stage 2: label in an actor pool ----------------------------------------------------------


class LabelBatch:
    """A Ray Data callable class: one provider, cache, labeler and event loop per actor."""

    def __init__(self, cfg: StageConfig) -> None:
        self.cfg = cfg
        compiler = PromptCompiler(cfg.ontology, template=cfg.template)
        if compiler.prompt_hash != cfg.prompt_hash:
            # Another autolabel version (or prompts/) on this node: its labels would not
            # belong to this run.
            raise ConfigError(
                f"this Ray worker compiles prompt {compiler.prompt_hash[:12]}, the job has "
                f"{cfg.prompt_hash[:12]}",
                hint="install the same autolabel version on every node of the cluster",
            )
        self.provider = cfg.provider.build()
        self.labeler = Labeler(
            cfg.ontology,
            compiler,
            self.provider,
            _open_cache(cfg.cache_dir),
            RateLimits(cfg.requests_per_minute, cfg.tokens_per_minute),
            cfg.options,
        )
        self.db = worker_db(cfg.db_url)
        # Demonstrations from reviews, like the local engine: the pool as of this actor's
        # start (the local engine loads it once per run).
        self.demos = demo_chooser(self.db, cfg.ontology)
        self.table: Table = Prediction.__table__  # type: ignore[attr-defined]
        # The provider's HTTP client belongs to one loop: keep one running for the actor.
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="label-loop", daemon=True).start()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        todo = [
            (r["item_id"], json.loads(r["payload"]), r["content_hash"])
            for r in rows
            if r["status"] == "todo"
        ]
        outcomes = asyncio.run_coroutine_threadsafe(self._label(todo), self.loop).result()
        if outcomes:
            self._commit(outcomes)
        out: list[dict[str, Any]] = [
            {
                "status": "labeled" if o.ok else "failed",
                "cache_hit": o.cache_hit,
                "model_calls": o.model_calls,
                "tokens_in": o.tokens_in,
                "tokens_out": o.tokens_out,
                "permanent": o.permanent_failure,
                "error": o.error,
            }
            for o in outcomes
        ]
        out += [
            {"status": r["status"], "row": r["row"], "field": r["field"], "message": r["message"]}
            for r in rows
            if r["status"] != "todo"
        ]
        return pa.Table.from_pylist(out, schema=LABELED)

    async def _label(self, todo: list[tuple[int, dict[str, Any], str]]) -> list[LabelOutcome]:
        gate = asyncio.Semaphore(self.cfg.concurrency)

        async def one(item_id: int, payload: dict[str, Any], content_hash: str) -> LabelOutcome:
            shown = self.demos(item_id, payload) if self.demos is not None else ()
            async with gate:
                outcome = await self.labeler.label(item_id, payload, shown)
            outcome.content_hash = content_hash  # what this answer was made on
            return outcome

        return list(await asyncio.gather(*(one(*t) for t in todo)))

    def _commit(self, outcomes: list[LabelOutcome]) -> None:
        now = utcnow()
        rows = [prediction_row(self.cfg.run_id, self.cfg.prompt_hash, o, now) for o in outcomes]
        stmt = _upsert(self.db, self.table)
        for attempt in range(5):
            try:
                with self.db.engine.begin() as conn:
                    # executemany of one cached statement: the driver batches the rows
                    # (a 256-row VALUES literal would be compiled anew for every batch).
                    conn.execute(stmt, rows)
                    if any(o.demonstrations for o in outcomes):
                        self._record_demos(conn, outcomes)
                return
            except OperationalError:  # SQLite busy past its timeout: try the batch again
                if attempt == 4:
                    raise

    def _record_demos(self, conn: Any, outcomes: list[LabelOutcome]) -> None:
        # Only for the predictions this batch actually wrote (the upsert keeps an earlier
        # success): the prompt hash covers the demonstrations, so a stored prediction
        # with this outcome's hash was made with this outcome's demonstrations.
        ids = [o.item_id for o in outcomes]
        stored = dict(
            conn.execute(
                select(self.table.c.item_id, self.table.c.prompt_hash).where(
                    self.table.c.run_id == self.cfg.run_id, self.table.c.item_id.in_(ids)
                )
            ).all()
        )
        written = [o for o in outcomes if o.prompt_hash and stored.get(o.item_id) == o.prompt_hash]
        replace_prediction_demos(conn, self.cfg.run_id, written)

    def __del__(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self.provider.aclose(), loop)
            loop.call_soon_threadsafe(loop.stop)


def _upsert(db: Database, table: Table) -> Any:
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(table)
    keys = {"run_id", "item_id", "id"}
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "item_id"],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        # One prediction per item: a retry replaces an earlier failure, never a label made
        # on the same content; a label made on content that has since changed is replaced.
        where=or_(
            table.c.error.is_not(None),
            table.c.content_hash.is_distinct_from(stmt.excluded.content_hash),
        ),
    )


def _open_cache(directory: str | None) -> ResponseCache | None:
    """The response cache where this node can open it; without it results are the same."""
    if directory is None:
        return None
    try:
        return ResponseCache(Path(directory))
    except Exception:  # noqa: BLE001 - unreachable or read-only on this node: label without
        return None
