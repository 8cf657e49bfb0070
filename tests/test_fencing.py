"""Fenced writes: dsreg_fence_check / dsreg_session_check inside the application's own transaction.

The application here is a plain PyMySQL connection writing its own table (``app_failover``)
in the same database, as a DolphinScheduler master writes ``t_ds_process_instance``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from dsreg_db.testing.fencing_demo import stale_rows as _stale
from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, expire, open_session, query, sqlstate

LOCK = "/locks/failover/master-3"

APP_TABLE = (
    "CREATE TABLE app_failover (seq BIGINT NOT NULL PRIMARY KEY, fence BIGINT NOT NULL, "
    "writer VARCHAR(16) NOT NULL) ENGINE = InnoDB"
)
APP_COUNTER = "CREATE TABLE app_counter (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE = InnoDB"


@pytest.fixture
def app(server: ServerInfo, dbname: str, admin: pymysql.Connection) -> Iterator[Callable[[], pymysql.Connection]]:
    """Application connections with a driver's default: autocommit off, the app's tables made."""
    query(admin, APP_TABLE)
    query(admin, APP_COUNTER)
    query(admin, "INSERT INTO app_counter VALUES (1, 0)")
    made: list[pymysql.Connection] = []

    def connect() -> pymysql.Connection:
        conn = server.connect(dbname, autocommit=False)
        made.append(conn)
        return conn

    yield connect
    for conn in made:
        conn.close()


def _write(
    conn: pymysql.Connection, fence: int, writer: str, guard: tuple[Any, ...] | None, work_s: float = 0.0
) -> int:
    """One application transaction: [guard], some work, then the next seq (commit order) with this fence."""
    query(conn, "START TRANSACTION")
    try:
        if guard is not None:
            call(conn, "dsreg_fence_check", *guard)
        time.sleep(work_s)  # the application computes between its check and its writes
        ((n,),) = query(conn, "SELECT n FROM app_counter WHERE id = 1 FOR UPDATE")
        query(conn, "UPDATE app_counter SET n = n + 1 WHERE id = 1")
        query(conn, "INSERT INTO app_failover VALUES (%s, %s, %s)", n + 1, fence, writer)
        query(conn, "COMMIT")
        return int(n + 1)
    except BaseException:
        conn.rollback()
        raise


def _fences_in_commit_order(admin: pymysql.Connection) -> list[int]:
    return [int(f) for (f,) in query(admin, "SELECT fence FROM app_failover ORDER BY seq")]


# -- what each guard checks --------------------------------------------------------------------


def test_guard_passes_for_the_holder_and_commits_nothing_itself(
    conn: pymysql.Connection, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    sid, token = open_session(conn, "master-1", 30000)
    _, (fence,) = call(conn, "dsreg_lock_acquire", sid, token, LOCK, out=1)
    a = app()
    query(a, "START TRANSACTION")
    query(a, "INSERT INTO app_failover VALUES (1, %s, 'a')", fence)
    call(a, "dsreg_fence_check", sid, token, LOCK, fence)
    call(a, "dsreg_session_check", sid, token)
    assert query(admin, "SELECT COUNT(*) FROM app_failover") == [(0,)]  # not committed by the guards
    a.rollback()
    assert query(admin, "SELECT COUNT(*) FROM app_failover") == [(0,)]  # the caller decides: rolled back
    assert _write(a, fence, "a", (sid, token, LOCK, fence)) == 1
    assert query(admin, "SELECT cert_seq FROM dsreg_lock") == [(1,)]  # the committed guard wrote the row


@pytest.mark.parametrize(
    "case",
    [
        "older fence",
        "newer fence",
        "other session's lock",
        "wrong token",
        "session closed",
        "lock released",
        "NULL fence",
        "bad name",
        "outside a transaction",
    ],
)
def test_guard_refuses_and_rolls_back_the_caller(
    conn: pymysql.Connection, admin: pymysql.Connection, app: Callable[[], pymysql.Connection], case: str
) -> None:
    """Tried: each way the caller may no longer (or never) hold the lock. The guard fails with its
    SQLSTATE and the caller's earlier write in the same transaction is rolled back."""
    sid, token = open_session(conn, "master-1", 30000)
    other, other_token = open_session(conn, "master-2", 30000)
    call(conn, "dsreg_lock_acquire", other, other_token, "/locks/other", out=1)
    _, (fence,) = call(conn, "dsreg_lock_acquire", sid, token, LOCK, out=1)
    args: tuple[Any, ...] = (sid, token, LOCK, fence)
    expected = "45003"
    if case == "older fence":
        args = (sid, token, LOCK, fence - 1)
    elif case == "newer fence":
        args = (sid, token, LOCK, fence + 1)
    elif case == "other session's lock":
        args = (sid, token, "/locks/other", fence)
    elif case == "wrong token":
        args = (sid, "not-the-token", LOCK, fence)
    elif case == "session closed":
        call(conn, "dsreg_session_close", sid, token)
        expected = "45001"
    elif case == "lock released":
        call(conn, "dsreg_lock_release", sid, token, LOCK)
    elif case == "NULL fence":
        args, expected = (sid, token, LOCK, None), "45002"
    elif case == "bad name":
        args, expected = (sid, token, "no-slash", fence), "45002"
    a = app()
    if case == "outside a transaction":
        a.autocommit(True)
        expected = "45002"
    else:
        query(a, "START TRANSACTION")
    query(a, "INSERT INTO app_failover VALUES (1, 1, 'a')")
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(a, "dsreg_fence_check", *args)
    assert sqlstate(err.value) == expected, (case, err.value)
    if case != "outside a transaction":
        query(a, "COMMIT")  # a caller that ignores the error still commits nothing of before the guard
        assert query(admin, "SELECT COUNT(*) FROM app_failover") == [(0,)], case
    assert query(admin, "SELECT COALESCE(SUM(cert_seq), 0) FROM dsreg_lock") == [(0,)]


