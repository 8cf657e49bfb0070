"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op

from dsreg_db import sqlobjects

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "sqlobjects.upgrade(op, revision)"}


def downgrade() -> None:
    ${downgrades if downgrades else "sqlobjects.downgrade(op, revision)"}
