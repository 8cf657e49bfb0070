"""``dsreg revision -m MESSAGE``: freeze what changed in ``sql/`` into a new Alembic revision.

Compares every object file in ``sql/`` with its newest frozen copy. Changed
or new routines and events, and new tables, are copied to
``migrations/frozen/<new id>/`` and a revision script is written from
``script.py.mako`` whose upgrade applies them (replacing the old routines)
and whose downgrade restores the previous copies. A routine or event whose
file is gone from ``sql/`` gets a tombstone (``<name>.dropped``) in the new
folder: the upgrade drops it, the downgrade restores its last copy. A changed
or removed table (or seed) needs a hand-written revision: the command refuses
and says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from dsreg_db.errors import RevisionError
from dsreg_db.schema.sqlobjects import PLAIN, TOMBSTONE, SqlObject, latest_frozen, load, revisions
from dsreg_db.schema.versions import PREFIX


@dataclass(frozen=True)
class Pending:
    changed: list[SqlObject]
    removed: list[SqlObject]


def pending(root: Path) -> Pending:
    """Objects whose code in ``root/sql`` differs from their newest frozen copy (comments do not count),
    and frozen objects whose file is gone from ``root/sql`` and that no revision dropped yet."""
    frozen = root / "migrations" / "frozen"
    known = revisions(frozen)
    current = load(root / "sql")
    changed = [o for o in current if (latest_frozen(o, known, frozen) or SqlObject("", "", "")).code() != o.code()]
    names = {o.key for o in current}
    removed: dict[str, SqlObject] = {}
    for rev in known:
        for o in load(frozen / rev):
            if o.key not in names and o.key not in removed and latest_frozen(o, known, frozen) is not None:
                removed[o.key] = o
    return Pending(changed, list(removed.values()))


def next_id(last: str) -> str:
    """``dsreg_0006`` -> ``dsreg_0007``."""
    return f"{PREFIX}{int(last.removeprefix(PREFIX)) + 1:04d}"


def write(root: Path, message: str) -> tuple[str, list[str]]:
    """Create the revision; returns its id and the objects it freezes (a dropped one as ``key (dropped)``)."""
    frozen = root / "migrations" / "frozen"
    todo = pending(root)
    plain = [o.key for o in todo.removed if o.kind in PLAIN]
    if plain:
        raise RevisionError(f"removed tables or seeds need a hand-written revision: {plain}")
    if not todo.changed and not todo.removed:
        raise RevisionError("sql/ matches the newest frozen definitions: nothing to freeze")
    known = revisions(frozen)
    for obj in todo.changed:
        if obj.kind == "tables" and latest_frozen(obj, known, frozen) is not None:
            raise RevisionError(f"{obj.key} changed: a table change needs a hand-written ALTER revision")
    new_id = next_id(known[-1])
    for obj in todo.changed:
        target = frozen / new_id / obj.kind / f"{obj.name}.sql"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "sql" / obj.kind / f"{obj.name}.sql", target)
    for obj in todo.removed:
        tombstone = frozen / new_id / obj.kind / f"{obj.name}{TOMBSTONE}"
        tombstone.parent.mkdir(parents=True, exist_ok=True)
        tombstone.write_text(f"-- {new_id} drops {obj.key}: its file is gone from sql/\n")
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    command.revision(cfg, message=message, rev_id=new_id)
    return new_id, [o.key for o in todo.changed] + [f"{o.key} (dropped)" for o in todo.removed]