def test_session_guard_refuses_a_gone_session_and_a_wrong_token(
    conn: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    sid, token = open_session(conn, "master-1", 30000)
    a = app()
    for args, expected in (((sid, "x"), "45003"), ((sid, None), "45002"), ((sid + 1000, token), "45001")):
        query(a, "START TRANSACTION")
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(a, "dsreg_session_check", *args)
        assert sqlstate(err.value) == expected, args
    call(conn, "dsreg_session_close", sid, token)
    query(a, "START TRANSACTION")
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(a, "dsreg_session_check", sid, token)
    assert sqlstate(err.value) == "45001"


# -- what the guard holds off until the caller ends ------------------------------------------------


def _blocked(server: ServerInfo, dbname: str, procedure: str, *args: Any) -> str:
    """Run ``procedure`` on a fresh connection with a 1 s lock wait; the error number it ends with."""
    with server.connect(dbname) as other:
        query(other, "SET SESSION innodb_lock_wait_timeout = 1")
        try:
            call(other, procedure, *args, out=1 if procedure == "dsreg_reap" else 0)
        except pymysql.err.MySQLError as exc:
            return str(exc.args[0])
        return "ok"


def test_release_close_and_takeover_wait_for_the_guarded_transaction(
    server: ServerInfo,
    dbname: str,
    conn: pymysql.Connection,
    admin: pymysql.Connection,
    app: Callable[[], pymysql.Connection],
) -> None:
    sid, token = open_session(conn, "master-1", 30000)
    rival, rival_token = open_session(conn, "master-2", 30000)
    _, (fence,) = call(conn, "dsreg_lock_acquire", sid, token, LOCK, out=1)
    a = app()
    query(a, "START TRANSACTION")
    call(a, "dsreg_fence_check", sid, token, LOCK, fence)
    assert _blocked(server, dbname, "dsreg_lock_release", sid, token, LOCK) == "1205"
    assert _blocked(server, dbname, "dsreg_session_close", sid, token) == "1205"
    query(a, "INSERT INTO app_failover VALUES (1, %s, 'a')", fence)
    query(a, "COMMIT")
    assert _blocked(server, dbname, "dsreg_lock_release", sid, token, LOCK) == "ok"
    _, (new_fence,) = call(conn, "dsreg_lock_acquire", rival, rival_token, LOCK, out=1)
    assert new_fence > fence
    assert query(admin, "SELECT fence FROM app_failover") == [(fence,)]


def test_the_reaper_skips_a_guarded_session_and_reaps_the_others(
    conn: pymysql.Connection, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    """A long application transaction does not stall the reaper: it passes the guarded session by
    (SKIP LOCKED) and reaps every other expired session; the guarded one goes after the commit."""
    disable_reaper_event(admin)
    guarded, token = open_session(conn, "guarded", 30000)
    _, (fence,) = call(conn, "dsreg_lock_acquire", guarded, token, LOCK, out=1)
    others = [open_session(conn, f"dead-{i}", 30000)[0] for i in range(50)]
    session_guarded, session_token = open_session(conn, "session-guarded", 30000)
    call(admin, "dsreg_reap", out=1)  # a recent run: the reap below is not a stall recovery (see README)
    for sid in (guarded, session_guarded, *others):
        expire(admin, sid)
    # the guards read no clock: an expired session that is not reaped yet is alive (death is the reap)
    a, b = app(), app()
    query(a, "START TRANSACTION")
    call(a, "dsreg_fence_check", guarded, token, LOCK, fence)
    query(b, "START TRANSACTION")
    call(b, "dsreg_session_check", session_guarded, session_token)
    started = time.monotonic()
    _, (reaped,) = call(admin, "dsreg_reap", out=1)
    took = time.monotonic() - started
    print(f"\nreap of 50 expired sessions beside 2 guarded ones: {took * 1000:.0f} ms")
    assert reaped == 50
    assert sorted(r[0] for r in query(admin, "SELECT id FROM dsreg_session")) == sorted([guarded, session_guarded])
    query(a, "COMMIT")
    query(b, "COMMIT")
    _, (reaped,) = call(admin, "dsreg_reap", out=1)
    assert reaped == 2
    assert query(admin, "SELECT COUNT(*) FROM dsreg_lock") == [(0,)]


# -- the paused holder: what no external coordinator can stop ----------------------------------------


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "control-unguarded"])
def test_a_holder_paused_past_its_lease_cannot_write(
    conn: pymysql.Connection, admin: pymysql.Connection, app: Callable[[], pymysql.Connection], guarded: bool
) -> None:
    """Master 1 holds the failover lock, pauses past its ttl (no beats), is reaped; master 2 takes
    the lock over and writes; master 1 wakes and writes as if it still held the lock. With the
    guard that write fails and is not in the table; without it (the control) it lands."""
    disable_reaper_event(admin)
    m1, t1 = open_session(conn, "master-1", 1000)
    _, (f1,) = call(conn, "dsreg_lock_acquire", m1, t1, LOCK, out=1)
    a1, a2 = app(), app()
    _write(a1, f1, "master-1", (m1, t1, LOCK, f1) if guarded else None)
    time.sleep(1.3)  # paused: no beat for longer than the ttl
    _, (reaped,) = call(admin, "dsreg_reap", out=1)
    assert reaped == 1
    m2, t2 = open_session(conn, "master-2", 30000)
    _, (f2,) = call(conn, "dsreg_lock_acquire", m2, t2, LOCK, out=1)
    assert f2 > f1
    _write(a2, f2, "master-2", (m2, t2, LOCK, f2) if guarded else None)
    if guarded:
        with pytest.raises(pymysql.err.MySQLError) as err:
            _write(a1, f1, "master-1", (m1, t1, LOCK, f1))
        assert sqlstate(err.value) == "45001"
    else:
        _write(a1, f1, "master-1", None)
    fences = _fences_in_commit_order(admin)
    assert _stale(fences) == (0 if guarded else 1), fences


