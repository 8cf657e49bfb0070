"""Apply frozen object definitions from an Alembic revision, online or as an offline script.

Revision scripts call ``ddl.upgrade(op, revision, FROZEN)`` / ``ddl.downgrade``:

* online, statements go to the raw DBAPI cursor (no parameter formatting, so a
  ``%`` in a body or in an account such as ``'app'@'%'`` reaches the server as
  written), each routine as one statement -- no DELIMITER;
* offline (``alembic upgrade --sql``, ``dsreg upgrade --sql``), routine and
  event bodies are wrapped in ``DELIMITER $$`` ... ``$$`` so the ``mysql`` and
  ``mariadb`` clients apply the script as-is.

Replacing a routine is DROP + CREATE (MySQL has no CREATE OR REPLACE
PROCEDURE); for that instant the routine does not exist and callers get error
1305, which the Python client retries. Dropping a routine also drops the
grants on it, so every public procedure created here is granted again to the
accounts ``dsreg grant`` recorded in ``dsreg_grantee``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from dsreg_db.sqlobjects import (
    ROUTINE_SQL_MODE,
    SqlObject,
    is_public,
    load,
    previous_definition,
    quote_account,
)

Execute = Callable[[str], list[tuple[Any, ...]]]


def executor(conn: Connection) -> Execute:
    """Run statements on the raw DBAPI cursor; returns the rows, if any."""

    def execute(sql: str) -> list[tuple[Any, ...]]:
        with conn.connection.dbapi_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    return execute


class Applier:
    """Sends object DDL either to the server or to Alembic's offline script."""

    def __init__(self, op: Any) -> None:
        context = op.get_context()
        definer = context.opts.get("dsreg_definer")
        self.definer = quote_account(definer) if definer else None
        self.offline = bool(context.as_sql)
        self._output = context.impl.static_output
        self._execute = None if self.offline else executor(op.get_bind())

    def statement(self, sql: str, *, routine: bool = False) -> None:
        if self._execute is not None:
            self._execute(sql)
        elif routine:
            self._output(f"DELIMITER $$\n{sql}$$\nDELIMITER ;\n")
        else:
            self._output(f"{sql};\n")

    def grantees(self) -> list[str]:
        """Accounts recorded by ``dsreg grant`` (re-validated: they are spliced into GRANT statements)."""
        if self._execute is None:
            return []
        (exists,) = self._execute(
            "SELECT COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'dsreg_grantee'"
        )[0]
        if not exists:
            return []
        return [quote_account(str(r[0])) for r in self._execute("SELECT account FROM dsreg_grantee ORDER BY account")]

    def create(self, objects: Iterable[SqlObject]) -> None:
        """Create objects under the fixed sql_mode; re-grant EXECUTE on public procedures."""
        self.statement(f"SET SESSION sql_mode = '{ROUTINE_SQL_MODE}'")
        created = []
        for obj in objects:
            for sql in obj.statements(self.definer):
                self.statement(sql, routine=obj.kind != "tables")
            created.append(obj)
        accounts = self.grantees()
        if self.offline and any(is_public(o) for o in created):
            self._output("-- application accounts: run `dsreg grant user@host` again after this script\n")
        for obj in created:
            if is_public(obj):
                for account in accounts:
                    self.statement(f"GRANT EXECUTE ON PROCEDURE {obj.name} TO {account}")


def upgrade(op: Any, revision: str, frozen: Path) -> None:
    """Apply a frozen revision: replace the routines/events it redefines, create the new objects."""
    applier = Applier(op)
    objects = load(frozen / revision)
    for obj in objects:
        if obj.kind != "tables" and previous_definition(obj, revision, frozen) is not None:
            applier.statement(obj.drop())
    applier.create(objects)


def downgrade(op: Any, revision: str, frozen: Path) -> None:
    """Undo a frozen revision: drop what it made, restore what it replaced."""
    applier = Applier(op)
    restore = []
    for obj in reversed(load(frozen / revision)):
        previous = previous_definition(obj, revision, frozen)
        if obj.kind == "tables" and previous is not None:
            raise NotImplementedError(f"{obj.key}: table changes need a hand-written ALTER in the revision")
        applier.statement(obj.drop())
        if previous is not None:
            restore.append(previous)
    applier.create(reversed(restore))
