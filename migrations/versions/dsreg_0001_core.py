"""core: sessions, nodes, change log, locks, reaper and compactor events

Creates every object frozen in migrations/frozen/0001/ (a copy of sql/ as
it was when this revision was written); downgrade drops them all.

Revision ID: dsreg_0001
Revises:
Create Date: 2026-11-25
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

revision = "dsreg_0001"
down_revision = None
branch_labels = ("dsreg",)  # `alembic upgrade dsreg@head` names this history wherever it sits
depends_on = None

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ddl.upgrade(op, revision, FROZEN)


def downgrade() -> None:
    ddl.downgrade(op, revision, FROZEN)
