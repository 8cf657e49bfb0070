"""Exceptions: one class per dsreg SQLSTATE, plus what the driver raises.

The procedures SIGNAL with ``MYSQL_ERRNO`` equal to the SQLSTATE (45001 ...)
so a driver that drops the SQLSTATE still tells them apart (PyMySQL reads the
number as a signed 16-bit value, hence the mask). Messages about an argument
start with its name (``p_path: ...``), which becomes :attr:`DsregError.argument`.
"""

from __future__ import annotations

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


class Unavailable(DsregError):
    """The server could not be reached within the retry budget."""

    sqlstate = "08000"


_BY_SQLSTATE: dict[str, type[DsregError]] = {
    cls.sqlstate: cls for cls in (SessionExpired, InvalidArgument, NotOwner, Compacted, Conflict)
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
