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

import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

CREATE = (
    "CREATE TABLE IF NOT EXISTS dsreg_migration_lock ("
    " id TINYINT NOT NULL PRIMARY KEY,"
    " owner VARCHAR(255) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL) ENGINE = InnoDB"
)


class LockTimeout(TimeoutError):
    """Another migrator held the lock for longer than we were willing to wait."""


@contextmanager
def migration_lock(engine: Engine, *, lease_s: int = 900, wait_s: float = 1200.0) -> Iterator[str]:
    owner = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
    deadline = time.monotonic() + wait_s
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
            # a lease whose holder died is taken over when it runs out
            conn.execute(text("DELETE FROM dsreg_migration_lock WHERE id = 1 AND expires_at < UTC_TIMESTAMP(6)"))
            if time.monotonic() > deadline:
                raise LockTimeout(f"another migration held dsreg_migration_lock for over {wait_s:.0f} s")
            log.info("waiting for the migration lock")
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 2.0)
        try:
            yield owner
        finally:
            conn.execute(text("DELETE FROM dsreg_migration_lock WHERE id = 1 AND owner = :owner"), {"owner": owner})
