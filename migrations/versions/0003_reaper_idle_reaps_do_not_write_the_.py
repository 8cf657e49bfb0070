"""reaper: idle reaps do not write the reaper row (Galera certification races)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:15:55.776179
"""

from pathlib import Path

from alembic import op

from dsreg_db import ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
