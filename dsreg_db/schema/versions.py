"""dsreg's Alembic history beside an application's own: its version table and revision ids.

Two histories share the database, so nothing of ours may collide with an
application's Alembic:

* the version table is ``dsreg_alembic_version``, never ``alembic_version``;
* revision ids carry the ``dsreg_`` prefix (``dsreg_0006``), and the first
  revision has the branch label ``dsreg``, so an application revision named
  ``0001`` can never clash with ours, even in one script directory;
* :func:`include_name` / :func:`include_object` keep dsreg's tables out of an
  application's ``alembic revision --autogenerate``.

Databases migrated before the prefix hold a bare ``0005`` or ``0006``;
:func:`adopt_legacy_ids` rewrites it (under the migration lock, in env.py)
and :func:`canonical` accepts the bare form wherever a user types a revision.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

VERSION_TABLE = "dsreg_alembic_version"
PREFIX = "dsreg_"
#: every table dsreg creates starts with this (also the version and migration-lock tables)
TABLE_PREFIX = "dsreg_"

_BARE = re.compile(r"^[0-9]{4}$")


def canonical(revision: str) -> str:
    """``0005`` -> ``dsreg_0005``; anything else (``head``, ``dsreg_0005``, ``-1``) unchanged. Ranges too."""
    if ":" in revision:
        return ":".join(canonical(part) for part in revision.split(":"))
    return PREFIX + revision if _BARE.match(revision) else revision


def adopt_legacy_ids(connection: Connection) -> bool:
    """Rewrite a pre-prefix version row (``0005``) to its new id; True if one was rewritten."""
    exists = connection.execute(
        text("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"),
        {"name": VERSION_TABLE},
    ).scalar()
    if not exists:
        return False
    changed = connection.execute(text(LEGACY_UPDATE)).rowcount
    return bool(changed)


#: the same rewrite as SQL, for offline scripts that start from a revision
LEGACY_UPDATE = (
    f"UPDATE {VERSION_TABLE} SET version_num = CONCAT('{PREFIX}', version_num) WHERE version_num REGEXP '^[0-9]{{4}}$'"
)


def include_name(name: str | None, type_: str, parent_names: Any = None) -> bool:
    """For an application's env.py: ``context.configure(..., include_name=include_name)``.

    Autogenerate then neither proposes dropping dsreg's tables nor diffs them.
    """
    return not (type_ == "table" and name is not None and name.startswith(TABLE_PREFIX))


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The same filter for ``include_object`` (older env.py files use only this hook)."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not (table is not None and table.startswith(TABLE_PREFIX))
