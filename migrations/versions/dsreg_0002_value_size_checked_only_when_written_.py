"""value size checked only when written; reject a path ending in a newline

Revision ID: dsreg_0002
Revises: dsreg_0001
Create Date: 2026-11-25 01:50:22.643832
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0002"
down_revision = "dsreg_0001"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
