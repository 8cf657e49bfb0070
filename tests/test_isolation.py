"""The API behaves the same whatever transaction isolation level the caller's session uses.

Every procedure starts its transactions in REPEATABLE READ (dsreg__begin_read). Under
SERIALIZABLE a plain read takes a shared lock; before revision 0005 the writers' unlocked
reads of a node or lock row then came ahead of the revision/fence counter lock, and two
writers of new paths in one index gap deadlocked. The interleaving is forced: a third
connection holds the counter row until both writers wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import (
    Background,
    call,
    disable_reaper_event,
    hold_counter,
    open_session,
    query,
    sqlstate,
    wait_for_lock_wait,
)

LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")


def set_level(conn: pymysql.Connection, level: str) -> None:
    query(conn, f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")


def racing_writers(
    server: ServerInfo, dbname: str, counter: str, calls: list[Callable[[pymysql.Connection], Any]]
) -> list[BaseException | None]:
    """Run each call on its own SERIALIZABLE connection while `counter` is held, then release it."""
    with server.connect(dbname) as holder:
        hold_counter(holder, counter)
        writers = []
        for fn in calls:
            conn = server.connect(dbname)
            set_level(conn, "SERIALIZABLE")
            writers.append(Background(conn, fn))
            wait_for_lock_wait(holder, writers[-1].thread_id)
        query(holder, "ROLLBACK")
        for w in writers:
            w.join()
            w.conn.close()
    return [w.error for w in writers]


def test_serializable_heartbeats_creating_paths_in_one_gap_do_not_deadlock(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """Tried: two SERIALIZABLE sessions create /iso/a and /iso/b (one index gap) while the revision
    counter is held, so both have done everything up to the counter before either goes on."""
    disable_reaper_event(admin)
    sessions = [open_session(admin, f"iso{i}", 60_000) for i in range(2)]
    calls = [
        (lambda c, s=s, p=p: call(c, "dsreg_heartbeat", s[0], s[1], p, "v"))
        for s, p in zip(sessions, ("/iso/a", "/iso/b"), strict=True)
    ]
    assert racing_writers(server, dbname, "revision", calls) == [None, None]
    rows = query(admin, "SELECT CONVERT(path USING utf8mb4), session_id FROM dsreg_node ORDER BY path")
    assert rows == [("/iso/a", sessions[0][0]), ("/iso/b", sessions[1][0])]


def test_serializable_lock_acquires_of_new_names_in_one_gap_do_not_deadlock(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """Tried: two SERIALIZABLE sessions acquire the new lock names /iso/l1 and /iso/l2 while the
    fence counter is held; both get their lock, with different fences."""
    disable_reaper_event(admin)
    sessions = [open_session(admin, f"iso{i}", 60_000) for i in range(2)]
    calls = [
        (lambda c, s=s, n=n: call(c, "dsreg_lock_acquire", s[0], s[1], n, out=1))
        for s, n in zip(sessions, ("/iso/l1", "/iso/l2"), strict=True)
    ]
    assert racing_writers(server, dbname, "fence", calls) == [None, None]
    rows = query(admin, "SELECT CONVERT(name USING utf8mb4), session_id, fence FROM dsreg_lock ORDER BY name")
    assert [r[:2] for r in rows] == [("/iso/l1", sessions[0][0]), ("/iso/l2", sessions[1][0])]
    assert rows[0][2] != rows[1][2]


@pytest.mark.parametrize("level", LEVELS)
def test_every_call_gives_the_same_answers_at_every_level(level: str, conn: pymysql.Connection) -> None:
    """Tried at each level: open, heartbeat (new, same, changed), put, get, children, lock, a lock held
    by another session, watch, delete, close, reap, and the errors 45001/45003/45005."""
    set_level(conn, level)
    sid, token = open_session(conn, "iso", 60_000)
    other, other_token = open_session(conn, "iso-other", 60_000)
    for value in ("v1", "v1", "v2"):
        call(conn, "dsreg_heartbeat", sid, token, "/lv/w", value)
    call(conn, "dsreg_put", None, None, "/lv/p", "persistent")
    assert call(conn, "dsreg_get", "/lv/w")[0][0][:4] == ("/lv/w", "v2", 1, sid)
    assert call(conn, "dsreg_children", "/lv")[0] == [("p",), ("w",)]
    assert call(conn, "dsreg_lock_acquire", sid, token, "/lv/l", out=1)[1][0] is not None
    assert call(conn, "dsreg_lock_acquire", other, other_token, "/lv/l", out=1)[1] == (None,)
    events = call(conn, "dsreg_watch", "/lv", 0, 100)[0]
    assert [(e[1], e[2], e[3]) for e in events] == [
        ("ADD", "/lv/w", "v1"),
        ("UPDATE", "/lv/w", "v2"),
        ("ADD", "/lv/p", "persistent"),
    ]
    for args, state in (
        ((sid, "0" * 32, "/lv/w", "v3"), "45003"),
        ((other, other_token, "/lv/w", "v3"), "45005"),
    ):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_heartbeat", *args)
        assert sqlstate(err.value) == state, args
    call(conn, "dsreg_delete", None, None, "/lv/p")
    call(conn, "dsreg_session_close", sid, token)
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, "dsreg_session_keepalive", sid, token)
    assert sqlstate(err.value) == "45001"
    assert call(conn, "dsreg_get", "/lv/w")[0] == []
    assert call(conn, "dsreg_lock_acquire", other, other_token, "/lv/l", out=1)[1][0] is not None
    call(conn, "dsreg_reap", out=1)
    kinds = [e[1] for e in call(conn, "dsreg_watch", "/lv", events[-1][0], 100)[0]]
    assert kinds == ["DELETE", "DELETE"]
