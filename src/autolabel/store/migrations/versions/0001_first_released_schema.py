"""The first released schema (the pre-Alembic code's schema_info version 1).

Revision ID: 0001
Revises:
Create Date: 2026-12-03

Written out in full (not ``metadata.create_all``) so that later edits to
``tables.py`` never change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AUTO_UPGRADE = True  # only ever applied to an empty database

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schema_info",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Pre-Alembic autolabel reads this row and refuses versions it does not know: a
    # revision that old code cannot read must raise it (see store/README.md).
    op.execute("INSERT INTO schema_info (id, version) VALUES (1, 1)")
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_datasets_name", "datasets", ["name"], unique=True)
    op.create_table(
        "gold_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("ontology_name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_gold_name_version"),
    )
    op.create_index("ix_gold_sets_name", "gold_sets", ["name"], unique=False)
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "external_id", name="uq_item_external"),
    )
    op.create_index("ix_items_content_hash", "items", ["content_hash"], unique=False)
    op.create_index("ix_items_dataset_id", "items", ["dataset_id"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("ontology_name", sa.String(), nullable=False),
        sa.Column("ontology_version", sa.String(), nullable=False),
        sa.Column("ontology_hash", sa.String(), nullable=False),
        sa.Column("ontology_path", sa.String(), nullable=True),
        sa.Column("ontology", sa.JSON(), nullable=False),
        sa.Column("prompt_hash", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("base_url", sa.String(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("n_labeled", sa.Integer(), nullable=False),
        sa.Column("n_failed", sa.Integer(), nullable=False),
        sa.Column("n_cache_hits", sa.Integer(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_dataset_id", "runs", ["dataset_id"], unique=False)
    op.create_index("ix_runs_prompt_hash", "runs", ["prompt_hash"], unique=False)
    op.create_index("ix_runs_run_key", "runs", ["run_key"], unique=False)
    op.create_table(
        "eval_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("gold_set_id", sa.Integer(), nullable=True),
        sa.Column("experiment", sa.String(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["gold_set_id"], ["gold_sets.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_eval_records_experiment", "eval_records", ["experiment"], unique=False)
    op.create_index("ix_eval_records_run_id", "eval_records", ["run_id"], unique=False)
    op.create_table(
        "gold_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gold_set_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["gold_set_id"], ["gold_sets.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gold_set_id", "item_id", name="uq_gold_item"),
    )
    op.create_index("ix_gold_labels_gold_set_id", "gold_labels", ["gold_set_id"], unique=False)
    op.create_index("ix_gold_labels_item_id", "gold_labels", ["item_id"], unique=False)
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("distribution", sa.JSON(), nullable=True),
        sa.Column("method", sa.String(), nullable=True),
        sa.Column("samples", sa.JSON(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("prompt_hash", sa.String(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "item_id", name="uq_prediction_run_item"),
    )
    op.create_index("ix_predictions_item_id", "predictions", ["item_id"], unique=False)
    op.create_index("ix_predictions_run_id", "predictions", ["run_id"], unique=False)
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("ontology_path", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("suggestion", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("alternatives", sa.JSON(), nullable=True),
        sa.Column("required_decisions", sa.Integer(), nullable=False),
        sa.Column("reviewers_per_item", sa.Integer(), nullable=False),
        sa.Column("is_honeypot", sa.Boolean(), nullable=False),
        sa.Column("gold_label", sa.JSON(), nullable=True),
        sa.Column("final_label", sa.JSON(), nullable=True),
        sa.Column("final_source", sa.String(), nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("queue", "item_id", name="uq_task_queue_item"),
    )
    op.create_index("ix_review_tasks_item_id", "review_tasks", ["item_id"], unique=False)
    op.create_index("ix_review_tasks_queue", "review_tasks", ["queue"], unique=False)
    op.create_index("ix_task_pick", "review_tasks", ["queue", "status", "priority"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("label_before", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("undone", sa.Boolean(), nullable=False),
        sa.Column("undoes_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["review_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decisions_item_id", "decisions", ["item_id"], unique=False)
    op.create_index("ix_decisions_reviewer", "decisions", ["reviewer"], unique=False)
    op.create_index("ix_decisions_task_id", "decisions", ["task_id"], unique=False)
    op.create_table(
        "review_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=False),
        sa.Column("lease_expires_at", TS, nullable=False),
        sa.Column("adjudicating", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["review_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "reviewer", name="uq_claim_task_reviewer"),
    )
    op.create_index("ix_review_claims_reviewer", "review_claims", ["reviewer"], unique=False)
    op.create_index("ix_review_claims_task_id", "review_claims", ["task_id"], unique=False)


def downgrade() -> None:
    # The first schema has nothing below it: dropping everything is not a downgrade.
    raise NotImplementedError("0001 is the first schema; restore a backup instead")
