"""The database a tool (``dsreg bench``, ``torture``, ``demo``) writes its test data into.

Without a URL the tools start a throwaway private server (nothing to protect).
With ``--url`` they write into someone's database, so they first check that it
is *disposable*, and refuse otherwise (one line naming :data:`FLAG`):

* every table, view, routine and event in it is in dsreg's namespace (its name
  starts with ``dsreg_``, as every object of dsreg's schema, its version and
  migration-lock tables and the tools' own tables do), and it has no
  triggers: an application's table, or DolphinScheduler's ``t_ds_*`` tables,
  mean someone else uses it;
* ``dsreg_session`` and ``dsreg_node`` hold no rows: a registry in use (or
  one whose sessions have not expired yet) is someone else's too.

So an empty database, a freshly migrated one, or one a finished tool run left
behind passes. :data:`FLAG` skips the check (the user says the database may
take the test data).

Either way the tool cleans up after itself when it ends, also on an exception
(:func:`borrowed`): it ends the sessions it opened (by owner, only those newer
than the run: their nodes and locks go with them, with DELETE events), deletes
its persistent nodes, drops its own tables, and, when the run installed the
dsreg schema, removes it again (downgrade to base, then drops the ``dsreg_``
tables that were not there before the run). Only a SIGKILL of the tool leaves something behind:
its sessions expire within their ttl, bench's bulk-inserted ones within an hour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql

from dsreg_db import driver
from dsreg_db.schema import migrate
from dsreg_db.urls import pymysql_params

log = logging.getLogger(__name__)

#: the one flag of bench, torture and demo that skips the check
FLAG = "--i-own-this-database"

#: dsreg's namespace: every table, routine and event of its schema, and the tools' own tables
PREFIX = "dsreg_"


class NotDisposable(Exception):
    """The database holds something the tool did not create; the message is one line naming :data:`FLAG`."""


@dataclass(frozen=True)
class Footprint:
    """What one tool leaves in a database, to remove afterwards."""

    tool: str
    owners: Sequence[str]  # SQL LIKE patterns of the owners of its sessions
    persistent: Sequence[str] = ()  # paths of the persistent nodes it writes
    tables: Sequence[str] = ()  # its own tables


def _connect(url: str) -> pymysql.Connection:
    return driver.connect(autocommit=True, **pymysql_params(url))


def _names(cur: Any, sql: str) -> list[str]:
    cur.execute(sql)
    return sorted(str(r[0]) for r in cur.fetchall())


def _tables(cur: Any) -> list[str]:
    return _names(cur, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")


def _ours(name: str) -> bool:
    return name.lower().startswith(PREFIX)


def check_disposable(url: str, tool: str) -> None:
    """Raise :class:`NotDisposable` unless the URL's database holds only objects in dsreg's namespace
    and no sessions or nodes (see the module docstring)."""
    with _connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        (db,) = cur.fetchone()  # type: ignore[misc]
        if db is None:
            raise NotDisposable(f"dsreg {tool}: the URL names no database; name an empty one, or omit --url")
        tables = _tables(cur)
        routines = _names(cur, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")
        events = _names(cur, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()")
        triggers = _names(cur, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
        foreign = (
            [f"table {t}" for t in tables if not _ours(t)]
            + [f"routine {r}" for r in routines if not _ours(r)]
            + [f"event {e}" for e in events if not _ours(e)]
            + [f"trigger {t}" for t in triggers]
        )
        if not foreign:
            present = {t.lower() for t in tables}
            for table in ("dsreg_session", "dsreg_node"):
                if table in present:
                    cur.execute(f"SELECT COUNT(*) FROM {table}")
                    (rows,) = cur.fetchone()  # type: ignore[misc]
                    if rows:
                        foreign.append(f"{rows} row(s) in {table}")
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise NotDisposable(
            f"dsreg {tool}: refusing to write test data into database {db}: it holds what {tool} did not create "
            f"({', '.join(foreign[:3])}{more}); use an empty database, omit --url for a throwaway server, "
            f"or pass {FLAG} if it may take the test data"
        )


def _max_session_id(url: str) -> int:
    with _connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM dsreg_session")
        (top,) = cur.fetchone()  # type: ignore[misc]
        return int(top)


def cleanup(url: str, footprint: Footprint, after_session: int) -> None:
    """End the tool's sessions newer than ``after_session``, delete its persistent nodes, drop its tables."""
    with _connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        present = {str(r[0]).lower() for r in cur.fetchall()}
        if "dsreg_session" in present and footprint.owners:
            mine = "id > %s AND (" + " OR ".join(["owner LIKE %s"] * len(footprint.owners)) + ")"
            args = (after_session, *footprint.owners)
            # sessions holding nodes or locks end the way the reaper ends them (DELETE events included) ...
            cur.execute(
                f"SELECT id FROM dsreg_session s WHERE {mine} AND ("
                "EXISTS (SELECT 1 FROM dsreg_node n WHERE n.session_id = s.id) OR "
                "EXISTS (SELECT 1 FROM dsreg_lock l WHERE l.session_id = s.id))",
                args,
            )
            for (sid,) in cur.fetchall():
                cur.execute("START TRANSACTION")
                cur.execute("CALL dsreg__session_end(%s, FALSE, @ended)", (sid,))
                cur.execute("COMMIT")
            # ... the rest (bench's bulk-inserted sessions: no nodes, no locks) in batches
            while cur.execute(f"DELETE FROM dsreg_session WHERE {mine} LIMIT 5000", args):
                pass
        if "dsreg_node" in present:
            for path in footprint.persistent:
                cur.execute("CALL dsreg_delete(NULL, NULL, %s)", (path,))
        for table in footprint.tables:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


@contextmanager
def borrowed(url: str, footprint: Footprint, *, force: bool = False) -> Iterator[str]:
    """A user's database for one tool run: checked (unless ``force``), then yielded for the tool to migrate
    and fill; afterwards, also after an exception, :func:`cleanup`, and the dsreg schema is removed again
    if this run installed it."""
    if not force:
        check_disposable(url, footprint.tool)
    with _connect(url) as conn, conn.cursor() as cur:
        before = set(_tables(cur))
    installed = migrate.current(url) is None
    after_session = 0 if installed else _max_session_id(url)
    try:
        yield url
    except BaseException:
        try:
            _clean(url, footprint, after_session, before if installed else None)
        except Exception:
            log.exception("dsreg %s: cleaning up after the failed run failed too", footprint.tool)
        raise
    _clean(url, footprint, after_session, before if installed else None)


def _clean(url: str, footprint: Footprint, after_session: int, installed_over: set[str] | None) -> None:
    """:func:`cleanup`; if the run installed the schema (``installed_over``: the tables before it), remove
    it again, and every ``dsreg_`` table that was not there before (the migration lock, the tools' tables)."""
    if installed_over is None:
        cleanup(url, footprint, after_session)
        return
    if migrate.current(url) is not None:
        migrate.downgrade(url, "base")  # every dsreg object, sessions and nodes with them
    with _connect(url) as conn, conn.cursor() as cur:
        for table in _tables(cur):
            if _ours(table) and table not in installed_over:
                cur.execute(f"DROP TABLE IF EXISTS `{table}`")
