"""Server objects as files: load them from ``sql/`` or a frozen revision copy, apply and drop them.

Each file holds one object: ``<kind>/<name>.sql`` with kind ``tables``,
``procedures`` or ``events``. A routine or event file is one statement sent
as-is through the driver (no DELIMITER: that is a client-side trick of the
``mysql`` CLI). A table file may add seed rows after its CREATE TABLE;
its statements end with ``;`` at the end of a line.

Migrations never read ``sql/`` itself: each revision applies the frozen copy
under ``migrations/frozen/<revision>/``, so it produces the same objects
forever (see README, "Migrations").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

KINDS = ("tables", "procedures", "events")
_DROP = {"tables": "DROP TABLE IF EXISTS", "procedures": "DROP PROCEDURE IF EXISTS", "events": "DROP EVENT IF EXISTS"}

#: the sql_mode every routine is created under (a routine keeps the mode of its
#: creation, so it must not depend on the migrating session's defaults)
ROUTINE_SQL_MODE = (
    "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY"
)

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
FROZEN_DIR = ROOT / "migrations" / "frozen"


@dataclass(frozen=True)
class SqlObject:
    kind: str
    name: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def statements(self) -> list[str]:
        body = _strip_header(self.text)
        if self.kind == "tables":
            return [s.strip() for s in re.split(r";[ \t]*$", body, flags=re.M) if s.strip()]
        return [body.strip().rstrip(";").rstrip()]

    def drop(self) -> str:
        return f"{_DROP[self.kind]} {self.name}"


def _strip_header(text: str) -> str:
    lines = text.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def header(text: str) -> str:
    """The leading comment block of an object file, without the ``--`` marks."""
    out = []
    for line in text.splitlines():
        if not line.lstrip().startswith("--"):
            break
        out.append(line.lstrip()[2:].removeprefix(" "))
    return "\n".join(out)


def load(root: Path) -> list[SqlObject]:
    """All objects under ``root`` in creation order: tables, procedures, events."""
    objects = []
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.sql")):
            objects.append(SqlObject(kind, path.stem, path.read_text()))
    return objects


def revisions() -> list[str]:
    """Frozen revision folders, oldest first (their names sort in order)."""
    return sorted(p.name for p in FROZEN_DIR.iterdir() if p.is_dir())


def latest_frozen(obj: SqlObject, among: list[str]) -> SqlObject | None:
    """The definition of ``obj`` frozen by the newest of the revisions ``among``."""
    for rev in reversed(among):
        path = FROZEN_DIR / rev / obj.kind / f"{obj.name}.sql"
        if path.exists():
            return SqlObject(obj.kind, obj.name, path.read_text())
    return None


def previous_definition(obj: SqlObject, revision: str) -> SqlObject | None:
    """The definition of ``obj`` frozen by the newest revision before ``revision``."""
    return latest_frozen(obj, [r for r in revisions() if r < revision])


Execute = Callable[[str], None]


def create(execute: Execute, objects: Iterable[SqlObject]) -> None:
    execute(f"SET SESSION sql_mode = '{ROUTINE_SQL_MODE}'")
    for obj in objects:
        for statement in obj.statements():
            execute(statement)


def upgrade(execute: Execute, revision: str) -> None:
    """Apply a frozen revision: replace routines/events it redefines, create the new ones."""
    objects = load(FROZEN_DIR / revision)
    for obj in objects:
        if obj.kind != "tables" and previous_definition(obj, revision) is not None:
            execute(obj.drop())
    create(execute, objects)


def downgrade(execute: Execute, revision: str) -> None:
    """Undo a frozen revision: drop what it made, restore what it replaced."""
    objects = load(FROZEN_DIR / revision)
    restore = []
    for obj in reversed(objects):
        previous = previous_definition(obj, revision)
        if obj.kind == "tables" and previous is not None:
            raise NotImplementedError(f"{obj.key}: table changes need a hand-written ALTER in the revision")
        execute(obj.drop())
        if previous is not None:
            restore.append(previous)
    create(execute, reversed(restore))
