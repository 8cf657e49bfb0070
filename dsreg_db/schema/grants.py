"""Least privilege: application accounts get EXECUTE on the public procedures only.

* ``grant_app``: create (or update) ``user@host`` with EXECUTE on each public
  procedure, nothing else -- not the tables, not the ``dsreg__`` helpers (they
  check no token: granting them would let one client end another's session).
  The account is recorded in ``dsreg_grantee`` so every later migration, which
  replaces routines by DROP + CREATE (dropping a routine drops its grants),
  grants EXECUTE again.
* ``create_definer``: a locked account (``ACCOUNT LOCK``: it cannot log in) to
  own the procedures and events (``dsreg upgrade --definer``); it holds the
  table privileges the procedures use, EXECUTE for the helpers they call, and
  EVENT: the scheduler runs an event only while its definer has EVENT on the
  schema (without it, measured: "Access denied ... user no longer has EVENT
  privilege" every second, and nothing was ever reaped).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dsreg_db.schema.ddl import Execute, executor
from dsreg_db.schema.sqlobjects import quote_account

#: what the definer of the procedures and events needs on the schema, and nothing more
DEFINER_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "EXECUTE", "EVENT")


def public_procedures(execute: Execute) -> list[str]:
    rows = execute(
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'PROCEDURE' ORDER BY ROUTINE_NAME"
    )
    return [str(r[0]) for r in rows if str(r[0]).startswith("dsreg_") and not str(r[0]).startswith("dsreg__")]


def grant_app(engine: Engine, account: str, password: str | None = None) -> list[str]:
    """Returns the procedures granted."""
    quoted = quote_account(account)
    with engine.begin() as conn:
        execute = executor(conn)
        execute(f"CREATE USER IF NOT EXISTS {quoted}")
        if password is not None:
            # the one statement with a parameter: PyMySQL formats it, so '%' in the account is doubled
            conn.exec_driver_sql(f"ALTER USER {quoted.replace('%', '%%')} IDENTIFIED BY %s", (password,))
        procedures = public_procedures(execute)
        for name in procedures:
            execute(f"GRANT EXECUTE ON PROCEDURE {name} TO {quoted}")
        conn.execute(
            text(
                "INSERT INTO dsreg_grantee (account, granted_at) VALUES (:a, UTC_TIMESTAMP(6)) "
                "ON DUPLICATE KEY UPDATE granted_at = UTC_TIMESTAMP(6)"
            ),
            {"a": account},
        )
    return procedures


def create_definer(engine: Engine, account: str) -> None:
    """A locked account with what the procedures need on this schema, to be their DEFINER."""
    quoted = quote_account(account)
    with engine.begin() as conn:
        execute = executor(conn)
        (schema,) = execute("SELECT DATABASE()")[0]
        execute(f"CREATE USER IF NOT EXISTS {quoted} ACCOUNT LOCK")
        execute(f"ALTER USER {quoted} ACCOUNT LOCK")
        execute(f"GRANT {', '.join(DEFINER_PRIVILEGES)} ON `{schema}`.* TO {quoted}")
