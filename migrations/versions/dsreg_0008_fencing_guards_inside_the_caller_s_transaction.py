"""fencing guards inside the caller's transaction: dsreg_fence_check and dsreg_session_check hold the
lock row / session row until the caller commits; both rows get a `cert_seq` column the guard writes, so
Galera certifies a guarded transaction against a release or reap on another node

Revision ID: dsreg_0008
Revises: dsreg_0007
Create Date: 2026-11-25 16:50:00.000000
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0008"
down_revision = "dsreg_0007"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"

#: the frozen dsreg_lock.sql and dsreg_session.sql record the result (existing rows start at 0)
COLUMNS = {"dsreg_lock": "AFTER acquired_at", "dsreg_session": "AFTER expires_at"}


def _has_cert_seq(table: str) -> bool:
    """A rerun after a failure past one ALTER (DDL commits at once) must not add the column twice."""
    if op.get_context().as_sql:
        return False  # an offline script runs once, on a database at dsreg_0007
    count = op.get_bind().exec_driver_sql(
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        f"AND TABLE_NAME = '{table}' AND COLUMN_NAME = 'cert_seq'"
    )
    return bool(count.scalar())


def upgrade() -> None:
    for table, position in COLUMNS.items():
        if not _has_cert_seq(table):
            op.execute(f"ALTER TABLE {table} ADD COLUMN cert_seq BIGINT NOT NULL DEFAULT 0 {position}")
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
    for table in COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN cert_seq")
