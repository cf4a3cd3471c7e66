"""predictions.model_ms: the model's own latency, apart from time spent queued.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:07:46.472431
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
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_column("model_ms")
