"""beats read once: dsreg__beat_read replaces session_fresh, node_same and reaper_stale on keepalive and heartbeat

Revision ID: dsreg_0011
Revises: dsreg_0010
Create Date: 2026-12-03 19:15:00.360419
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0011"
down_revision = "dsreg_0010"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
