"""value size checked only when written; reject a path ending in a newline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 01:50:22.643832
"""

from pathlib import Path

from alembic import op

from dsreg_db import ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
