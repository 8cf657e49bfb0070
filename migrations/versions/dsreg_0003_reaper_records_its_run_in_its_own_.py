"""reaper records its run in its own transaction, and only when needed; node-write argument checks shared

Revision ID: dsreg_0003
Revises: dsreg_0002
Create Date: 2026-11-25 03:08:20.678053
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0003"
down_revision = "dsreg_0002"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
