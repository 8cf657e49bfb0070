"""reaping without per-node setup: keepalives and heartbeats reap when no reaper ran for reap_stale_ms;
a new node or lock writes its session row (Galera certifies it against the session's close or reap)

Revision ID: dsreg_0009
Revises: dsreg_0008
Create Date: 2026-11-25 17:21:00.000623
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0009"
down_revision = "dsreg_0008"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
