"""Calling the SQL API exactly as a client in another language would: CALL over a plain connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pymysql


def call(
    conn: pymysql.Connection, procedure: str, *args: Any, out: int = 0
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    holders = ["%s"] * len(args) + [f"@o{i}" for i in range(out)]
    with conn.cursor() as cur:
        cur.execute(f"CALL {procedure}({', '.join(holders)})", args)
        rows = list(cur.fetchall())
        while cur.nextset():
            pass
        outs: tuple[Any, ...] = ()
        if out:
            cur.execute("SELECT " + ", ".join(f"@o{i}" for i in range(out)))
            outs = tuple(cur.fetchone() or ())
    return rows, outs


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


def open_session(conn: pymysql.Connection, owner: str = "test", ttl_ms: int = 3000) -> tuple[int, str]:
    _, (sid, token) = call(conn, "dsreg_session_open", owner, ttl_ms, out=2)
    return int(sid), str(token)


def query(conn: pymysql.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return list(cur.fetchall())


def disable_reaper_event(conn: pymysql.Connection) -> None:
    """Tests that order reaps themselves switch the once-a-second reaper event off."""
    query(conn, "ALTER EVENT dsreg_reaper DISABLE")


def expire(conn: pymysql.Connection, session_id: int) -> None:
    """Let a lease run out now, without sleeping (the test owns the database)."""
    query(conn, "UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", session_id)


def hold_counter(conn: pymysql.Connection, name: str) -> None:
    """Open a transaction on `conn` holding the lock on counter row `name` ('revision', 'fence')
    until the caller ends it: every writer that needs that counter stops there, in lock wait."""
    query(conn, "START TRANSACTION")
    query(conn, "SELECT value FROM dsreg_counter WHERE name = %s FOR UPDATE", name)


class Background:
    """Run one call on its own connection in a thread; keep its result or error."""

    def __init__(self, conn: pymysql.Connection, fn: Callable[[pymysql.Connection], Any]) -> None:
        self.conn = conn
        self.thread_id = conn.thread_id()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,))
        self._thread.start()

    def _run(self, fn: Callable[[pymysql.Connection], Any]) -> None:
        try:
            self.result = fn(self.conn)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive()


def wait_for_lock_wait(conn: pymysql.Connection, thread_id: int, timeout: float = 10.0) -> None:
    """Block until connection `thread_id` waits for a row lock (so the interleaving is certain)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(
            conn,
            "SELECT 1 FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'",
            thread_id,
        )
        if rows:
            return
        time.sleep(0.2)  # INNODB_TRX is a cache refreshed only when 0.1 s old: poll slower than that
    trx = query(conn, "SELECT trx_mysql_thread_id, trx_state, trx_query FROM information_schema.INNODB_TRX")
    raise AssertionError(f"connection {thread_id} never waited for a lock: {trx}")


def snapshot(conn: pymysql.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every dsreg row that a call could change (timestamps and token hashes left out)."""
    return {
        "sessions": query(conn, "SELECT id, owner, ttl_ms FROM dsreg_session ORDER BY id"),
        "nodes": query(
            conn, "SELECT path, value, session_id, version, create_rev, mod_rev FROM dsreg_node ORDER BY path"
        ),
        "events": query(conn, "SELECT rev, kind, path, value, session_id FROM dsreg_event ORDER BY rev"),
        "locks": query(conn, "SELECT name, session_id, fence FROM dsreg_lock ORDER BY name"),
        "counters": query(conn, "SELECT name, value FROM dsreg_counter ORDER BY name"),
    }


def race_opens(
    conns: list[pymysql.Connection], retry: int | None = None
) -> tuple[list[tuple[int, str]], list[str | None], int]:
    """One open on each connection, all released together: the sessions opened, the SQLSTATEs of the
    refused, and how many times an error numbered ``retry`` (1213 on Galera) made one try again."""
    start = threading.Barrier(len(conns))
    opened: list[tuple[int, str]] = []
    refused: list[str | None] = []
    retries = 0

    def open_one(c: pymysql.Connection) -> None:
        nonlocal retries
        start.wait(timeout=30)
        while True:
            try:
                opened.append(open_session(c, "race", 60_000))
                return
            except pymysql.err.MySQLError as e:
                if e.args[0] != retry:
                    refused.append(sqlstate(e))
                    return
                retries += 1

    threads = [threading.Thread(target=open_one, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return opened, refused, retries
