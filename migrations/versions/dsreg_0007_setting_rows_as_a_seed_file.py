"""setting rows as a seed file: sql/seeds/dsreg_setting.sql holds every setting with its default

Revision ID: dsreg_0007
Revises: dsreg_0006
Create Date: 2026-11-25 16:30:00.000000

Until now the default rows sat in the table's file and each later revision inserted
its new rows by hand (0004, 0006). The seed file is frozen like a routine: this
revision's INSERT IGNORE changes nothing on a database at 0006 (every row is there,
tuned values stay), and later revisions that add a setting only edit the seed file.
The table itself is unchanged: its frozen copy here only lost the rows.
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0007"
down_revision = "dsreg_0006"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
