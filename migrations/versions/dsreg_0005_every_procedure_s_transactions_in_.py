"""every procedure's transactions in REPEATABLE READ whatever the caller's level;
fewer statements on a value-changing heartbeat (own node read once without a lock, no lease rewrite
within a tick, no second counter read, the lease tick read with the session row)

Revision ID: dsreg_0005
Revises: dsreg_0004
Create Date: 2026-11-25 08:01:21.303713
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0005"
down_revision = "dsreg_0004"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
