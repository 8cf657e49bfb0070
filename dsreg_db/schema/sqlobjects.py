"""Server objects as files: ``sql/`` and the frozen copies under ``migrations/frozen/<revision>/``.

Each file holds one object: ``<kind>/<name>.sql`` with kind ``tables``,
``seeds`` (the default rows of a table, ``INSERT IGNORE``), ``procedures`` or
``events``. A routine or event file is one statement sent as-is through the
driver (no DELIMITER: that is a client-side trick of the ``mysql`` CLI).
Table and seed statements end with ``;`` at the end of a line.

Migrations never read ``sql/`` itself: each revision applies the frozen copy
of the objects it creates or replaces, so it produces the same objects
forever (see README, "Migrations"); ``dsreg_db.schema.ddl`` applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dsreg_db.errors import BadAccount

KINDS = ("tables", "seeds", "procedures", "events")
#: kinds whose files are plain statements ending with ``;`` (no routine bodies)
PLAIN = ("tables", "seeds")
_DROP = {"tables": "DROP TABLE IF EXISTS", "procedures": "DROP PROCEDURE IF EXISTS", "events": "DROP EVENT IF EXISTS"}
#: a revision that drops a routine or event records it as ``<kind>/<name>.dropped`` in its frozen
#: folder (a tombstone): the object's history then ends there, and the downgrade restores it
TOMBSTONE = ".dropped"

#: the sql_mode every routine is created under (a routine keeps the mode of its
#: creation, so it must not depend on the migrating session's defaults)
ROUTINE_SQL_MODE = (
    "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY"
)

#: the folder holding ``sql/``, ``migrations/`` and ``alembic.ini``: the package directory. In a
#: checkout those are symlinks to the repository's top-level copies; in a wheel, the files themselves
ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
FROZEN_DIR = ROOT / "migrations" / "frozen"


def is_checkout(root: Path = ROOT) -> bool:
    """True when ``root/sql`` is the repository's folder (a symlink), not installed package data."""
    return (root / "sql").is_symlink()


@dataclass(frozen=True)
class SqlObject:
    kind: str
    name: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def statements(self, definer: str | None = None) -> list[str]:
        """The statements to send; routines and events get ``DEFINER = definer`` when one is given."""
        body = _strip_header(self.text)
        if self.kind in PLAIN:
            return [s.strip() for s in re.split(r";[ \t]*$", body, flags=re.M) if s.strip()]
        statement = body.strip().rstrip(";").rstrip()
        if definer is not None:
            statement = re.sub(r"^CREATE\s+(PROCEDURE|EVENT)\b", rf"CREATE DEFINER = {definer} \1", statement, count=1)
        return [statement]

    def code(self) -> str:
        """What the server runs: the text without comment lines or trailing blanks.

        Revisions compare this, not the file text, so fixing a comment in ``sql/`` needs no migration.
        """
        lines = (line.rstrip() for line in _strip_header(self.text).splitlines())
        return "\n".join(line for line in lines if line and not line.lstrip().startswith("--"))

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


def revisions(frozen: Path = FROZEN_DIR) -> list[str]:
    """Frozen revision folders, oldest first (their names are zero-padded numbers)."""
    return sorted(p.name for p in frozen.iterdir() if p.is_dir())


def dropped(root: Path) -> list[SqlObject]:
    """The objects a frozen revision folder drops (its tombstones), with no text."""
    return [
        SqlObject(kind, p.name.removesuffix(TOMBSTONE), "")
        for kind in KINDS
        for p in sorted((root / kind).glob(f"*{TOMBSTONE}"))
    ]


def latest_frozen(obj: SqlObject, among: list[str], frozen: Path = FROZEN_DIR) -> SqlObject | None:
    """The definition of ``obj`` frozen by the newest of the revisions ``among``; None when none
    froze it or the newest that mentions it dropped it."""
    for rev in reversed(among):
        if (frozen / rev / obj.kind / f"{obj.name}{TOMBSTONE}").exists():
            return None
        path = frozen / rev / obj.kind / f"{obj.name}.sql"
        if path.exists():
            return SqlObject(obj.kind, obj.name, path.read_text())
    return None


def previous_definition(obj: SqlObject, revision: str, frozen: Path = FROZEN_DIR) -> SqlObject | None:
    """The definition of ``obj`` frozen by the newest revision before ``revision``."""
    return latest_frozen(obj, [r for r in revisions(frozen) if r < revision], frozen)


def seed_keys(obj: SqlObject) -> list[str]:
    """The first column of every row a seed inserts: ``('lease_tick_ms', 100)`` -> ``lease_tick_ms``."""
    return re.findall(r"\(\s*'([A-Za-z0-9_]+)'\s*,", obj.code())


def is_public(obj: SqlObject) -> bool:
    """Public procedures are the API; ``dsreg__`` helpers check no token and are never granted."""
    return obj.kind == "procedures" and not obj.name.startswith("dsreg__")


_ACCOUNT = re.compile(r"^([A-Za-z0-9_.$-]{1,80})@([A-Za-z0-9_.%:-]{1,255})$")


def quote_account(account: str) -> str:
    """``user@host`` -> ``'user'@'host'``; anything else (quotes, spaces) is refused, never spliced into DDL."""
    m = _ACCOUNT.match(account)
    if m is None:
        raise BadAccount(
            f"not an account of the form user@host, without quotes (e.g. app@% or app@10.0.0.%): {account!r}"
        )
    return f"'{m.group(1)}'@'{m.group(2)}'"
