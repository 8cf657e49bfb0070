"""Fair locks: waiters served in arrival order from a server-side queue (Curator's InterProcessMutex)."""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from dsreg_db import LimitExceeded, Registry, SessionState
from tests.sqlcall import call, disable_reaper_event, expire, open_session, query, sqlstate

NAME = "/locks/fair"


def fair(conn: pymysql.Connection, session: tuple[int, str], name: str = NAME) -> tuple[int | None, int]:
    _, (fence, ahead) = call(conn, "dsreg_lock_acquire_fair", session[0], session[1], name, out=2)
    return fence, ahead


def contenders(conn: pymysql.Connection, name: str = NAME) -> list[tuple[int, str, bool]]:
    rows, _ = call(conn, "dsreg_lock_contenders", name)
    return [(sid, owner, fence is not None) for sid, owner, fence, _ticket, _since in rows]


def test_fair_lock_sql_semantics(conn: pymysql.Connection) -> None:
    a, b, c, d, e = (open_session(conn, owner) for owner in "abcde")
    _, (f1,) = call(conn, "dsreg_lock_acquire", a[0], a[1], NAME, out=1)
    assert f1 is not None
    # b, c, d queue behind the holder, in that order; asking again keeps the place
    assert [fair(conn, s) for s in (b, c, d)] == [(None, 1), (None, 2), (None, 3)]
    assert fair(conn, c) == (None, 2)
    assert contenders(conn) == [(a[0], "a", True), (b[0], "b", False), (c[0], "c", False), (d[0], "d", False)]
    call(conn, "dsreg_lock_release", a[0], a[1], NAME)
    # free, but queued for: a caller that did not queue does not get it, nor does the second in line
    _, (barged,) = call(conn, "dsreg_lock_acquire", e[0], e[1], NAME, out=1)
    assert barged is None
    assert fair(conn, c) == (None, 1)
    f2, ahead = fair(conn, b)
    assert f2 is not None and f2 > f1 and ahead == 0
    assert fair(conn, b) == (f2, 0)  # re-acquiring returns the fence
    # d gives up; c's session ends: their tickets go, and nobody waits
    call(conn, "dsreg_lock_dequeue", d[0], d[1], NAME)
    call(conn, "dsreg_lock_dequeue", d[0], d[1], NAME)  # quiet when not queued
    call(conn, "dsreg_session_close", c[0], c[1])
    assert contenders(conn) == [(b[0], "b", True)]
    call(conn, "dsreg_lock_release", b[0], b[1], NAME)
    _, (f3,) = call(conn, "dsreg_lock_acquire", e[0], e[1], NAME, out=1)  # no queue: plain acquire works again
    assert f3 is not None and f3 > f2
    assert query(conn, "SELECT COUNT(*) FROM dsreg_lock_waiter") == [(0,)]


def test_fair_lock_bad_input_changes_nothing(conn: pymysql.Connection) -> None:
    a = open_session(conn, "a")
    before = query(conn, "SELECT value FROM dsreg_counter WHERE name = 'fence'")
    tried = {
        "wrong token": ((a[0], "f" * 32, NAME), "45003"),
        "unknown session": ((a[0] + 1000, a[1], NAME), "45001"),
        "relative name": ((a[0], a[1], "locks/x"), "45002"),
        "NULL name": ((a[0], a[1], None), "45002"),
        "NULL session": ((None, a[1], NAME), "45002"),
    }
    for what, (args, state) in tried.items():
        for procedure, out in (("dsreg_lock_acquire_fair", 2), ("dsreg_lock_dequeue", 0)):
            with pytest.raises(pymysql.err.MySQLError) as err:
                call(conn, procedure, *args, out=out)
            assert sqlstate(err.value) == state, (procedure, what)
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, "dsreg_lock_contenders", "no/slash")
    assert sqlstate(err.value) == "45002"
    assert query(conn, "SELECT value FROM dsreg_counter WHERE name = 'fence'") == before
    assert query(conn, "SELECT COUNT(*) FROM dsreg_lock_waiter") == [(0,)]


