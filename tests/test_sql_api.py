"""The public SQL API called directly, as a Java or shell client would."""

from __future__ import annotations

import pymysql
import pytest

from tests.sqlcall import call, disable_reaper_event, expire, open_session, query, snapshot, sqlstate


def test_session_open_returns_id_and_random_token(conn: pymysql.Connection) -> None:
    a = open_session(conn, "host-a:1", 5000)
    b = open_session(conn, "host-b:1", 5000)
    assert a[0] != b[0]
    assert len(a[1]) == 32 and int(a[1], 16) >= 0
    assert a[1] != b[1]
    # the token itself is never stored, only its SHA-256
    stored = query(conn, "SELECT token_hash, owner, ttl_ms FROM dsreg_session WHERE id = %s", a[0])
    assert stored[0][0] != a[1].encode() and len(stored[0][0]) == 32
    assert stored[0][1:] == ("host-a:1", 5000)


def test_lease_is_server_utc_plus_ttl(conn: pymysql.Connection) -> None:
    sid, _ = open_session(conn, ttl_ms=7000)
    (remaining, tick_ms) = query(
        conn,
        "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at), "
        "(SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms') FROM dsreg_session WHERE id = %s",
        sid,
    )[0]
    # ttl from the server clock, rounded up to a lease_tick_ms boundary (test_lease_tick.py)
    assert 6_000_000 < remaining <= 7_000_000 + tick_ms * 1000


def test_keepalive_extends_and_fails_after_close(conn: pymysql.Connection) -> None:
    sid, token = open_session(conn, ttl_ms=2000)
    query(conn, "UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 100 MICROSECOND WHERE id = %s", sid)
    call(conn, "dsreg_session_keepalive", sid, token)
    (remaining,) = query(
        conn, "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) FROM dsreg_session WHERE id = %s", sid
    )[0]
    assert remaining > 1_000_000
    call(conn, "dsreg_session_close", sid, token)
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, "dsreg_session_keepalive", sid, token)
    assert sqlstate(err.value) == "45001"


def test_heartbeat_creates_updates_and_skips_unchanged(conn: pymysql.Connection) -> None:
    sid, token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/worker/h1", '{"load":1}')
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/worker/h1", '{"load":1}')
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/worker/h1", '{"load":2}')
    rows, _ = call(conn, "dsreg_get", "/nodes/worker/h1")
    assert rows == [("/nodes/worker/h1", '{"load":2}', 1, sid, 2, 1, 2)]
    events = query(conn, "SELECT rev, kind, value FROM dsreg_event ORDER BY rev")
    assert events == [(1, "ADD", b'{"load":1}'), (2, "UPDATE", b'{"load":2}')]


def test_heartbeat_recreates_node_deleted_while_session_alive(conn: pymysql.Connection) -> None:
    """DolphinScheduler 3.1's heartbeat updated 0 rows after a peer's DELETE and never re-created the row."""
    sid, token = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/master/m1", "v")
    query(conn, "DELETE FROM dsreg_node WHERE path = '/nodes/master/m1'")  # a peer's unguarded delete
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/master/m1", "v")
    rows, _ = call(conn, "dsreg_get", "/nodes/master/m1")
    assert rows and rows[0][1] == "v" and rows[0][3] == sid


def test_put_persistent_and_ephemeral_conflicts(conn: pymysql.Connection) -> None:
    a = open_session(conn, "a")
    b = open_session(conn, "b")
    call(conn, "dsreg_put", None, None, "/config/x", "1")
    call(conn, "dsreg_put", None, None, "/config/x", "1")  # a put always takes a revision
    call(conn, "dsreg_put", a[0], a[1], "/nodes/a", "mine")
    before = snapshot(conn)
    # tried: b puts/heartbeats a's ephemeral node; a turns the persistent node ephemeral; no session puts a's node
    for session, path in ((b, "/nodes/a"), (a, "/config/x"), ((None, None), "/nodes/a")):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_put", session[0], session[1], path, "stolen")
        assert sqlstate(err.value) == "45005", f"put to {path} by {session[0]}"
    for session, path in ((b, "/nodes/a"), (a, "/config/x")):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_heartbeat", session[0], session[1], path, "stolen")
        assert sqlstate(err.value) == "45005", f"heartbeat to {path} by {session[0]}"
    assert snapshot(conn) == before
    rows, _ = call(conn, "dsreg_get", "/config/x")
    assert rows[0][2:5] == (0, None, 2)


def test_delete_rules(conn: pymysql.Connection) -> None:
    a = open_session(conn, "a")
    b = open_session(conn, "b")
    call(conn, "dsreg_put", a[0], a[1], "/e", "ephemeral")
    call(conn, "dsreg_put", None, None, "/p", "persistent")
    before = snapshot(conn)
    for who in (b, (None, None)):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_delete", who[0], who[1], "/e")
        assert sqlstate(err.value) == "45003"
    assert snapshot(conn) == before
    call(conn, "dsreg_delete", b[0], b[1], "/p")  # persistent: anyone
    call(conn, "dsreg_delete", a[0], a[1], "/e")
    call(conn, "dsreg_delete", None, None, "/missing")  # idempotent
    assert query(conn, "SELECT COUNT(*) FROM dsreg_node") == [(0,)]
    deletes = query(conn, "SELECT path, value, session_id FROM dsreg_event WHERE kind = 'DELETE' ORDER BY rev")
    assert deletes == [(b"/p", b"persistent", None), (b"/e", b"ephemeral", a[0])]


