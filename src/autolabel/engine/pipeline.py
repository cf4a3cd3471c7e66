"""The labeling pipeline: stream items → bounded concurrent labeling → batched commits.

    rows (streamed) ─► validate ─► upsert items ─► bounded queue ─► N workers ─► writer
                                                                   (Labeler)    (thread, batches)

Resume: a job is identified by ``run_key`` (dataset, ontology, prompt, provider,
model, parameters). Starting a job whose last run is unfinished, or finished with
failed items, continues that run and labels only items without a successful
prediction (so failures are retried in the same run); starting a job whose last run
completed cleanly makes a new run, served from the response cache. An invocation
that fails before it wrote any prediction into the run it created removes that run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select, update

from autolabel.engine.cache import ResponseCache
from autolabel.engine.datasets import dataset_for
from autolabel.engine.inputs import InputItem, count_rows, read_rows, validator_for
from autolabel.engine.labeler import Labeler, LabelerOptions, LabelOutcome
from autolabel.engine.limits import RateLimits
from autolabel.engine.progress import RunProgress
from autolabel.engine.writer import PredictionWriter
from autolabel.errors import BadRowError, InputError, ProviderError
from autolabel.hashing import stable_hash
from autolabel.learning.live import demo_chooser
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import Provider
from autolabel.store.database import Database
from autolabel.store.leases import Lease, acquire_job_lease
from autolabel.store.ontology_versions import read_text, store_version
from autolabel.store.tables import Item, ItemChange, Prediction, Run, utcnow

CHUNK = 256  # rows read, validated and upserted together
# Consecutive permanent refusals (bad key, unknown model) before the run stops early.
CIRCUIT_BREAKER = 10


@dataclass
class LabelJob:
    ontology: Ontology
    data: Path
    provider: Provider
    db: Database
    cache: ResponseCache | None = None
    ontology_path: str | None = None
    template: str | None = None
    id_column: str | None = None
    dataset: str | None = None
    limit: int | None = None
    concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    samples: int = 5
    temperature: float = 0.0
    reasks: int = 2
    max_retries: int = 6
    max_tokens: int = 512
    seed: int | None = 0
    on_bad_row: Literal["skip", "fail"] = "skip"
    run_name: str | None = None
    new_run: bool = False
    progress: bool = True
    commit_every: int = 32
    retry_initial_wait: float = 0.5
    price_in_per_million: float = 0.0
    price_out_per_million: float = 0.0


@dataclass
class RunSummary:
    run_id: int
    resumed: bool
    already_done: int  # items labeled by an earlier attempt of this run
    n_items: int  # items seen in the input (valid rows, de-duplicated)
    n_labeled: int  # successful predictions in the run (all attempts)
    n_failed: int
    n_cache_hits: int  # this invocation
    n_model_calls: int  # this invocation
    tokens_in: int
    tokens_out: int
    elapsed_s: float
    n_bad_rows: int = 0
    bad_rows: list[BadRowError] = field(default_factory=list)  # the first 100
    n_duplicates: int = 0
    label_counts: Counter[str] = field(default_factory=Counter)
    mean_confidence: float | None = None
    methods: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    cost_usd: float = 0.0
    # Items whose earlier attempt in this run had failed: retried by this invocation.
    retried_failed: int = 0
    n_changed: int = 0  # items whose content changed since this run labeled them: redone
    notes: list[str] = field(default_factory=list)


def run_key(job: LabelJob, dataset_id: int, compiler: PromptCompiler) -> str:
    return stable_hash(
        {
            "dataset": dataset_id,
            "ontology": job.ontology.prompt_view(),
            "prompt_hash": compiler.prompt_hash,
            **job.provider.identity(),
            "params": _params(job),
        }
    )


def _params(job: LabelJob) -> dict[str, Any]:
    return {
        "temperature": job.temperature,
        "samples": job.samples,
        "reasks": job.reasks,
        "max_tokens": job.max_tokens,
        "seed": job.seed,
        "id_column": job.id_column,
    }


def labeler_options(job: LabelJob) -> LabelerOptions:
    """The per-item labeling options of a job (the local and the Ray engine share them)."""
    return LabelerOptions(
        temperature=job.temperature,
        samples=job.samples,
        reasks=job.reasks,
        max_retries=job.max_retries,
        max_tokens=job.max_tokens,
        seed=job.seed,
        use_cache=job.cache is not None,
        retry_initial_wait=job.retry_initial_wait,
    )


def run_job(job: LabelJob) -> RunSummary:
    """Synchronous entry point (CLI, scripts, tests)."""
    return asyncio.run(arun_job(job))


async def arun_job(job: LabelJob) -> RunSummary:
    started = time.perf_counter()
    compiler = PromptCompiler(job.ontology, template=job.template)
    db = job.db
    if not job.data.exists():  # before any run is made for it
        raise InputError(f"input file not found: {job.data}")
    dataset = await asyncio.to_thread(dataset_for, db, job.data, job.dataset, create=True)
    dataset_id = int(dataset.id)  # type: ignore[arg-type]
    key = run_key(job, dataset_id, compiler)
    # One run per job at a time: a second invocation stops here, naming the holder.
    lease = await asyncio.to_thread(acquire_job_lease, db, key)
    try:
        summary = await _run_leased(job, compiler, dataset_id, key, lease, started)
        if dataset.note:
            summary.notes.append(dataset.note)
        return summary
    finally:
        await asyncio.to_thread(lease.release)


async def _run_leased(
    job: LabelJob,
    compiler: PromptCompiler,
    dataset_id: int,
    key: str,
    lease: Lease,
    started: float,
) -> RunSummary:
    db = job.db
    run, resumed = await asyncio.to_thread(_open_run, db, job, dataset_id, key, compiler)
    assert run.id is not None
    await asyncio.to_thread(lease.attach, run.id)
    failed_before = await asyncio.to_thread(_count_failed, db, run.id) if resumed else 0
    demos = await asyncio.to_thread(demo_chooser, db, job.ontology)
    labeler = Labeler(
        job.ontology,
        compiler,
        job.provider,
        job.cache,
        RateLimits(job.requests_per_minute, job.tokens_per_minute),
        labeler_options(job),
    )
    summary = RunSummary(
        run_id=run.id,
        resumed=resumed,
        already_done=0,
        n_items=0,
        n_labeled=0,
        n_failed=0,
        n_cache_hits=0,
        n_model_calls=0,
        tokens_in=0,
        tokens_out=0,
        elapsed_s=0.0,
        retried_failed=failed_before,
    )
    total = count_rows(job.data)
    if total is not None and job.limit is not None:
        total = min(total, job.limit)
    in_flight: set[int] = set()
    writer = PredictionWriter(
        db,
        run.id,
        compiler.prompt_hash,
        batch_size=job.commit_every,
        on_commit=lambda outs: in_flight.difference_update(o.item_id for o in outs),
    )
    work: asyncio.Queue[tuple[int, dict[str, Any], str] | None] = asyncio.Queue(
        maxsize=job.concurrency * 2
    )
    abort: list[BaseException] = []
    permanent_streak = 0

    with RunProgress(total, enabled=job.progress, description=f"run {run.id}") as progress:

        async def produce() -> None:
            rows = _validated(job, compiler.ontology, summary)
            while True:
                chunk = await asyncio.to_thread(_take, rows, CHUNK)
                if not chunk:
                    break
                todo, done, changed = await asyncio.to_thread(
                    _prepare_chunk, db, dataset_id, run.id, chunk, in_flight
                )
                summary.n_changed += changed
                summary.n_items += len(chunk)
                summary.already_done += done
                summary.n_duplicates += len(chunk) - len(todo) - done
                progress.skip(len(chunk) - len(todo))
                for item_id, payload, content_hash in todo:
                    if abort:
                        return
                    in_flight.add(item_id)
                    await work.put((item_id, payload, content_hash))
            for _ in range(job.concurrency):
                await work.put(None)

        async def consume() -> None:
            nonlocal permanent_streak
            while (got := await work.get()) is not None:
                if lease.lost.is_set() and not abort:
                    abort.append(lease.lost_error())  # another process took the job over
                if abort:
                    continue  # drain
                item_id, payload, content_hash = got
                shown = demos(item_id, payload) if demos is not None else ()
                outcome = await labeler.label(item_id, payload, shown)
                outcome.content_hash = content_hash  # what this answer was made on
                _account(summary, outcome)
                writer.put(outcome)
                progress.update(
                    failed=not outcome.ok,
                    cache_hit=outcome.cache_hit,
                    tokens=outcome.tokens_in + outcome.tokens_out,
                )
                permanent_streak = permanent_streak + 1 if outcome.permanent_failure else 0
                if permanent_streak >= CIRCUIT_BREAKER and not abort:
                    abort.append(
                        ProviderError(
                            f"stopped after {CIRCUIT_BREAKER} items in a row were refused: "
                            f"{outcome.error}",
                            hint="check the model name, API key and base URL; "
                            "the items done so far are saved and the run resumes",
                        )
                    )

        async def flush_periodically() -> None:
            # Partial batches are committed at least this often: little is lost to a kill.
            while True:
                await asyncio.sleep(writer.interval_s)
                writer.flush()

        interrupted = False
        flusher = asyncio.create_task(flush_periodically())
        try:
            producer = asyncio.create_task(produce())
            consumers = [asyncio.create_task(consume()) for _ in range(job.concurrency)]
            await asyncio.gather(producer, *consumers)
        except BaseException:
            # Cancelled, Ctrl-C or a bad row with --on-bad-row fail: resumable, not complete.
            interrupted = True
            raise
        finally:
            for task in [flusher, producer, *consumers]:
                task.cancel()
            writer.close()
            status = "interrupted" if interrupted or abort else "completed"
            # A new run that failed before its first answer (bad input, Ctrl-C) is removed:
            # left behind, the next invocation would resume it by surprise.
            discarded = (
                interrupted
                and not resumed
                and await asyncio.to_thread(_discard_if_empty, db, run.id)
            )
            if not discarded:
                await asyncio.to_thread(_finish_run, db, run.id, status, job, summary)
            summary.elapsed_s = time.perf_counter() - started
            summary.interrupted = interrupted
    if abort:
        raise abort[0]
    return summary


def _validated(job: LabelJob, ontology: Ontology, summary: RunSummary) -> Iterator[InputItem]:
    validator = validator_for(ontology, job.data, job.id_column)
    taken = 0
    for row_number, row in read_rows(job.data, ontology.input.image):
        if job.limit is not None and taken >= job.limit:
            return
        taken += 1
        try:
            yield validator.validate(row_number, row)
        except BadRowError as exc:
            if job.on_bad_row == "fail":
                exc.message = f"{job.data}: {exc.message}"
                exc.hint = "fix the row, or pass --on-bad-row skip to label the rest"
                raise
            summary.n_bad_rows += 1
            if len(summary.bad_rows) < 100:
                summary.bad_rows.append(exc)


def _take(rows: Iterator[InputItem], n: int) -> list[InputItem]:
    out: list[InputItem] = []
    for item in rows:
        out.append(item)
        if len(out) >= n:
            break
    return out


def _account(summary: RunSummary, o: LabelOutcome) -> None:
    summary.n_model_calls += o.model_calls
    summary.n_cache_hits += o.cache_hit
    summary.tokens_in += o.tokens_in
    summary.tokens_out += o.tokens_out


# -- database steps (run in a worker thread) -----------------------------------------


def is_resumable(run: Run) -> bool:
    """Unfinished, or finished with failed items: the same job continues it (and retries them)."""
    return run.status != "completed" or run.n_failed > 0


def _open_run(
    db: Database, job: LabelJob, dataset_id: int, key: str, compiler: PromptCompiler
) -> tuple[Run, bool]:
    with db.session() as s:
        if not job.new_run:
            last = (
                s.exec(select(Run).where(Run.run_key == key).order_by(Run.id.desc()))  # type: ignore[call-overload,union-attr]
                .scalars()
                .first()
            )
            if last is not None and is_resumable(last):
                last.status = "running"
                s.add(last)
                s.commit()
                return last, True
        run = Run(
            run_key=key,
            name=job.run_name,
            dataset_id=dataset_id,
            ontology_name=job.ontology.name,
            ontology_version=job.ontology.version,
            ontology_hash=stable_hash(job.ontology.model_dump(mode="json")),
            ontology_path=job.ontology_path,
            ontology=job.ontology.model_dump(mode="json"),
            prompt_hash=compiler.prompt_hash,
            template=compiler.template_name,
            task=job.ontology.task.value,
            provider=job.provider.name,
            model=job.provider.model,
            base_url=job.provider.base_url,
            params={**_params(job), "concurrency": job.concurrency},
        )
        s.add(run)
        # The ontology text this run is made under, found again by run.ontology_hash.
        store_version(
            s,
            job.ontology,
            text=read_text(job.ontology_path),
            source=job.ontology_path,
            digest=run.ontology_hash,
        )
        s.commit()
        return run, False


def _prepare_chunk(
    db: Database, dataset_id: int, run_id: int, chunk: list[InputItem], in_flight: set[int]
) -> tuple[list[tuple[int, dict[str, Any], str]], int, int]:
    """Upsert the chunk's items; return those still to label, how many are done, and
    how many this run had labeled on content that has since changed (labeled again)."""
    ext = [c.external_id for c in chunk]
    with db.engine.begin() as conn:
        existing = {
            row.external_id: (row.id, row.content_hash)
            for row in conn.execute(
                select(Item.id, Item.external_id, Item.content_hash).where(
                    Item.dataset_id == dataset_id,
                    Item.external_id.in_(ext),  # type: ignore[attr-defined]
                )
            )
        }
        new_rows = []
        seen: set[str] = set()
        for c in chunk:
            if c.external_id in existing or c.external_id in seen:
                if c.external_id in existing and existing[c.external_id][1] != c.content_hash:
                    # Same id, new content: keep the item current, and its old content
                    # in item_changes so audit can show what an earlier label saw.
                    item_id, old_hash = existing[c.external_id]
                    old = conn.execute(
                        select(Item.payload).where(Item.id == item_id)  # type: ignore[arg-type]
                    ).scalar_one()
                    conn.execute(
                        insert(ItemChange).values(
                            item_id=item_id,
                            run_id=run_id,
                            old_hash=old_hash,
                            new_hash=c.content_hash,
                            old_payload=old,
                            created_at=utcnow(),
                        )
                    )
                    conn.execute(
                        update(Item)
                        .where(Item.id == item_id)  # type: ignore[arg-type]
                        .values(payload=c.payload, content_hash=c.content_hash)
                    )
                    existing[c.external_id] = (item_id, c.content_hash)
                continue
            seen.add(c.external_id)
            new_rows.append(
                {
                    "dataset_id": dataset_id,
                    "external_id": c.external_id,
                    "content_hash": c.content_hash,
                    "row_number": c.row,
                    "payload": c.payload,
                    "created_at": utcnow(),
                }
            )
        if new_rows:
            conn.execute(insert(Item), new_rows)
            for row in conn.execute(
                select(Item.id, Item.external_id).where(
                    Item.dataset_id == dataset_id,
                    Item.external_id.in_([r["external_id"] for r in new_rows]),  # type: ignore[attr-defined]
                )
            ):
                existing[row.external_id] = (row.id, None)
        ids = [existing[c.external_id][0] for c in chunk]
        # item -> the content hash its good prediction in this run was made on
        # (None: stored before predictions recorded it; then trust it).
        done = {
            row.item_id: row.content_hash
            for row in conn.execute(
                select(Prediction.item_id, Prediction.content_hash).where(
                    Prediction.run_id == run_id,  # type: ignore[arg-type]
                    Prediction.item_id.in_(ids),  # type: ignore[attr-defined]
                    Prediction.error.is_(None),  # type: ignore[union-attr]
                )
            )
        }
    todo: list[tuple[int, dict[str, Any], str]] = []
    queued: set[int] = set()
    n_done = n_changed = 0
    for c in chunk:
        item_id = existing[c.external_id][0]
        if item_id in done and done[item_id] in (None, c.content_hash):
            n_done += 1
        elif item_id not in in_flight and item_id not in queued:
            if item_id in done:
                n_changed += 1  # labeled on content that has changed since: label again
            queued.add(item_id)
            todo.append((item_id, c.payload, c.content_hash))
    return todo, n_done, n_changed


def _count_failed(db: Database, run_id: int) -> int:
    with db.engine.begin() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    Prediction.run_id == run_id,  # type: ignore[arg-type]
                    Prediction.error.is_not(None),  # type: ignore[union-attr]
                )
            ).scalar_one()
        )


def _discard_if_empty(db: Database, run_id: int) -> bool:
    """Delete a run that holds no prediction; True when it was deleted."""
    with db.engine.begin() as conn:
        has_any = conn.execute(
            select(Prediction.id).where(Prediction.run_id == run_id).limit(1)  # type: ignore[arg-type]
        ).first()
        if has_any is not None:
            return False
        conn.execute(delete(Run).where(Run.id == run_id))  # type: ignore[arg-type]
        return True


def _finish_run(db: Database, run_id: int, status: str, job: LabelJob, summary: RunSummary) -> None:
    with db.engine.begin() as conn:
        failed, tin, tout = conn.execute(
            select(
                func.count(Prediction.error),  # type: ignore[arg-type]
                func.coalesce(func.sum(Prediction.tokens_in), 0),
                func.coalesce(func.sum(Prediction.tokens_out), 0),
            ).where(Prediction.run_id == run_id)  # type: ignore[arg-type]
        ).one()
        # Cache hits cost nothing now: price only the tokens actually sent this run.
        paid_in, paid_out = conn.execute(
            select(
                func.coalesce(func.sum(Prediction.tokens_in), 0),
                func.coalesce(func.sum(Prediction.tokens_out), 0),
            ).where(
                Prediction.run_id == run_id,
                Prediction.cache_hit.is_(False),  # type: ignore[arg-type,attr-defined]
            )
        ).one()
        labeled = conn.execute(
            select(func.count()).where(
                Prediction.run_id == run_id,
                Prediction.error.is_(None),  # type: ignore[arg-type,union-attr]
            )
        ).scalar_one()
        hits = conn.execute(
            select(func.count()).where(
                Prediction.run_id == run_id,
                Prediction.cache_hit.is_(True),  # type: ignore[arg-type,attr-defined]
            )
        ).scalar_one()
        cost = (paid_in * job.price_in_per_million + paid_out * job.price_out_per_million) / 1e6
        conn.execute(
            update(Run)
            .where(Run.id == run_id)  # type: ignore[arg-type]
            .values(
                status=status,
                finished_at=utcnow(),
                n_items=labeled + failed,
                n_labeled=labeled,
                n_failed=failed,
                n_cache_hits=hits,
                tokens_in=tin,
                tokens_out=tout,
                cost_usd=cost,
            )
        )
        stats = conn.execute(
            select(Prediction.label, Prediction.confidence, Prediction.method).where(
                Prediction.run_id == run_id,
                Prediction.error.is_(None),  # type: ignore[arg-type,union-attr]
            )
        )
        confs: list[float] = []
        for label, conf, method in stats:
            summary.methods[method or "none"] += 1
            if isinstance(label, str):
                summary.label_counts[label] += 1
            elif isinstance(label, list):
                for lab in label:
                    summary.label_counts[lab if isinstance(lab, str) else lab.get("label")] += 1
            if conf is not None:
                confs.append(conf)
    summary.n_labeled = labeled
    summary.n_failed = failed
    summary.cost_usd = cost
    summary.mean_confidence = sum(confs) / len(confs) if confs else None
