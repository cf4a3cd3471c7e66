"""Database tables (sqlmodel). SQLite by default; the same models run on PostgreSQL.

JSON columns hold labels in their canonical form (see ``ontology/answers.py``).
Times are timezone-aware UTC. Every table change needs an Alembic revision in
``migrations/versions`` (see ``store/README.md``: ``python -m autolabel.store.migrations new``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column_kwargs=kw, sa_type=DateTime(timezone=True))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


# -- engine ---------------------------------------------------------------------------


class SchemaInfo(SQLModel, table=True):
    __tablename__ = "schema_info"
    id: int = Field(default=1, primary_key=True)
    version: int


class Dataset(SQLModel, table=True):
    __tablename__ = "datasets"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    source: str | None = None
    created_at: datetime = _ts()


class Item(SQLModel, table=True):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_item_external"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="datasets.id", index=True)
    external_id: str
    content_hash: str = Field(index=True)
    row_number: int | None = None
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    id: int | None = Field(default=None, primary_key=True)
    # Hash of everything that defines the job: the same arguments resume an unfinished run;
    # re-running a completed job makes a new run (served from the response cache).
    run_key: str = Field(index=True)
    name: str | None = None
    dataset_id: int = Field(foreign_key="datasets.id", index=True)
    ontology_name: str
    ontology_version: str
    ontology_hash: str
    ontology_path: str | None = None
    # The full validated ontology, so review and evaluation never depend on the file.
    ontology: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prompt_hash: str = Field(index=True)
    template: str
    task: str
    provider: str
    model: str
    base_url: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = "running"  # running | completed | interrupted | failed
    started_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    n_items: int = 0
    n_labeled: int = 0
    n_failed: int = 0
    n_cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


class JobLease(SQLModel, table=True):
    """Which process runs a job now: one row per ``run_key`` while a ``label`` holds it.

    Kept alive by a heartbeat; a holder that stops beating (killed, host gone) loses
    it when ``expires_at`` passes, or at once when its pid is dead on this host.
    """

    __tablename__ = "job_leases"
    run_key: str = Field(primary_key=True)
    run_id: int | None = None  # set once the run is opened or resumed
    token: str  # the holder's secret: renew and release only with it
    host: str
    pid: int
    started_at: datetime = _ts()
    heartbeat_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class Prediction(SQLModel, table=True):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_prediction_run_item"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    label: Any = _json()  # canonical answer; None when failed
    confidence: float | None = None
    # classify: label -> probability (sums to 1); multi_label: label -> P(applies);
    # spans: per-span confidences in span order; fields: field -> confidence.
    distribution: Any = _json()
    # choice_logprobs | listed_shares | token_logprobs | label_probs | self_consistency
    method: str | None = None
    samples: Any = _json()  # self-consistency: the sampled canonical answers
    model: str = ""
    prompt_hash: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    # Wall time the item spent in the labeler: includes waiting for a model worker,
    # rate limits and retry back-off, so under load it is mostly queueing.
    latency_ms: float = 0.0
    # The model's own time for the calls that produced this answer (measured where
    # the model runs: the local runtime's worker thread, the HTTP call); None for
    # cache hits and predictions stored before revision 0003.
    model_ms: float | None = None
    # The item content (hash) this answer was made on: a resume labels an item again
    # when its content changed under the same id; audit flags older answers.
    content_hash: str | None = None
    cache_hit: bool = False
    attempts: int = 1
    error: str | None = Field(default=None, sa_type=Text)
    raw: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _ts()


class ItemChange(SQLModel, table=True):
    """An item's content changed under the same id: the old content, kept for audit."""

    __tablename__ = "item_changes"
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    run_id: int | None = None  # the run that read the new content
    old_hash: str | None = None
    new_hash: str
    old_payload: Any = _json()
    created_at: datetime = _ts()


# -- review ---------------------------------------------------------------------------


