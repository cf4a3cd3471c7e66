"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

# True only when this revision adds things (tables, indexes, nullable columns) and
# old rows stay valid: then autolabel applies it when a database is opened. False
# makes users back up and run `autolabel db upgrade` themselves.
AUTO_UPGRADE = ${auto_upgrade}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
