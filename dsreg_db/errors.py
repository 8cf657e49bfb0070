"""Exceptions: one class per dsreg SQLSTATE, plus what the driver raises.

The procedures SIGNAL with ``MYSQL_ERRNO`` equal to the SQLSTATE (45001 ...)
so a driver that drops the SQLSTATE still tells them apart (PyMySQL reads the
number as a signed 16-bit value, hence the mask). Messages about an argument
start with its name (``p_path: ...``), which becomes :attr:`DsregError.argument`.
"""

from __future__ import annotations

import re

import pymysql


class DsregError(Exception):
    """Base class. ``sqlstate``, ``argument`` (may be None) and ``message``."""

    sqlstate = "45000"

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.argument = argument

    def __str__(self) -> str:
        return f"[{self.sqlstate}] {self.message}"


class SessionExpired(DsregError):
    """45001: the session was reaped or closed (or never existed)."""

    sqlstate = "45001"


class InvalidArgument(DsregError, ValueError):
    """45002: a bad path, value, ttl, bound or NULL."""

    sqlstate = "45002"


class NotOwner(DsregError):
    """45003: wrong token, or another session's node or lock."""

    sqlstate = "45003"


class Compacted(DsregError):
    """45004: the watch position is older than the compaction point."""

    sqlstate = "45004"


class Conflict(DsregError):
    """45005: the path is owned by another session (or is persistent)."""

    sqlstate = "45005"


class LimitExceeded(DsregError):
    """45006: a limit setting is reached (sessions per account, nodes or locks per session);
    the message starts with the setting's name, e.g. ``max_nodes_per_session=1000 reached: ...``."""

    sqlstate = "45006"

    @property
    def limit(self) -> str:
        """The name of the ``dsreg_setting`` row that was reached."""
        return self.message.split("=", 1)[0]


class Unavailable(DsregError):
    """The server could not be reached within the retry budget."""

    sqlstate = "08000"


class SchemaMissing(DsregError):
    """A dsreg table or procedure does not exist (MySQL error 1146 or 1305): the database was
    never migrated, or is older than this package. Fix: ``dsreg upgrade``."""

    sqlstate = "42000"


class LockTimeout(TimeoutError):
    """``Session.lock`` did not get the lock in time."""


# -- tools: not raised by a procedure ----------------------------------------------


class NoUrl(ValueError):
    """No database URL was given, or it is not a MySQL/MariaDB URL."""


class MigrationLocked(TimeoutError):
    """Another migrator held ``dsreg_migration_lock`` for longer than we were willing to wait."""


class RevisionError(ValueError):
    """``dsreg revision``: nothing to freeze, or a change this command cannot express."""


class ServerNotFound(RuntimeError):
    """No mariadbd/mysqld binary (or Galera provider) on this machine."""


class ServerFailed(RuntimeError):
    """A private test server did not start; the message ends with its error log."""


class BadAccount(ValueError):
    """An account name that is not ``user@host`` (letters, digits, ``_.$-``; host also ``%:``)."""


_BY_SQLSTATE: dict[str, type[DsregError]] = {
    cls.sqlstate: cls for cls in (SessionExpired, InvalidArgument, NotOwner, Compacted, Conflict, LimitExceeded)
}


def translate(exc: BaseException) -> BaseException:
    """Map a driver error raised by a dsreg SIGNAL to its class; else return it unchanged."""
    orig = getattr(exc, "orig", exc)  # SQLAlchemy wraps the DBAPI error in .orig
    if not isinstance(orig, pymysql.err.MySQLError) or len(orig.args) < 2:
        return exc
    errno, message = orig.args[0], str(orig.args[1])
    sqlstate = getattr(orig, "sqlstate", None) or str(errno & 0xFFFF)
    cls = _BY_SQLSTATE.get(sqlstate)
    if cls is None:
        return exc
    argument = message.split(":", 1)[0] if message.startswith("p_") and ":" in message else None
    return cls(message, argument)


#: table / routine does not exist
SCHEMA_ERRNOS = frozenset({1146, 1305})
#: a dsreg object named right before "does not exist" / "doesn't exist" (not a database named dsreg_...)
_DSREG_OBJECT = re.compile(r"(?:^|[\s.'`])dsreg_\w*['`]?\s+does", re.IGNORECASE)


def schema_missing(exc: BaseException) -> SchemaMissing | None:
    """A :class:`SchemaMissing` if ``exc`` is error 1146 or 1305 on a dsreg table or routine, else None."""
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, pymysql.err.MySQLError) or len(orig.args) < 2:
        return None
    errno, message = orig.args[0], str(orig.args[1])
    if errno not in SCHEMA_ERRNOS or not _DSREG_OBJECT.search(message):
        return None
    return SchemaMissing(f"dsreg schema missing or older than this package ({message}): run dsreg upgrade")
