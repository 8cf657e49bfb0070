"""core: sessions, nodes, change log, locks, reaper and compactor events

Creates every object frozen in migrations/frozen/0001/ (a copy of sql/ as
it was when this revision was written); downgrade drops them all.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from dsreg_db import sqlobjects

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlobjects.upgrade(op, revision)


def downgrade() -> None:
    sqlobjects.downgrade(op, revision)