# -- guard racing release, close and reap ------------------------------------------------------------


def _race(
    server: ServerInfo, dbname: str, seconds: float, guarded: bool, seed: int, until_stale: bool = False
) -> tuple[dict[str, int], list[int]]:
    """Two masters take the lock and write with their fence, believing they hold it until they
    release it; a racer meanwhile releases, closes or reaps the holder behind its back. With
    until_stale, it stops at the first stale write (checked every 0.25 s), ``seconds`` at most."""
    rnd = random.Random(seed)
    stop = threading.Event()
    counts = {"writes": 0, "refused": 0, "deposed": 0, "deadlocks": 0, "acquired": 0}
    lock = threading.Lock()
    holders: dict[str, tuple[int, str]] = {}
    errors: list[tuple[str, BaseException]] = []  # (which thread and step, what it raised)

    def master(name: str) -> None:
        step = "open"
        try:
            with server.connect(dbname) as api, server.connect(dbname, autocommit=False) as data:
                sid, token = open_session(api, name, 30000)
                while not stop.is_set():
                    with lock:
                        holders[name] = (sid, token)
                    step = "dsreg_lock_acquire"
                    try:
                        _, (fence,) = call(api, "dsreg_lock_acquire", sid, token, LOCK, out=1)
                    except pymysql.err.MySQLError as exc:
                        if sqlstate(exc) != "45001":
                            raise
                        sid, token = open_session(api, name, 30000)  # closed or reaped: a new session
                        continue
                    if fence is None:
                        time.sleep(0.0005)
                        continue
                    with lock:
                        counts["acquired"] += 1
                    for _ in range(rnd.randint(1, 4)):  # it believes it holds the lock meanwhile
                        try:
                            guard = (sid, token, LOCK, fence) if guarded else None
                            _write(data, fence, name, guard, rnd.choice((0.0, 0.0, 0.001, 0.003)))
                            with lock:
                                counts["writes"] += 1
                        except pymysql.err.MySQLError as exc:
                            key = "deadlocks" if exc.args[0] == 1213 else "refused"
                            if key == "refused" and sqlstate(exc) not in ("45001", "45003"):
                                raise
                            with lock:
                                counts[key] += 1
                    step = "dsreg_lock_release"
                    try:
                        call(api, "dsreg_lock_release", sid, token, LOCK)
                    except pymysql.err.MySQLError as exc:
                        if sqlstate(exc) not in ("45001", "45003"):
                            raise
                    step = "write"
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append((f"{name} {step}", exc))

    def racer() -> None:
        action = "start"
        try:
            with server.connect(dbname) as api:
                while not stop.is_set():
                    time.sleep(rnd.uniform(0.0005, 0.004))
                    with lock:
                        if not holders:
                            continue
                        sid, token = holders[rnd.choice(sorted(holders))]
                    action = rnd.choice(("release", "release", "close", "reap"))
                    try:
                        if action == "release":
                            call(api, "dsreg_lock_release", sid, token, LOCK)
                        elif action == "close":
                            call(api, "dsreg_session_close", sid, token)
                        else:
                            expire(api, sid)
                            call(api, "dsreg_reap", out=1)
                        with lock:
                            counts["deposed"] += 1
                    except pymysql.err.MySQLError as exc:
                        if sqlstate(exc) not in ("45001", "45003"):
                            raise
        except BaseException as exc:
            errors.append((f"racer {action}", exc))

    threads = [threading.Thread(target=master, args=(f"master-{i}",)) for i in (1, 2)]
    threads.append(threading.Thread(target=racer))
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    with server.connect(dbname) as watcher:
        while time.monotonic() < deadline and not errors:
            time.sleep(0.25)
            if until_stale and _stale(_fences_in_commit_order(watcher)) > 0:
                break
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    assert errors == [], errors
    with server.connect(dbname) as admin:
        return counts, _fences_in_commit_order(admin)


