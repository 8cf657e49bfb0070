"""read-only heartbeat and keepalive when the lease already reaches this tick's end; leases rounded up to lease_tick_ms;
the reaper records every batch, so a long reap is not taken for a database stall

Revision ID: dsreg_0004
Revises: dsreg_0003
Create Date: 2026-11-25 04:20:25.234863
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0004"
down_revision = "dsreg_0003"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


#: the lease granularity dsreg__lease_end reads (a settings row, not a schema change)
#: IGNORE: an upgrade that failed after the first DDL's implicit commit kept the row; a rerun must pass
TICK_SETTING = "INSERT IGNORE INTO dsreg_setting (name, value) VALUES ('lease_tick_ms', 100)"


def upgrade() -> None:
    op.execute(TICK_SETTING)  # before the procedures that read it
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
    op.execute("DELETE FROM dsreg_setting WHERE name = 'lease_tick_ms'")