def test_queued_locks_count_against_the_session_limit(conn: pymysql.Connection) -> None:
    a, b = open_session(conn, "a"), open_session(conn, "b")
    query(conn, "UPDATE dsreg_setting SET value = 2 WHERE name = 'max_locks_per_session'")
    call(conn, "dsreg_lock_acquire", a[0], a[1], "/locks/one", out=1)
    call(conn, "dsreg_lock_acquire", a[0], a[1], "/locks/two", out=1)
    assert fair(conn, b, "/locks/one") == (None, 1)
    assert fair(conn, b, "/locks/two") == (None, 1)
    # tried: b waits for two locks already; a third place in a queue is refused and writes nothing
    with pytest.raises(pymysql.err.MySQLError) as err:
        fair(conn, b, "/locks/three")
    assert sqlstate(err.value) == "45006"
    assert query(conn, "SELECT COUNT(*) FROM dsreg_lock_waiter WHERE session_id = %s", b[0]) == [(2,)]


def test_a_reaped_waiter_leaves_the_queue(conn: pymysql.Connection) -> None:
    disable_reaper_event(conn)
    a, b, c = (open_session(conn, owner) for owner in "abc")
    call(conn, "dsreg_lock_acquire", a[0], a[1], NAME, out=1)
    assert fair(conn, b) == (None, 1)
    assert fair(conn, c) == (None, 2)
    expire(conn, b[0])
    call(conn, "dsreg_reap", out=1)
    assert contenders(conn) == [(a[0], "a", True), (c[0], "c", False)]
    call(conn, "dsreg_lock_release", a[0], a[1], NAME)
    fence, _ = fair(conn, c)
    assert fence is not None


def test_waiters_get_a_fair_lock_in_arrival_order(db_url: str) -> None:
    """Six clients (a Registry each, as separate processes would) queue one after another behind a holder;
    each records when it got the lock. Unfair polling with backoff serves them in no particular order."""
    n = 6
    order: list[int] = []
    fences: list[int] = []
    errors: list[BaseException] = []
    with Registry(db_url) as holder_registry:
        holder = holder_registry.session("holder", ttl=30)
        first = holder.lock(NAME, fair=True)
        assert first.acquire() is not None
        registries = [Registry(db_url) for _ in range(n)]
        try:
            sessions = [r.session(f"w{i}", ttl=30) for i, r in enumerate(registries)]

            def wait(i: int) -> None:
                try:
                    with sessions[i].lock(NAME, timeout=60, fair=True) as fence:
                        order.append(i)
                        fences.append(fence)
                        time.sleep(0.05)  # hold it a little: the others poll meanwhile
                except BaseException as exc:
                    errors.append(exc)

            threads = []
            for i in range(n):
                t = threading.Thread(target=wait, args=(i,), daemon=True)
                t.start()
                threads.append(t)
                deadline = time.monotonic() + 10
                while len(first.contenders()) < i + 2:  # the holder and i + 1 waiters: w{i} is queued
                    assert time.monotonic() < deadline, f"w{i} never queued"
                    time.sleep(0.01)
            assert [c.owner for c in first.contenders()] == ["holder"] + [f"w{i}" for i in range(n)]
            first.release()
            for t in threads:
                t.join(60)
                assert not t.is_alive(), "a waiter never got the lock"
        finally:
            for r in registries:
                r.close()
    assert not errors, errors
    assert order == list(range(n))
    assert fences == sorted(fences) and len(set(fences)) == n


def test_a_fair_wait_that_times_out_leaves_the_queue(db_url: str) -> None:
    with Registry(db_url) as registry:
        a = registry.session("a", ttl=30)
        b = registry.session("b", ttl=30)
        assert a.acquire_lock(NAME) is not None
        started = time.monotonic()
        assert b.acquire_lock(NAME, timeout=0.5, fair=True) is None
        assert 0.5 <= time.monotonic() - started < 2.0
        assert [c.owner for c in a.contenders(NAME)] == ["a"]
        a.release_lock(NAME)
        assert b.acquire_lock(NAME, timeout=0, fair=False) is not None  # no stale ticket holds it back


def test_a_fair_wait_past_the_session_limit_raises(db_url: str, conn: pymysql.Connection) -> None:
    query(conn, "UPDATE dsreg_setting SET value = 1 WHERE name = 'max_locks_per_session'")
    with Registry(db_url) as registry:
        a = registry.session("a", ttl=30)
        states: list[SessionState] = []
        a.add_listener(states.append)
        assert a.acquire_lock("/locks/one") is not None
        with pytest.raises(LimitExceeded):
            a.acquire_lock(NAME, timeout=1, fair=True)
        assert query(conn, "SELECT COUNT(*) FROM dsreg_lock_waiter") == [(0,)]
        assert SessionState.LOST not in states
