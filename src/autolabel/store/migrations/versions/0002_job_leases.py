"""job_leases: one run per job at a time (the lease of a running `label`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 08:58:25.328058
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# True only when this revision adds things (tables, indexes, nullable columns) and
# old rows stay valid: then autolabel applies it when a database is opened. False
# makes users back up and run `autolabel db upgrade` themselves.
AUTO_UPGRADE = True


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("run_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_key"),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
