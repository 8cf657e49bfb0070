"""Limits: every resource a caller can create has a setting, and past it a call fails with 45006
naming the setting and writes nothing. Tried at and past each limit (set low by the test)."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, expire, open_session, query, race_opens, snapshot, sqlstate


def set_limit(admin: pymysql.Connection, name: str, value: int) -> None:
    assert query(admin, "SELECT COUNT(*) FROM dsreg_setting WHERE name = %s", name) == [(1,)], name
    query(admin, "UPDATE dsreg_setting SET value = %s WHERE name = %s", value, name)


def refused(conn: pymysql.Connection, procedure: str, *args: object, out: int = 0) -> str:
    """Call, expect 45006, return the message."""
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, procedure, *args, out=out)
    assert sqlstate(err.value) == "45006", err.value
    return str(err.value.args[1])


@pytest.fixture
def other_account(server: ServerInfo, dbname: str) -> Iterator[pymysql.Connection]:
    """A second login user with EXECUTE on the database's procedures."""
    with server.connect() as root:
        query(root, "CREATE USER 'dsreg_lim2'@'%' IDENTIFIED BY 'lim2-pw'")
        query(root, f"GRANT EXECUTE ON `{dbname}`.* TO 'dsreg_lim2'@'%'")
    try:
        with pymysql.connect(
            host=server.host, port=server.port, user="dsreg_lim2", password="lim2-pw", database=dbname, autocommit=True
        ) as c:
            yield c
    finally:
        with server.connect() as root:
            query(root, "DROP USER IF EXISTS 'dsreg_lim2'@'%'")


def test_sessions_per_account(
    admin: pymysql.Connection, conn: pymysql.Connection, other_account: pymysql.Connection
) -> None:
    """Tried: a 4th session with max_sessions_per_account=3; an expired, unreaped one still counts;
    another login user is not affected; a close frees a place."""
    disable_reaper_event(admin)
    set_limit(admin, "max_sessions_per_account", 3)
    sessions = [open_session(conn, f"s{i}", 60_000) for i in range(3)]
    before = snapshot(admin)
    message = refused(conn, "dsreg_session_open", "s3", 60_000, out=2)
    assert message.startswith("max_sessions_per_account=3 reached"), message
    assert snapshot(admin) == before, "a refused open wrote something"
    open_session(other_account, "other", 60_000)  # counted per login user
    call(conn, "dsreg_session_close", *sessions[0])
    open_session(conn, "s4", 60_000)


def test_sessions_per_account_counts_expired_until_reaped_and_opening_reaps(
    admin: pymysql.Connection, conn: pymysql.Connection
) -> None:
    """An open reaps up to two expired sessions before it counts, so expired sessions do not keep
    an account at its limit, and a flood of opens cannot outrun reaping."""
    disable_reaper_event(admin)
    set_limit(admin, "max_sessions_per_account", 2)
    first = [open_session(conn, f"s{i}", 60_000) for i in range(2)]
    for sid, _ in first:
        expire(admin, sid)
    open_session(conn, "after-expiry", 60_000)
    assert query(admin, "SELECT COUNT(*) FROM dsreg_session WHERE id IN (%s, %s)", first[0][0], first[1][0]) == [(0,)]


def test_sessions_per_account_stays_exact_when_opens_race(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """Tried: 12 connections of one account opening at once, 15 rounds, with max_sessions_per_account=5:
    every round exactly 5 open and 7 get 45006 (the opens serialize on the account row's lock, and each
    counts under it)."""
    disable_reaper_event(admin)
    set_limit(admin, "max_sessions_per_account", 5)
    conns = [server.connect(dbname) for _ in range(12)]
    try:
        for round_ in range(15):
            opened, states, _ = race_opens(conns)
            assert (len(opened), states) == (5, ["45006"] * 7), f"round {round_}"
            for sid, token in opened:
                call(admin, "dsreg_session_close", sid, token)
    finally:
        for c in conns:
            c.close()


def test_nodes_per_session(admin: pymysql.Connection, conn: pymysql.Connection) -> None:
    """Tried: a 3rd ephemeral path by heartbeat and by put with max_nodes_per_session=2; updates
    of the session's own nodes and persistent nodes still work."""
    set_limit(admin, "max_nodes_per_session", 2)
    sid, token = open_session(conn, "n", 60_000)
    call(conn, "dsreg_heartbeat", sid, token, "/lim/a", "v")
    call(conn, "dsreg_put", sid, token, "/lim/b", "v")
    before = snapshot(admin)
    for procedure in ("dsreg_heartbeat", "dsreg_put"):
        message = refused(conn, procedure, sid, token, "/lim/c", "v")
        assert message.startswith("max_nodes_per_session=2 reached"), message
    assert snapshot(admin) == before, "a refused write wrote something"
    call(conn, "dsreg_heartbeat", sid, token, "/lim/a", "v2")
    call(conn, "dsreg_put", None, None, "/lim/persistent", "v")
    call(conn, "dsreg_delete", sid, token, "/lim/b")
    call(conn, "dsreg_heartbeat", sid, token, "/lim/c", "v")


def test_locks_per_session(admin: pymysql.Connection, conn: pymysql.Connection) -> None:
    """Tried: a 3rd lock with max_locks_per_session=2; re-acquiring a held one still works."""
    set_limit(admin, "max_locks_per_session", 2)
    sid, token = open_session(conn, "l", 60_000)
    fences = [call(conn, "dsreg_lock_acquire", sid, token, f"/lim/l{i}", out=1)[1][0] for i in range(2)]
    before = snapshot(admin)
    message = refused(conn, "dsreg_lock_acquire", sid, token, "/lim/l2", out=1)
    assert message.startswith("max_locks_per_session=2 reached"), message
    assert snapshot(admin) == before
    assert call(conn, "dsreg_lock_acquire", sid, token, "/lim/l0", out=1)[1] == (fences[0],)
    call(conn, "dsreg_lock_release", sid, token, "/lim/l0")
    assert call(conn, "dsreg_lock_acquire", sid, token, "/lim/l2", out=1)[1][0] > fences[1]


def test_watch_batch_bytes(admin: pymysql.Connection, conn: pymysql.Connection) -> None:
    """Tried: events of 6 + 40 bytes with max_watch_bytes=100: a batch holds the events whose
    bytes before them stay under the limit (3 here), and one event larger than the limit still
    comes alone, so a poller always moves on."""
    set_limit(admin, "max_watch_bytes", 100)
    for i in range(5):
        call(conn, "dsreg_put", None, None, f"/wb/{i}", "x" * 40)
    batch = call(conn, "dsreg_watch", "/wb", 0, 100)[0]
    assert [e[2] for e in batch] == ["/wb/0", "/wb/1", "/wb/2"]  # 0, 46, 92 bytes before each
    rest = call(conn, "dsreg_watch", "/wb", batch[-1][0], 100)[0]
    assert [e[2] for e in rest] == ["/wb/3", "/wb/4"]
    call(conn, "dsreg_put", None, None, "/wb/big", "y" * 1000)
    call(conn, "dsreg_put", None, None, "/wb/after", "z")
    big = call(conn, "dsreg_watch", "/wb", rest[-1][0], 100)[0]
    assert [e[2] for e in big] == ["/wb/big"]
    assert call(conn, "dsreg_watch", "/wb", rest[-1][0], 1)[0] == big
