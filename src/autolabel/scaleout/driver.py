"""Run a :class:`LabelJob` on Ray: the driver side.

The driver does what the local engine's driver does (job identity, job lease, run
record, summary) with the same functions; the per-item work runs in Ray Data stages
(see :mod:`autolabel.scaleout.workers`). It holds the job lease and renews it while it
consumes the stage output, so a second invocation is refused and a killed driver's
job is taken over by the next one (at once on the same host, after the lease's TTL
elsewhere), which resumes the same run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from autolabel.engine.datasets import dataset_for
from autolabel.engine.inputs import count_rows
from autolabel.engine.pipeline import (
    CIRCUIT_BREAKER,
    LabelJob,
    RunSummary,
    _finish_run,
    _open_run,
    labeler_options,
    run_key,
)
from autolabel.engine.progress import RunProgress
from autolabel.errors import AutolabelError, BadRowError, InputError, ProviderError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.scaleout import require_ray
from autolabel.store.leases import acquire_job_lease

DEFAULT_ACTORS = 2


def batch_size_for(job: LabelJob) -> int:
    # A batch is the unit of commit (like the local writer's ``commit_every``) and of
    # retry after a worker dies; several rounds of the actor's concurrency per batch keep
    # its requests in flight while a batch's slowest items finish.
    return min(1024, max(job.commit_every, job.concurrency * 4))


def init_ray(address: str | None) -> None:
    import ray

    # Ray Data logs each execution plan at INFO: noise next to our own summary.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return  # an embedding program (or the tests) already connected
    ray.init(
        address=address,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )


def run_job_on_ray(
    job: LabelJob, *, address: str | None = None, actors: int = DEFAULT_ACTORS
) -> RunSummary:
    """Label ``job`` on Ray with ``actors`` labeling actors (each ``job.concurrency`` wide)."""
    require_ray()
    if actors < 1:
        raise AutolabelError("--actors must be at least 1")
    started = time.perf_counter()
    compiler = PromptCompiler(job.ontology, template=job.template)
    db = job.db
    dataset = dataset_for(db, job.data, job.dataset, create=True)
    dataset_id = int(dataset.id)  # type: ignore[arg-type]
    key = run_key(job, dataset_id, compiler)
    lease = acquire_job_lease(db, key)  # same job identity, same one-run-per-job rule
    try:
        run, resumed = _open_run(db, job, dataset_id, key, compiler)
        assert run.id is not None
        lease.attach(run.id)
        summary = RunSummary(run.id, resumed, 0, 0, 0, 0, 0, 0, 0, 0, 0.0)
        interrupted = False
        abort: list[BaseException] = []
        try:
            init_ray(address)
            _consume(job, compiler, dataset_id, run.id, actors, summary, lease, abort)
        except BaseException:
            interrupted = True
            raise
        finally:
            status = "interrupted" if interrupted or abort else "completed"
            _finish_run(db, run.id, status, job, summary)
            summary.elapsed_s = time.perf_counter() - started
            summary.interrupted = interrupted
        if abort:
            raise abort[0]
        if dataset.note:
            summary.notes.append(dataset.note)
        return summary
    finally:
        lease.release()


def _consume(
    job: LabelJob,
    compiler: PromptCompiler,
    dataset_id: int,
    run_id: int,
    actors: int,
    summary: RunSummary,
    lease: Any,
    abort: list[BaseException],
) -> None:
    import ray.data
    from ray.exceptions import RayTaskError

    from autolabel.scaleout.source import JobSource
    from autolabel.scaleout.workers import (
        LabelBatch,
        StageConfig,
        prepare_batch,
        provider_spec,
    )

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our own progress bar counts items, not blocks
    ctx.execution_options.verbose_progress = False
    cfg = StageConfig(
        db_url=job.db.url,
        dataset_id=dataset_id,
        run_id=run_id,
        ontology=job.ontology,
        template=job.template,
        prompt_hash=compiler.prompt_hash,
        provider=provider_spec(job.provider),
        options=labeler_options(job),
        concurrency=job.concurrency,
        # Limits are per job: each actor gets its share.
        requests_per_minute=_share(job.requests_per_minute, actors),
        tokens_per_minute=_share(job.tokens_per_minute, actors),
        cache_dir=str(job.cache.directory) if job.cache is not None else None,
    )
    size = batch_size_for(job)
    source = JobSource(
        job.data,
        job.ontology,
        id_column=job.id_column,
        limit=job.limit,
        on_bad_row=job.on_bad_row,
    )
    ds = (
        ray.data.read_datasource(source)
        .map_batches(prepare_batch, fn_kwargs={"cfg": cfg}, batch_size=size, batch_format="pyarrow")
        .map_batches(
            LabelBatch,
            fn_constructor_kwargs={"cfg": cfg},
            # Start all actors; a small input may keep some idle (min 1 avoids Ray's warning).
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
            batch_size=size,
            batch_format="pyarrow",
            # The actor waits on the network, not on a core: don't let it hold one.
            num_cpus=0.25 if job.provider.name == "openai" else 1,
        )
    )
    streak = 0
    total = count_rows(job.data) if job.data.is_file() else None
    if total is not None and job.limit is not None:
        total = min(total, job.limit)
    with RunProgress(total, enabled=job.progress, description=f"run {run_id} (ray)") as progress:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for r in batch.to_pylist():
                    streak = _account(summary, r, progress, streak)
                if lease.lost.is_set():
                    abort.append(lease.lost_error())  # another process took the job over
                    return
                if streak >= CIRCUIT_BREAKER:
                    abort.append(
                        ProviderError(
                            f"stopped after {CIRCUIT_BREAKER} items in a row were refused",
                            hint="check the model name, API key and base URL; "
                            "the items done so far are saved and the run resumes",
                        )
                    )
                    return
        except RayTaskError as exc:
            raise _unwrap(exc) from None


def _account(summary: RunSummary, r: dict[str, Any], progress: RunProgress, streak: int) -> int:
    status = r["status"]
    if status == "changed":  # a count, not an item: labeled again on new content
        summary.n_changed += 1
        return streak
    if status == "bad":
        summary.n_bad_rows += 1
        if len(summary.bad_rows) < 100:
            summary.bad_rows.append(BadRowError(r["message"], row=r["row"], field=r["field"]))
        return streak
    summary.n_items += 1
    if status == "done":
        summary.already_done += 1
        progress.skip(1)
    elif status == "dup":
        summary.n_duplicates += 1
        progress.skip(1)
    else:
        summary.n_model_calls += r["model_calls"]
        summary.n_cache_hits += r["cache_hit"]
        summary.tokens_in += r["tokens_in"]
        summary.tokens_out += r["tokens_out"]
        progress.update(
            failed=status == "failed",
            cache_hit=r["cache_hit"],
            tokens=r["tokens_in"] + r["tokens_out"],
        )
        return streak + 1 if r["permanent"] else 0
    return streak


def _share(limit: float | None, actors: int) -> float | None:
    return None if limit is None else limit / actors


def _unwrap(exc: BaseException) -> BaseException:
    """A worker's autolabel error as the user would see it locally."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, AutolabelError):
        if isinstance(cause, InputError) and cause.hint is None:
            cause.hint = "fix the row, or pass --on-bad-row skip to label the rest"
        return cause
    return exc
