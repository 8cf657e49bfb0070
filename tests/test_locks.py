"""Locks with fencing tokens: SQL semantics, contention, death with the session, the wrapper and CLI."""

from __future__ import annotations

import gc
import itertools
import threading
import time

import pymysql
import pytest
from click.testing import CliRunner

from dsreg_db import LockTimeout, NotOwner, Registry, SessionExpired, SessionState
from dsreg_db.cli import main
from tests.sqlcall import call, open_session, query, sqlstate


def test_lock_sql_semantics(conn: pymysql.Connection) -> None:
    a = open_session(conn, "a")
    b = open_session(conn, "b")
    _, (f1,) = call(conn, "dsreg_lock_acquire", a[0], a[1], "/locks/x", out=1)
    _, (again,) = call(conn, "dsreg_lock_acquire", a[0], a[1], "/locks/x", out=1)
    _, (other,) = call(conn, "dsreg_lock_acquire", b[0], b[1], "/locks/x", out=1)
    assert again == f1 and other is None
    # tried: release by the non-holder, release of a lock nobody holds, wrong token
    for session, name in ((b, "/locks/x"), (a, "/locks/never")):
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(conn, "dsreg_lock_release", session[0], session[1], name)
        assert sqlstate(err.value) == "45003"
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, "dsreg_lock_acquire", a[0], "f" * 32, "/locks/y", out=1)
    assert sqlstate(err.value) == "45003"
    assert query(conn, "SELECT name, session_id FROM dsreg_lock") == [(b"/locks/x", a[0])]
    call(conn, "dsreg_lock_release", a[0], a[1], "/locks/x")
    _, (f2,) = call(conn, "dsreg_lock_acquire", b[0], b[1], "/locks/x", out=1)
    _, (f3,) = call(conn, "dsreg_lock_acquire", a[0], a[1], "/locks/z", out=1)
    assert f1 < f2 < f3


def test_twenty_threads_never_share_the_lock(db_url: str) -> None:
    """20 threads x 200 acquire/release cycles on one name: one holder at a time, fences increasing."""
    threads_n, cycles = 20, 200
    holders = 0
    guard = threading.Lock()
    fences: list[int] = []
    violations: list[str] = []
    errors: list[BaseException] = []

    with Registry(db_url) as registry:
        sessions = [registry.session(f"t{i}", ttl=30) for i in range(threads_n)]

        def worker(i: int) -> None:
            nonlocal holders
            try:
                for _ in range(cycles):
                    with sessions[i].lock("/locks/shared") as fence:
                        with guard:
                            holders += 1
                            if holders != 1:
                                violations.append(f"{holders} holders at fence {fence}")
                            fences.append(fence)
                        with guard:
                            holders -= 1
            except BaseException as exc:
                errors.append(exc)

        started = time.monotonic()
        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.monotonic() - started
    assert errors == [] and violations == []
    assert len(fences) == threads_n * cycles
    assert all(a < b for a, b in itertools.pairwise(fences)), "fences not increasing in acquisition order"
    print(f"{len(fences)} lock cycles in {elapsed:.1f} s")


def test_reaped_holder_loses_the_lock(db_url: str) -> None:
    with Registry(db_url) as registry:
        holder = registry.session("holder", ttl=1.0)
        states: list[SessionState] = []
        holder.add_listener(states.append)
        old_id, old_token = holder.credentials()
        fence = holder.acquire_lock("/locks/leader")
        assert fence is not None
        waiter = registry.session("waiter", ttl=10)
        assert waiter.acquire_lock("/locks/leader", timeout=0.2) is None
        with holder._lock:  # the holder stalls past its ttl; the reaper takes its session and lock
            next_fence = waiter.acquire_lock("/locks/leader", timeout=10)
        assert next_fence is not None and next_fence > fence
        # the old session id is dead for every call (design: 45001 after the reap)
        with pytest.raises(SessionExpired):
            registry.client.lock_release(old_id, old_token, "/locks/leader")
        deadline = time.monotonic() + 10
        while SessionState.RECONNECTED not in states:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # the old holder, now on a new session, does not hold it: its release is refused
        with pytest.raises(NotOwner):
            holder.release_lock("/locks/leader")
        waiter.release_lock("/locks/leader")


def test_lost_callbacks_belong_to_their_lock_and_can_be_cancelled(db_url: str) -> None:
    """Tried: 100 throwaway locks each with a callback, then one kept lock with two, one cancelled."""
    told: list[str] = []
    with Registry(db_url) as registry:
        holder = registry.session("holder", ttl=1.0)
        for i in range(100):
            holder.lock("/locks/leader").on_lost(lambda _lock, i=i: told.append(f"dropped {i}"))
        gc.collect()
        kept = holder.lock("/locks/leader")
        kept.on_lost(lambda _lock: told.append("kept"))
        cancel = kept.on_lost(lambda _lock: told.append("cancelled"))
        cancel()
        assert kept.acquire() is not None
        lost = threading.Event()
        holder.add_listener(lambda state: state is SessionState.LOST and lost.set())
        with holder._lock:  # the holder stalls past its ttl: reaped, LOST
            assert lost.wait(10)
        deadline = time.monotonic() + 5
        while not told:
            assert time.monotonic() < deadline, "the kept lock's callback never ran"
            time.sleep(0.05)
        time.sleep(0.2)  # anything else queued on the callback thread runs by now
        assert told == ["kept"]
        kept.release()


def test_lock_timeout_waits_with_backoff_not_a_busy_loop(db_url: str, conn: pymysql.Connection) -> None:
    with Registry(db_url) as registry:
        a = registry.session("a", ttl=10)
        b = registry.session("b", ttl=10)
        a.acquire_lock("/locks/busy")

        def calls() -> int:  # counts nested CALLs too, hence the per-attempt calibration below
            return int(query(conn, "SHOW GLOBAL STATUS LIKE 'Com_call_procedure'")[0][1])

        before = calls()
        assert b.acquire_lock("/locks/busy", timeout=0) is None
        per_attempt = calls() - before
        before = calls()
        started = time.monotonic()
        with pytest.raises(LockTimeout), b.lock("/locks/busy", timeout=1.0):
            pass
        elapsed = time.monotonic() - started
        attempts = (calls() - before) / per_attempt
    assert 1.0 <= elapsed < 2.0
    # backoff 5 ms .. 200 ms: about 15 tries in a second; a busy loop would make hundreds.
    # (the count includes the reaper events and keepalives of this run: a few more)
    assert 5 <= attempts <= 30, attempts


def test_cli_lock_runs_the_command_under_the_lock(db_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["lock", "--url", db_url, "/locks/job", "--", "sh", "-c", 'test -n "$DSREG_FENCE"; exit 3'],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert result.output.startswith("fence ")
    with Registry(db_url) as registry, registry.session("after", ttl=5) as s:
        assert s.acquire_lock("/locks/job", timeout=0) is not None  # released after the command
