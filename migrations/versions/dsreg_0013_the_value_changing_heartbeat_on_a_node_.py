"""the value-changing heartbeat on a node the session holds runs no helper it does not need

Revision ID: dsreg_0013
Revises: dsreg_0012
Create Date: 2026-12-07 22:19:07.574031
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0013"
down_revision = "dsreg_0012"
branch_labels = None
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
