"""Leases end on a 'lease_tick_ms' boundary; calls within one tick are read-only.

Whether a call wrote is observed, not assumed: a second connection holds the
session row lock, and the call under test runs with innodb_lock_wait_timeout
= 1 s. A call that needs to write (or lock) the session row fails with 1205;
a read-only fast path returns at once. A long tick (60 s) makes "the same
tick" certain for the duration of a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, open_session, query, sqlstate


def set_tick(conn: pymysql.Connection, ms: int) -> None:
    query(conn, "UPDATE dsreg_setting SET value = %s WHERE name = 'lease_tick_ms'", ms)


@contextmanager
def session_row_locked(server: ServerInfo, dbname: str, session_id: int) -> Iterator[None]:
    with server.connect(dbname) as holder, holder.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute("SELECT id FROM dsreg_session WHERE id = %s FOR UPDATE", (session_id,))
        try:
            yield
        finally:
            cur.execute("ROLLBACK")


def expires_at(conn: pymysql.Connection, session_id: int) -> object:
    return query(conn, "SELECT expires_at FROM dsreg_session WHERE id = %s", session_id)[0][0]


def test_lease_is_at_least_ttl_and_ends_on_a_tick(conn: pymysql.Connection, admin: pymysql.Connection) -> None:
    """Tried: ttl 1000, 1234 and 3001 ms with the default 100 ms tick; every lease ends on a 100 ms
    boundary, no earlier than ttl after the server clock read just before the call, and at most
    ttl + one tick after the one read just after it."""
    for ttl in (1000, 1234, 3001):
        (before,) = query(admin, "SELECT UTC_TIMESTAMP(6)")[0]
        sid, token = open_session(conn, ttl_ms=ttl)
        call(conn, "dsreg_heartbeat", sid, token, f"/tick/{ttl}", "v")
        (after,) = query(admin, "SELECT UTC_TIMESTAMP(6)")[0]
        end = expires_at(admin, sid)
        assert end.microsecond % 100_000 == 0, end
        assert before + timedelta(milliseconds=ttl) <= end <= after + timedelta(milliseconds=ttl + 100)


def test_calls_within_one_tick_write_nothing(
    server: ServerInfo, dbname: str, conn: pymysql.Connection, admin: pymysql.Connection
) -> None:
    disable_reaper_event(admin)
    set_tick(admin, 60_000)
    sid, token = open_session(conn, ttl_ms=5000)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/node", "same")
    end = expires_at(admin, sid)
    query(conn, "SET SESSION innodb_lock_wait_timeout = 1")
    with session_row_locked(server, dbname, sid):
        # tried: an unchanged heartbeat and a keepalive while another connection locks the row
        call(conn, "dsreg_heartbeat", sid, token, "/tick/node", "same")
        call(conn, "dsreg_session_keepalive", sid, token)
        # tried: a changed value; it must lock the session row, so it waits and times out
        with pytest.raises(pymysql.err.MySQLError) as waited:
            call(conn, "dsreg_heartbeat", sid, token, "/tick/node", "changed")
        assert waited.value.args[0] == 1205
    assert expires_at(admin, sid) == end
    assert query(admin, "SELECT CONVERT(value USING utf8mb4) FROM dsreg_node WHERE path = '/tick/node'") == [("same",)]


def test_fast_path_still_reports_every_error(conn: pymysql.Connection, admin: pymysql.Connection) -> None:
    """Within one tick a wrong token, another session's node, a closed session and a bad path
    still fail with their SQLSTATEs; only the exact (session, token, node, value) is read-only."""
    set_tick(admin, 60_000)
    sid, token = open_session(conn)
    other, other_token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/mine", "v")
    call(conn, "dsreg_heartbeat", other, other_token, "/tick/theirs", "v")
    cases = [
        ((sid, "0" * 32, "/tick/mine", "v"), "45003"),
        ((sid, token, "/tick/theirs", "v"), "45005"),
        ((sid, token, "/tick/mine/", "v"), "45002"),
        ((sid, token, "/tick/mine", None), "45002"),
        ((None, token, "/tick/mine", "v"), "45002"),
    ]
    for args, state in cases:
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_heartbeat", *args)
        assert sqlstate(err.value) == state, args
    call(conn, "dsreg_session_close", sid, token)
    for proc, args in (("dsreg_heartbeat", (sid, token, "/tick/mine", "v")), ("dsreg_session_keepalive", (sid, token))):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, proc, *args)
        assert sqlstate(err.value) == "45001", proc


def test_node_deleted_behind_the_api_is_recreated_within_the_tick(
    conn: pymysql.Connection, admin: pymysql.Connection
) -> None:
    set_tick(admin, 60_000)
    sid, token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/gone", "v")
    query(admin, "DELETE FROM dsreg_node WHERE path = '/tick/gone'")
    call(conn, "dsreg_heartbeat", sid, token, "/tick/gone", "v")
    assert query(admin, "SELECT session_id FROM dsreg_node WHERE path = '/tick/gone'") == [(sid,)]


def test_tick_zero_makes_every_call_write(
    server: ServerInfo, dbname: str, conn: pymysql.Connection, admin: pymysql.Connection
) -> None:
    """lease_tick_ms = 0: no rounding, so every heartbeat extends the lease and locks the row."""
    disable_reaper_event(admin)
    set_tick(admin, 0)
    sid, token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/zero", "same")
    first = expires_at(admin, sid)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/zero", "same")
    assert expires_at(admin, sid) > first
    query(conn, "SET SESSION innodb_lock_wait_timeout = 1")
    with session_row_locked(server, dbname, sid):
        for proc, args in (
            ("dsreg_heartbeat", (sid, token, "/tick/zero", "same")),
            ("dsreg_session_keepalive", (sid, token)),
        ):
            with pytest.raises(pymysql.err.MySQLError) as waited:
                call(conn, proc, *args)
            assert waited.value.args[0] == 1205, proc


def test_fast_path_ignores_uncommitted_leases_whatever_the_callers_isolation(
    server: ServerInfo, dbname: str, conn: pymysql.Connection, admin: pymysql.Connection
) -> None:
    """Tried: a READ UNCOMMITTED caller while another transaction has extended the lease by an hour
    and not committed. Trusting that row would make keepalive a silent no-op on a lease that may roll
    back; the fast path reads in REPEATABLE READ, sees the committed lease is due, and takes the
    locking path (which waits for the row and times out here)."""
    disable_reaper_event(admin)
    set_tick(admin, 0)
    sid, token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/tick/ru", "v")
    query(conn, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
    query(conn, "SET SESSION innodb_lock_wait_timeout = 1")
    with server.connect(dbname) as other, other.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute("UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE id = %s", (sid,))
        for proc, args in (
            ("dsreg_session_keepalive", (sid, token)),
            ("dsreg_heartbeat", (sid, token, "/tick/ru", "v")),
        ):
            with pytest.raises(pymysql.err.MySQLError) as waited:
                call(conn, proc, *args)
            assert waited.value.args[0] == 1205, proc
        cur.execute("ROLLBACK")
    call(conn, "dsreg_session_keepalive", sid, token)  # and the caller's own level is untouched afterwards
    try:  # MySQL 8 / MariaDB 11.1+ name, then MariaDB 10.11's
        level = query(conn, "SELECT @@session.transaction_isolation")
    except pymysql.err.OperationalError:
        level = query(conn, "SELECT @@session.tx_isolation")
    assert level == [("READ-UNCOMMITTED",)]
