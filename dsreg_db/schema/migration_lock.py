"""One migrator at a time, across processes, hosts and Galera nodes.

``GET_LOCK`` is per server (on Galera, per node: two nodes would both grant
it) and a row lock is released by the implicit commit of the first DDL. So
the lock is a *committed lease row*: whoever inserts row 1 into
``dsreg_migration_lock`` holds it. Concurrent inserts conflict on the primary
key -- on one server as a duplicate key, on Galera at certification (one
commit wins cluster-wide) -- and the losers wait and retry. A lease whose
holder died is taken over once it expires. The table is bookkeeping, like
Alembic's version table, and stays after ``downgrade base``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from dsreg_db.errors import MigrationLocked

log = logging.getLogger(__name__)

CREATE = (
    "CREATE TABLE IF NOT EXISTS dsreg_migration_lock ("
    " id TINYINT NOT NULL PRIMARY KEY,"
    " owner VARCHAR(255) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL) ENGINE = InnoDB"
)


@contextmanager
def migration_lock(engine: Engine, *, lease_s: int = 900, wait_s: float = 1200.0) -> Iterator[str]:
    owner = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
    started = time.monotonic()
    deadline = started + wait_s
    reported: tuple[str, datetime] | None = None  # (owner, expires_at) last said to be waited for
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(CREATE))
        delay = 0.05
        while True:
            try:
                conn.execute(
                    text(
                        "INSERT INTO dsreg_migration_lock (id, owner, expires_at) "
                        "VALUES (1, :owner, UTC_TIMESTAMP(6) + INTERVAL :lease SECOND)"
                    ),
                    {"owner": owner, "lease": lease_s},
                )
                break
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
                errno = getattr(exc.orig, "args", [None])[0]
                if errno not in (1062, 1213):  # held (duplicate key), or lost a Galera certification race
                    raise
            seen = holder(conn)
            if seen is not None and seen[:2] != reported:  # once per holder, not once per poll
                reported = seen[:2]
                log.info(
                    "waiting for the migration lock: held by %s until %s UTC (%s)",
                    seen[0],
                    f"{seen[1]:%Y-%m-%d %H:%M:%S}",
                    _left(seen[2]),
                )
            # a lease whose holder died is taken over when it runs out
            taken = conn.execute(
                text("DELETE FROM dsreg_migration_lock WHERE id = 1 AND expires_at < UTC_TIMESTAMP(6)")
            )
            if taken.rowcount and seen is not None:
                log.warning("took over the expired migration lock of %s", seen[0])
            if time.monotonic() > deadline:
                who = f"held by {seen[0]} (lease until {seen[1]:%Y-%m-%d %H:%M:%S} UTC)" if seen else "held"
                raise MigrationLocked(f"dsreg_migration_lock {who} for over {wait_s:.0f} s")
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 2.0)
        if reported is not None:
            log.info("took the migration lock after %.1f s", time.monotonic() - started)
        try:
            yield owner
        finally:
            conn.execute(text("DELETE FROM dsreg_migration_lock WHERE id = 1 AND owner = :owner"), {"owner": owner})


def holder(conn: Connection) -> tuple[str, datetime, float] | None:
    """Who holds the lock: (owner, expires_at in UTC, seconds left, negative once expired); None if nobody."""
    row = conn.execute(
        text(
            "SELECT owner, expires_at, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) "
            "FROM dsreg_migration_lock WHERE id = 1"
        )
    ).one_or_none()
    return None if row is None else (str(row[0]), row[1], float(row[2]) / 1e6)


def _left(seconds: float) -> str:
    return f"{seconds:.0f} s left" if seconds >= 0 else f"expired {-seconds:.0f} s ago"


def release(engine: Engine) -> tuple[str, datetime, float] | None:
    """Delete the lock row whoever holds it (``dsreg release-migration-lock``); returns who held it.

    For a stale lock whose holder died: a migration still running loses its lock, and
    another upgrade may then run at the same time.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        try:
            held = holder(conn)
        except sqlalchemy.exc.ProgrammingError as exc:
            if getattr(exc.orig, "args", [None])[0] == 1146:  # no table: never migrated here
                return None
            raise
        if held is not None:
            # that holder's row only: one that took the lock meanwhile keeps it
            conn.execute(text("DELETE FROM dsreg_migration_lock WHERE id = 1 AND owner = :owner"), {"owner": held[0]})
        return held