def test_children_is_exact_and_literal(conn: pymysql.Connection) -> None:
    for path in (
        "/nodes/worker/h1",
        "/nodes/worker/h2/deep",
        "/nodes/workers/x",
        "/nodes/worker_x/y",
        "/nodes/worker%/z",
        "/a%b/c",
        "/a_b/d",
        "/axb/e",
        "/nodes/worker/B",
    ):
        call(conn, "dsreg_put", None, None, path, "v")
    rows, _ = call(conn, "dsreg_children", "/nodes/worker")
    assert [r[0] for r in rows] == ["B", "h1", "h2"]
    rows, _ = call(conn, "dsreg_children", "/a%b")
    assert [r[0] for r in rows] == ["c"]
    rows, _ = call(conn, "dsreg_children", "/a_b")
    assert [r[0] for r in rows] == ["d"]
    rows, _ = call(conn, "dsreg_children", "/")
    assert [r[0] for r in rows] == ["a%b", "a_b", "axb", "nodes"]
    rows, _ = call(conn, "dsreg_children", "/nothing")
    assert rows == []


def test_close_removes_nodes_and_locks_at_once(conn: pymysql.Connection) -> None:
    sid, token = open_session(conn)
    other = open_session(conn)
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/w/1", "a")
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/w/2", "b")
    call(conn, "dsreg_heartbeat", other[0], other[1], "/nodes/w/3", "c")
    _, (fence,) = call(conn, "dsreg_lock_acquire", sid, token, "/locks/l", out=1)
    assert fence == 1
    call(conn, "dsreg_session_close", sid, token)
    assert query(conn, "SELECT path FROM dsreg_node") == [(b"/nodes/w/3",)]
    assert query(conn, "SELECT COUNT(*) FROM dsreg_lock") == [(0,)]
    deletes = query(conn, "SELECT rev, path, value, session_id FROM dsreg_event WHERE kind = 'DELETE' ORDER BY rev")
    assert deletes == [(4, b"/nodes/w/1", b"a", sid), (5, b"/nodes/w/2", b"b", sid)]
    assert query(conn, "SELECT value FROM dsreg_counter WHERE name = 'revision'") == [(5,)]


def test_reap_removes_only_expired_sessions(conn: pymysql.Connection) -> None:
    disable_reaper_event(conn)
    dead = open_session(conn, "dead")
    live = open_session(conn, "live")
    call(conn, "dsreg_heartbeat", dead[0], dead[1], "/n/dead", "x")
    call(conn, "dsreg_heartbeat", live[0], live[1], "/n/live", "x")
    expire(conn, dead[0])
    _, (reaped,) = call(conn, "dsreg_reap", out=1)
    assert reaped == 1
    _, (again,) = call(conn, "dsreg_reap", out=1)
    assert again == 0
    assert query(conn, "SELECT id FROM dsreg_session") == [(live[0],)]
    assert query(conn, "SELECT path FROM dsreg_node") == [(b"/n/live",)]
    assert query(conn, "SELECT runs >= 1, expired FROM dsreg_reaper") == [(1, 1)]


def test_reap_works_in_batches(conn: pymysql.Connection) -> None:
    disable_reaper_event(conn)
    query(conn, "UPDATE dsreg_setting SET value = 7 WHERE name = 'reap_batch'")
    ids = [open_session(conn, f"s{i}")[0] for i in range(30)]
    for sid in ids:
        expire(conn, sid)
    _, (reaped,) = call(conn, "dsreg_reap", out=1)
    assert reaped == 30
    assert query(conn, "SELECT COUNT(*) FROM dsreg_session") == [(0,)]


def test_stall_grace_extends_leases_after_a_reaper_gap(conn: pymysql.Connection) -> None:
    """A database outage must not expire everyone: the first reap after a long gap extends leases by the gap."""
    disable_reaper_event(conn)
    sid, _ = open_session(conn, ttl_ms=2000)
    # pretend the last reap was 60 s ago and the lease ran out 10 s ago, inside that gap
    query(conn, "UPDATE dsreg_reaper SET last_run_at = UTC_TIMESTAMP(6) - INTERVAL 60 SECOND")
    query(conn, "UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 10 SECOND WHERE id = %s", sid)
    _, (reaped,) = call(conn, "dsreg_reap", out=1)
    assert reaped == 0
    (remaining_s,) = query(
        conn, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), expires_at) FROM dsreg_session WHERE id = %s", sid
    )[0]
    assert 45 <= remaining_s <= 50  # -10 s + 60 s gap
    assert query(conn, "SELECT stalls, last_stall_ms >= 60000 FROM dsreg_reaper") == [(1, 1)]
    # a normal gap changes nothing: the lease then expires as usual
    expire(conn, sid)
    _, (reaped,) = call(conn, "dsreg_reap", out=1)
    assert reaped == 1


def test_reaper_event_expires_a_silent_session(conn: pymysql.Connection) -> None:
    import time

    sid, token = open_session(conn, ttl_ms=1000)
    call(conn, "dsreg_heartbeat", sid, token, "/nodes/silent", "x")
    deadline = time.monotonic() + 10
    while query(conn, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", sid) != [(0,)]:
        assert time.monotonic() < deadline, "the reaper event did not expire the session"
        time.sleep(0.1)
    assert query(conn, "SELECT COUNT(*) FROM dsreg_node") == [(0,)]
