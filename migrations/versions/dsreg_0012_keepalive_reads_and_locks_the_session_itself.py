"""keepalive reads and locks the session itself instead of through beat_read and session_check

Revision ID: dsreg_0012
Revises: dsreg_0011
Create Date: 2026-12-04 03:57:54.798396
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0012"
down_revision = "dsreg_0011"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
