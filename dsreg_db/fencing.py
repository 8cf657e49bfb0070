"""Fenced writes: the application's own transaction, guarded by dsreg_fence_check / dsreg_session_check.

A fencing token only protects data that checks it. dsreg lives in the application's
database, so the check runs inside the application's transaction: the guard holds
the lock row (and the session row) until that transaction ends, so its writes
commit only while the lock is still this session's, with this fence::

    with session.lock("/locks/failover/master-3") as fence:
        with session.fenced(app_engine, "/locks/failover/master-3", fence) as conn:
            conn.execute(update(process_instance).values(host=me))   # commits at the end

A holder paused past its lease (GC, SIGSTOP, a VM migration) gets ``SessionExpired`` or
``NotOwner`` here instead of writing; its transaction is rolled back. Keep the block
short: until it ends, a release, close or reap of this session waits, and so do the
session's own lease-writing keepalives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy.exc
from sqlalchemy.engine import Connection, Engine

from dsreg_db.errors import translate


def _guard(conn: Connection, procedure: str, args: tuple[Any, ...]) -> None:
    holders = ", ".join(["%s"] * len(args))
    try:
        conn.exec_driver_sql(f"CALL {procedure}({holders})", args)
    except sqlalchemy.exc.DBAPIError as exc:
        raise translate(exc) from exc


@contextmanager
def guarded(target: Engine | Connection, procedure: str, *args: Any) -> Iterator[Connection]:
    """A transaction on the application's ``target`` whose first statement is the guard.

    An Engine: a new connection and transaction, committed when the block ends.
    A Connection already in a transaction: the guard joins it and the caller commits.
    A Connection without one: a transaction is begun and committed when the block ends.
    """
    if isinstance(target, Engine):
        with target.connect() as conn, guarded(conn, procedure, *args) as joined:
            yield joined
        return
    with nullcontext() if target.in_transaction() else target.begin():
        _guard(target, procedure, args)
        yield target
