"""caller-proof calls: every procedure commits the caller's transaction, resets the session clock and
reads its own snapshot; tokens checked without locks; limits per account and session (45006);
watch batches bounded in bytes; opening a session reaps a little first

Revision ID: dsreg_0006
Revises: dsreg_0005
Create Date: 2026-11-25 13:40:00.000000
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0006"
down_revision = "dsreg_0005"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"

#: the frozen dsreg_session.sql records the result; existing sessions keep working with account ''
ADD_ACCOUNT = (
    "ALTER TABLE dsreg_session ADD COLUMN account VARBINARY(128) NOT NULL DEFAULT '' AFTER owner, "
    "ADD KEY ix_dsreg_session_account (account)"
)
DROP_ACCOUNT = "ALTER TABLE dsreg_session DROP KEY ix_dsreg_session_account, DROP COLUMN account"

#: the limits (a settings row each, as in sql/tables/dsreg_setting.sql). IGNORE: an upgrade that
#: failed after the first DDL's implicit commit kept the rows; a rerun must pass
LIMITS = {
    "max_sessions_per_account": 10000,
    "max_nodes_per_session": 1000,
    "max_locks_per_session": 1000,
    "max_watch_bytes": 4194304,
}


def _has_account_column() -> bool:
    """A rerun after a failure past the ALTER (DDL commits at once) must not add the column twice."""
    if op.get_context().as_sql:
        return False  # an offline script runs once, on a database at 0005
    count = op.get_bind().exec_driver_sql(
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'dsreg_session' AND COLUMN_NAME = 'account'"
    )
    return bool(count.scalar())


def upgrade() -> None:
    if not _has_account_column():
        op.execute(ADD_ACCOUNT)
    rows = ", ".join(f"('{name}', {value})" for name, value in LIMITS.items())
    op.execute(f"INSERT IGNORE INTO dsreg_setting (name, value) VALUES {rows}")
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
    op.execute(DROP_ACCOUNT)
    names = ", ".join(f"'{name}'" for name in LIMITS)
    op.execute(f"DELETE FROM dsreg_setting WHERE name IN ({names})")