def test_guard_racing_release_close_and_reap(
    server: ServerInfo, dbname: str, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    disable_reaper_event(admin)
    counts, fences = _race(server, dbname, 8.0, guarded=True, seed=7)
    print(f"\nguarded race: {counts}, stale writes {_stale(fences)}")
    # the race really ran (measured: 790-1270 writes in 8 s, fewer with the other core busy)
    assert counts["writes"] > 300 and counts["deposed"] > 100 and counts["refused"] > 50, counts
    assert _stale(fences) == 0
    assert counts["deadlocks"] == 0
    assert len(fences) == counts["writes"]


def test_the_same_race_without_the_guard_writes_stale_data(
    server: ServerInfo, dbname: str, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    """The control: the race above can catch a stale write (without the guard it does: measured in
    4 s runs, not every time, so this one runs until the first stale write, 20 s at most)."""
    disable_reaper_event(admin)
    counts, fences = _race(server, dbname, 20.0, guarded=False, seed=7, until_stale=True)
    print(f"\nunguarded race: {counts}, stale writes {_stale(fences)}")
    assert _stale(fences) > 0


# -- the Python wrapper --------------------------------------------------------------------------------


def test_session_fenced_wraps_the_applications_sqlalchemy_transaction(
    db_url: str, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    from sqlalchemy import create_engine, text

    from dsreg_db import NotOwner, Registry, SessionExpired

    engine = create_engine(db_url)
    insert = text("INSERT INTO app_failover VALUES (:seq, :fence, 'py')")
    try:
        with Registry(db_url) as registry:
            session = registry.session("master-1", ttl=30.0)
            with session.lock(LOCK) as fence:
                with session.fenced(engine, LOCK, fence) as tx:
                    tx.execute(insert, {"seq": 1, "fence": fence})
                assert query(admin, "SELECT seq FROM app_failover") == [(1,)]  # committed at the block's end
                with engine.connect() as conn, conn.begin():  # the application's own transaction, joined
                    conn.execute(insert, {"seq": 2, "fence": fence})
                    with session.fenced(conn, LOCK, fence):
                        pass
                # the lock moves on behind the holder's back: its next fenced block writes nothing
                session_id, token = session.credentials()
                registry.client.lock_release(session_id, token, LOCK)
                with pytest.raises(NotOwner), session.fenced(engine, LOCK, fence) as tx:
                    tx.execute(insert, {"seq": 3, "fence": fence})
                assert sorted(r[0] for r in query(admin, "SELECT seq FROM app_failover")) == [1, 2]
                with session.guarded(engine) as tx:
                    tx.execute(insert, {"seq": 4, "fence": 0})
                session.acquire_lock(LOCK)
            session.close()
            with pytest.raises(SessionExpired), session.guarded(engine) as tx:
                tx.execute(insert, {"seq": 5, "fence": 0})
        assert sorted(r[0] for r in query(admin, "SELECT seq FROM app_failover")) == [1, 2, 4]
    finally:
        engine.dispose()


def test_demo_fencing_shows_the_paused_master_refused_and_the_control_stale() -> None:
    """`dsreg demo-fencing` on its own throwaway server: real processes, a real SIGSTOP past the ttl."""
    from dsreg_db.testing import fencing_demo

    lines: list[str] = []
    guarded, control = fencing_demo.run(None, lines.append, ttl=2.0)
    print("\n" + "\n".join(lines))
    assert guarded.stale == 0 and "write refused, rolled back" in guarded.woken_output, lines
    assert {w for _, w, _ in guarded.rows} == {"failover-master-1", "failover-master-2"}
    assert control.stale >= 1, lines  # the same pause without the guard: a stale write lands


def test_a_holder_paused_inside_its_guarded_transaction_is_cut_off_by_idle_transaction_timeout(
    conn: pymysql.Connection, admin: pymysql.Connection, app: Callable[[], pymysql.Connection]
) -> None:
    """The guard holds the session until the caller ends: a holder that freezes *inside* a guarded
    transaction holds off the reap until it resumes. MariaDB's idle_transaction_timeout bounds that
    (README, "Fenced writes"); MySQL has no such variable (there: wait_timeout)."""
    disable_reaper_event(admin)
    sid, token = open_session(conn, "master-1", 1000)
    _, (fence,) = call(conn, "dsreg_lock_acquire", sid, token, LOCK, out=1)
    a = app()
    ((version,),) = query(admin, "SELECT VERSION()")
    if "MariaDB" not in version:
        with pytest.raises(pymysql.err.MySQLError) as err:
            query(a, "SET SESSION idle_transaction_timeout = 2")
        assert err.value.args[0] == 1193  # unknown system variable: the README says so
        return
    query(a, "SET SESSION idle_transaction_timeout = 2")
    query(a, "START TRANSACTION")
    call(a, "dsreg_fence_check", sid, token, LOCK, fence)
    query(a, "INSERT INTO app_failover VALUES (1, %s, 'frozen')", fence)
    call(admin, "dsreg_reap", out=1)  # a recent run (no stall recovery below)
    time.sleep(1.2)  # the lease (1 s) runs out while the holder is frozen inside its transaction
    _, (reaped,) = call(admin, "dsreg_reap", out=1)
    assert reaped == 0  # skipped: the guard still holds the session
    time.sleep(1.5)  # past idle_transaction_timeout: the server ends the frozen connection
    _, (reaped,) = call(admin, "dsreg_reap", out=1)
    assert reaped == 1
    assert query(admin, "SELECT COUNT(*) FROM app_failover") == [(0,)]  # its write was rolled back
    with pytest.raises(pymysql.err.MySQLError):
        query(a, "COMMIT")  # the connection is gone
