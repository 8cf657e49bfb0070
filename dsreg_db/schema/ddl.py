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

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import Connection

from dsreg_db.schema.sqlobjects import (
    PLAIN,
    ROUTINE_SQL_MODE,
    SqlObject,
    dropped,
    is_public,
    load,
    previous_definition,
    quote_account,
    seed_keys,
)

log = logging.getLogger(__name__)

Execute = Callable[[str], list[tuple[Any, ...]]]

#: GRANT to an account that does not exist: MariaDB with NO_AUTO_CREATE_USER, MySQL 8
NO_SUCH_ACCOUNT = frozenset({1133, 1410})
ER_WRONG_VALUE_FOR_VAR = 1231


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
        return [str(r[0]) for r in self._execute("SELECT account FROM dsreg_grantee ORDER BY account")]

    def regrant(self, procedures: list[str]) -> None:
        """GRANT EXECUTE on ``procedures`` again to every recorded account that still exists.

        A GRANT must never create an account: MariaDB's GRANT re-created a dropped account with an
        empty password unless the session's sql_mode has NO_AUTO_CREATE_USER (then it fails with
        1133); MySQL 8 never creates one and fails with 1410. Either way the account is gone: it is
        skipped with a warning and removed from ``dsreg_grantee``, and the migration goes on.
        """
        assert self._execute is not None
        accounts = self.grantees()
        if not accounts or not procedures:
            return
        try:
            self._execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_CREATE_USER')")
        except pymysql.err.MySQLError as exc:  # MySQL 8 has no such mode: its GRANT never creates users
            if exc.args[0] != ER_WRONG_VALUE_FOR_VAR:
                raise
        for account in accounts:
            quoted = quote_account(account)
            try:
                for name in procedures:
                    self._execute(f"GRANT EXECUTE ON PROCEDURE {name} TO {quoted}")
            except pymysql.err.MySQLError as exc:
                if exc.args[0] not in NO_SUCH_ACCOUNT:
                    raise
                log.warning("account %s no longer exists: not re-granted, removed from dsreg_grantee", account)
                # quote_account admitted it: no quote or backslash can be in it
                self._execute(f"DELETE FROM dsreg_grantee WHERE account = '{account}'")

    def create(self, objects: Iterable[SqlObject]) -> None:
        """Create objects under the fixed sql_mode; re-grant EXECUTE on public procedures."""
        self.statement(f"SET SESSION sql_mode = '{ROUTINE_SQL_MODE}'")
        created = []
        for obj in objects:
            for sql in obj.statements(self.definer):
                self.statement(sql, routine=obj.kind not in PLAIN)
            created.append(obj)
        public = [o.name for o in created if is_public(o)]
        if self.offline and public:
            self._output("-- application accounts: run `dsreg grant user@host` again after this script\n")
        if not self.offline:
            self.regrant(public)


def _altered(obj: SqlObject, revision: str, frozen: Path) -> bool:
    """A table an earlier revision created: its frozen copy here records the result of the
    revision's own hand-written ALTER (data must survive), so DDL here never touches it."""
    return obj.kind == "tables" and previous_definition(obj, revision, frozen) is not None


def _delete_seed_rows(applier: Applier, seed: SqlObject, keys: list[str]) -> None:
    """Delete a seed's rows by key; the table and key column are read from its INSERT."""
    if not keys:
        return
    m = re.search(r"INSERT\s+IGNORE\s+INTO\s+(\w+)\s*\(\s*(\w+)", seed.code(), re.I)
    assert m is not None, f"{seed.key}: not an INSERT IGNORE INTO table (key, ...)"
    # seed_keys admits only [A-Za-z0-9_]: nothing to escape
    applier.statement(f"DELETE FROM {m.group(1)} WHERE {m.group(2)} IN ({', '.join(repr(k) for k in keys)})")


def upgrade(op: Any, revision: str, frozen: Path) -> None:
    """Apply a frozen revision: replace the routines/events it redefines, create the new objects,
    then drop those it drops (last, so the old callers of a dropped helper are replaced first).
    Changed tables are left to the revision's hand-written ALTER."""
    applier = Applier(op)
    objects = [o for o in load(frozen / revision) if not _altered(o, revision, frozen)]
    for obj in objects:
        if obj.kind not in PLAIN and previous_definition(obj, revision, frozen) is not None:
            applier.statement(obj.drop())
    applier.create(objects)  # a seed's INSERT IGNORE adds the missing rows, keeps tuned values
    for obj in dropped(frozen / revision):
        applier.statement(obj.drop())


def downgrade(op: Any, revision: str, frozen: Path) -> None:
    """Undo a frozen revision: drop what it made, restore what it replaced or dropped.
    Changed tables are left to the revision's hand-written ALTER."""
    applier = Applier(op)
    restore = [p for p in (previous_definition(o, revision, frozen) for o in dropped(frozen / revision)) if p]
    for obj in reversed(load(frozen / revision)):
        if _altered(obj, revision, frozen):
            continue
        previous = previous_definition(obj, revision, frozen)
        if obj.kind == "seeds":
            # the rows this revision added go; the first frozen seed recorded rows older revisions made
            if previous is not None:
                _delete_seed_rows(applier, obj, [k for k in seed_keys(obj) if k not in seed_keys(previous)])
            continue
        applier.statement(obj.drop())
        if previous is not None:
            restore.append(previous)
    applier.create(reversed(restore))
