"""fair locks: a server-side queue of waiters served in arrival order
(dsreg_lock_acquire_fair, dsreg_lock_dequeue, dsreg_lock_contenders)

Revision ID: dsreg_0010
Revises: dsreg_0009
Create Date: 2026-12-02 15:27:14.889709
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0010"
down_revision = "dsreg_0009"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
