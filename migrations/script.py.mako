"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from pathlib import Path

from alembic import op

from dsreg_db.schema import ddl

## double quotes, as ruff format writes them (repr() gives single ones)
revision = "${up_revision}"
down_revision = ${'"%s"' % down_revision if isinstance(down_revision, str) else repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

#: this revision's definitions, frozen when it was written
FROZEN = Path(__file__).resolve().parent.parent / "frozen"


def upgrade() -> None:
    ${upgrades if upgrades else "ddl.upgrade(op, revision, FROZEN)"}


def downgrade() -> None:
    ${downgrades if downgrades else "ddl.downgrade(op, revision, FROZEN)"}