class ReviewTask(SQLModel, table=True):
    __tablename__ = "review_tasks"
    __table_args__ = (
        UniqueConstraint("queue", "item_id", name="uq_task_queue_item"),
        Index("ix_task_pick", "queue", "status", "priority"),
    )
    id: int | None = Field(default=None, primary_key=True)
    queue: str = Field(index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="runs.id")
    prediction_id: int | None = Field(default=None, foreign_key="predictions.id")
    ontology_path: str | None = None
    status: str = "pending"  # pending | claimed | decided | skipped | flagged | adjudication
    priority: float = 0.0  # lower is served first
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    suggestion: Any = _json()  # the model's label shown to the reviewer
    confidence: float | None = None
    alternatives: Any = _json()  # {run_id: label} from disagreeing runs
    required_decisions: int = 1
    # Most human decisions taken before a disagreement goes to adjudication (>= required).
    reviewers_per_item: int = 1
    is_honeypot: bool = False
    gold_label: Any = _json()  # honeypots only; never shown to reviewers
    final_label: Any = _json()
    final_source: str | None = None  # model | human | consensus | adjudicator
    claimed_by: str | None = None
    lease_expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ReviewClaim(SQLModel, table=True):
    """A reviewer's leased hold on a task; several when consensus needs several reviewers.

    Not audit data: claims are deleted on decide/skip/release and when their lease expires.
    """

    __tablename__ = "review_claims"
    __table_args__ = (UniqueConstraint("task_id", "reviewer", name="uq_claim_task_reviewer"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="review_tasks.id", index=True)
    reviewer: str = Field(index=True)
    lease_expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    adjudicating: bool = False  # held to settle a disagreement or flag, not to vote
    created_at: datetime = _ts()


class Decision(SQLModel, table=True):
    """The append-only audit trail: every action a reviewer takes."""

    __tablename__ = "decisions"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="review_tasks.id", index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    reviewer: str = Field(index=True)
    action: str  # decide | skip | flag | undo | adjudicate
    label: Any = _json()
    label_before: Any = _json()
    note: str | None = Field(default=None, sa_type=Text)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    seconds: float | None = None
    undone: bool = False
    undoes_id: int | None = None
    created_at: datetime = _ts()


# -- evaluation -----------------------------------------------------------------------


class GoldSet(SQLModel, table=True):
    __tablename__ = "gold_sets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_gold_name_version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int = 1
    dataset_id: int = Field(foreign_key="datasets.id")
    ontology_name: str
    source: str | None = None
    created_at: datetime = _ts()


class GoldLabel(SQLModel, table=True):
    __tablename__ = "gold_labels"
    __table_args__ = (UniqueConstraint("gold_set_id", "item_id", name="uq_gold_item"),)
    id: int | None = Field(default=None, primary_key=True)
    gold_set_id: int = Field(foreign_key="gold_sets.id", index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    label: Any = _json(nullable=False)


class EvalRecord(SQLModel, table=True):
    """One evaluation result, kept so ``autolabel history`` can show trends."""

    __tablename__ = "eval_records"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    gold_set_id: int | None = Field(default=None, foreign_key="gold_sets.id")
    experiment: str | None = Field(default=None, index=True)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


# -- ontology versions and label migrations (interop) ----------------------------------


class OntologyVersion(SQLModel, table=True):
    """Every ontology text a run, gold import or migration used, by hash.

    Runs name theirs by ``Run.ontology_hash`` (the hash of the validated ontology), so
    each prediction, and the decisions on its run's tasks, stay tied to this row.
    """

    __tablename__ = "ontology_versions"
    __table_args__ = (UniqueConstraint("name", "hash", name="uq_ontology_version_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: str
    hash: str = Field(index=True)
    text: str | None = Field(default=None, sa_type=Text)  # the YAML as written, when known
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str | None = None
    created_at: datetime = _ts()


class LabelMigration(SQLModel, table=True):
    """One applied ``autolabel ontology migrate``: from which version to which, and counts."""

    __tablename__ = "label_migrations"
    id: int | None = Field(default=None, primary_key=True)
    ontology_name: str = Field(index=True)
    from_version_id: int = Field(foreign_key="ontology_versions.id")
    to_version_id: int = Field(foreign_key="ontology_versions.id")
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: str = "autolabel"
    created_at: datetime = _ts()


class LabelChange(SQLModel, table=True):
    """The audit of a migration: every row it changed, with the label before and after.

    ``kind``: prediction | decision | gold | task | run. Nothing a migration touches is
    lost: the old label stays here (and decisions are superseded, never rewritten).
    """

    __tablename__ = "label_changes"
    id: int | None = Field(default=None, primary_key=True)
    migration_id: int = Field(foreign_key="label_migrations.id", index=True)
    kind: str
    row_id: int
    item_id: int | None = Field(default=None, index=True)
    action: str  # rename | merge | split | remove
    before: Any = _json()
    after: Any = _json()


class GoldSetOntology(SQLModel, table=True):
    """The ontology version a gold set's labels were checked against (one per gold set)."""

    __tablename__ = "gold_set_ontology_versions"
    gold_set_id: int = Field(foreign_key="gold_sets.id", primary_key=True)
    ontology_version_id: int = Field(foreign_key="ontology_versions.id", index=True)


# -- learning (new tables: created by create_all, no migration step needed) ----------------


class PredictionDemos(SQLModel, table=True):
    """Which demonstrations (refs such as ``item:42``) were shown when labelling an item."""

    __tablename__ = "prediction_demos"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_demos_run_item"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    refs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CalibratorRecord(SQLModel, table=True):
    """A fitted recalibration of an ontology's confidences, versioned per ontology."""

    __tablename__ = "calibrators"
    __table_args__ = (UniqueConstraint("ontology_name", "version", name="uq_calibrator_version"),)
    id: int | None = Field(default=None, primary_key=True)
    ontology_name: str = Field(index=True)
    version: int = 1
    method: str
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    n_fitted: int = 0
    # Decision ids the pairs came from, and the items (never reported on by eval).
    decision_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class RunLineage(SQLModel, table=True):
    """A run made by ``relabel`` from a parent run (with the calibrator it applied)."""

    __tablename__ = "run_lineage"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True, unique=True)
    parent_run_id: int = Field(foreign_key="runs.id", index=True)
    calibrator_id: int | None = Field(default=None, foreign_key="calibrators.id")
    n_demonstrations: int = 0  # size of the pool the demonstrations came from
    created_at: datetime = _ts()
