"""``autolabel plan``: what a job would cost, without calling a model."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from autolabel.engine.cache import cache_key
from autolabel.engine.datasets import dataset_for
from autolabel.engine.inputs import read_rows, validator_for
from autolabel.engine.limits import estimate_tokens
from autolabel.engine.pipeline import LabelJob, is_resumable, run_key
from autolabel.errors import BadRowError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import TaskType
from autolabel.providers.base import ProviderRequest
from autolabel.store.tables import Prediction, Run

# Typical answer lengths in tokens, for the cost estimate.
OUTPUT_TOKENS = {
    TaskType.CLASSIFY: 8,
    TaskType.MULTI_LABEL: 16,
    TaskType.SPANS: 64,
    TaskType.FIELDS: 48,
}


@dataclass
class PlanReport:
    items: int = 0
    n_bad_rows: int = 0
    bad_rows: list[BadRowError] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    tokens_exact: bool = False  # counted by the model's tokenizer
    expected_cache_hits: int = 0
    resumable_done: int = 0  # already labeled by an unfinished (or partly failed) run of this job
    resume_run_id: int | None = None
    cost_usd: float = 0.0
    prompt_hash: str = ""


def plan_job(job: LabelJob) -> PlanReport:
    compiler = PromptCompiler(job.ontology, template=job.template)
    report = PlanReport(prompt_hash=compiler.prompt_hash)
    validator = validator_for(job.ontology, job.data, job.id_column)
    out_tokens = OUTPUT_TOKENS[job.ontology.task]
    for row_number, row in read_rows(job.data, job.ontology.input.image):
        if job.limit is not None and report.items + report.n_bad_rows >= job.limit:
            break
        try:
            item = validator.validate(row_number, row)
        except BadRowError as exc:
            report.n_bad_rows += 1
            if len(report.bad_rows) < 20:
                report.bad_rows.append(exc)
            continue
        report.items += 1
        prompt = compiler.compile(item.payload)
        counted = job.provider.count_tokens(prompt.messages)
        if counted is None:
            counted = estimate_tokens(prompt.messages, 0)
        else:
            report.tokens_exact = True
        report.prompt_tokens += counted
        report.output_tokens += out_tokens
        if job.cache is not None:
            request = ProviderRequest(
                prompt=prompt,
                temperature=job.temperature,
                max_tokens=job.max_tokens,
                seed=job.seed,
            )
            report.expected_cache_hits += cache_key(job.provider, request) in job.cache
    report.cost_usd = (
        report.prompt_tokens * job.price_in_per_million
        + report.output_tokens * job.price_out_per_million
    ) / 1e6
    dataset_id = dataset_for(job.db, job.data, job.dataset, create=False).id
    if dataset_id is None:  # never labeled: nothing to resume (and a dry run creates nothing)
        return report
    key = run_key(job, dataset_id, compiler)
    with job.db.session() as s:
        last = (
            s.exec(select(Run).where(Run.run_key == key).order_by(Run.id.desc()))  # type: ignore[call-overload,union-attr]
            .scalars()
            .first()
        )
        if last is not None and is_resumable(last):
            report.resume_run_id = last.id
            report.resumable_done = s.execute(
                select(func.count()).where(
                    Prediction.run_id == last.id,
                    Prediction.error.is_(None),  # type: ignore[arg-type,union-attr]
                )
            ).scalar_one()
    return report
