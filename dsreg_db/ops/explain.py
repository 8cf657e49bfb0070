"""One line for each failure a user can fix: what went wrong and what to do (``dsreg`` prints it).

:func:`explain` turns a driver, Alembic or dsreg exception into that line;
:func:`exit_code` says 2 for a bad argument (an unknown revision) and 1 for
everything else; :data:`EXPLAINED` is what the CLI catches. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy.exc
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from dsreg_db.errors import (
    DsregError,
    MigrationLocked,
    NoUrl,
    SchemaMissing,
    ServerFailed,
    ServerNotFound,
    Unavailable,
    schema_missing,
)
from dsreg_db.schema import migrate

#: the exceptions :func:`explain` has a line for
EXPLAINED: tuple[type[BaseException], ...] = (
    DsregError,
    NoUrl,
    ServerNotFound,
    ServerFailed,
    MigrationLocked,
    sqlalchemy.exc.SQLAlchemyError,
    CommandError,
    AlembicRevisionError,
)

URL_HINT = "--url / $DSREG_URL"


def explain(exc: BaseException) -> str:
    """The cause and the fix, on one line."""
    return " ".join(_explain(exc).split())


def exit_code(exc: BaseException) -> int:
    """2 for a bad argument (a revision this package does not have), else 1."""
    return 2 if isinstance(exc, CommandError | AlembicRevisionError) else 1


def _explain(exc: BaseException) -> str:
    if isinstance(exc, SchemaMissing):
        return exc.message
    if isinstance(exc, Unavailable):
        cause = exc.__cause__
        line = _driver(cause) if isinstance(cause, sqlalchemy.exc.DBAPIError) else None
        return line or exc.message
    if isinstance(exc, MigrationLocked):
        return _migration_locked(str(exc))
    if isinstance(exc, CommandError | AlembicRevisionError):
        return _revision(exc)
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return _driver(exc) or f"database error: {exc.orig}"
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return f"database error: {exc}"
    return str(exc)


def _driver(exc: sqlalchemy.exc.DBAPIError) -> str | None:
    """A line for the driver errors a user causes (or fixes) outside dsreg, else None."""
    missing = schema_missing(exc)
    if missing is not None:
        return missing.message
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    if len(args) < 2 or not isinstance(args[0], int):
        return None
    errno, message = args[0], str(args[1])
    if errno == 2003:  # Can't connect to MySQL server on 'host' ([Errno 111] Connection refused)
        m = re.search(r"on '([^']*)'(?::(\d+))? \((?:\[Errno -?\d+\] )?(.*)\)\s*$", message)
        where, why = (m.group(1) + (f":{m.group(2)}" if m.group(2) else ""), m.group(3)) if m else ("", message)
        return (
            f"database unavailable: cannot connect to the server at {where} ({why}): "
            f"start the server, or fix the host and port in {URL_HINT}"
        )
    if errno == 2005:  # Unknown MySQL server host 'x'
        return f"database unavailable: {message}: fix the host in {URL_HINT}"
    if errno == 1045:  # Access denied for user 'u'@'h' (using password: YES)
        return f"wrong user or password: {message}: fix the user and password in {URL_HINT}"
    if errno == 1049:  # Unknown database 'x'
        m = re.search(r"'([^']*)'", message)
        name = m.group(1) if m else "?"
        return (
            f"the database '{name}' does not exist: create it (CREATE DATABASE `{name}`) "
            f"or fix the database name in {URL_HINT}"
        )
    return None


def _migration_locked(message: str) -> str:
    m = re.search(r"held by (\S+)", message)
    who = m.group(1) if m else "that upgrade"
    return (
        f"migration lock busy: {message}; wait for {who} to finish, or if it died: the stale lock expires "
        "at the end of its lease (15 minutes by default), or release it now with dsreg release-migration-lock"
    )


def _revision(exc: BaseException) -> str:
    message = str(exc)
    resolution = exc if isinstance(exc, ResolutionError) else exc.__cause__
    unknown = resolution.argument if isinstance(resolution, ResolutionError) else None
    if unknown is None:
        m = re.search(r"Can't locate revision identified by '([^']*)'", message)
        unknown = m.group(1) if m else None
    known = _known_revisions()
    if unknown is not None:
        return (
            f"unknown revision '{unknown}': this package has {known}; pass one of them, head or base "
            f"(dsreg current shows the database's; if the database itself is at '{unknown}', "
            "a newer dsreg-db migrated it: install that version)"
        )
    return f"{message}: this package has {known}; dsreg current shows the database's revision"


def _known_revisions() -> str:
    try:
        ids = [s.revision for s in ScriptDirectory.from_config(migrate.config()).walk_revisions()][::-1]
    except Exception:  # a broken script directory must not hide the error being explained
        return "revisions dsreg current lists"
    return f"{ids[0]} .. {ids[-1]} (head)" if len(ids) > 1 else ", ".join(ids) + " (head)"


def schema_problem(current: str | None, head: str | None = None) -> str | None:
    """None if the database's revision ``current`` is this package's head; else what is wrong and the fix."""
    head = head or migrate.head()
    if current == head:
        return None
    if current is None:
        return f"no dsreg schema in this database (this package's head is {head}): run dsreg upgrade"
    try:
        ScriptDirectory.from_config(migrate.config()).get_revision(current)
    except (CommandError, AlembicRevisionError):
        return (
            f"database at revision {current}, newer than this package (head {head}): "
            "a newer dsreg-db migrated it; install that version"
        )
    return f"database at revision {current}, older than this package (head {head}): run dsreg upgrade"
