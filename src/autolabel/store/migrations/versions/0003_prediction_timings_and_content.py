"""predictions.model_ms (model latency apart from queueing), predictions.content_hash
and item_changes (dataset identity: content changed under the same id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:16:12.236595
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# True only when this revision adds things (tables, indexes, nullable columns) and
# old rows stay valid: then autolabel applies it when a database is opened. False
# makes users back up and run `autolabel db upgrade` themselves.
AUTO_UPGRADE = True


def upgrade() -> None:
    op.create_table(
        "item_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("old_hash", sa.String(), nullable=True),
        sa.Column("new_hash", sa.String(), nullable=False),
        sa.Column("old_payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("item_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_changes_item_id"), ["item_id"], unique=False)

    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("content_hash", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_column("content_hash")
        batch_op.drop_column("model_ms")

    with op.batch_alter_table("item_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_changes_item_id"))

    op.drop_table("item_changes")
