"""Heartbeat against reap, both orders, made deterministic with held row locks.

A third connection holds the 'revision' counter row lock, which both a
value-changing heartbeat and a reaping reaper need after they have locked the
session row. So whichever of the two locks the session row first is frozen
there while the other one runs, and we can assert what it saw.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import (
    Background,
    call,
    disable_reaper_event,
    expire,
    hold_counter,
    open_session,
    query,
    sqlstate,
    wait_for_lock_wait,
)


@pytest.fixture
def three(server: ServerInfo, dbname: str) -> Any:
    conns = [server.connect(dbname) for _ in range(3)]
    yield conns
    for c in conns:
        c.close()


def test_heartbeat_first_extends_and_reaper_skips(three: list[pymysql.Connection]) -> None:
    holder, beat_conn, reap_conn = three
    disable_reaper_event(holder)
    sid, token = open_session(holder, ttl_ms=3000)
    call(holder, "dsreg_heartbeat", sid, token, "/nodes/worker/w1", "load=1")
    expire(holder, sid)  # the lease is over, but no reaper ran: the session is still alive

    hold_counter(holder, "revision")
    beat = Background(beat_conn, lambda c: call(c, "dsreg_heartbeat", sid, token, "/nodes/worker/w1", "load=2"))
    wait_for_lock_wait(reap_conn, beat.thread_id)  # heartbeat holds the session row, waits for the counter
    _, (reaped,) = call(reap_conn, "dsreg_reap", out=1)  # SKIP LOCKED: the session being beaten is skipped
    assert reaped == 0
    query(holder, "COMMIT")
    beat.join()
    assert beat.error is None

    assert query(holder, "SELECT expires_at > UTC_TIMESTAMP(6) FROM dsreg_session WHERE id = %s", sid) == [(1,)]
    _, (reaped,) = call(reap_conn, "dsreg_reap", out=1)
    assert reaped == 0
    rows, _ = call(holder, "dsreg_get", "/nodes/worker/w1")
    assert rows[0][1] == "load=2" and rows[0][3] == sid


def _reaper_first(three: list[pymysql.Connection], name: str, *args: Any) -> tuple[int, str, Background, Background]:
    """The reaper locks an expired session's row and waits for the counter; then `name`(sid, token,
    *args) starts and waits for that row; then the reaper commits. (sid, token, the reaper, the call)."""
    holder, beat_conn, reap_conn = three
    disable_reaper_event(holder)
    sid, token = open_session(holder, ttl_ms=3000)
    call(holder, "dsreg_heartbeat", sid, token, "/nodes/worker/w1", "load=1")
    expire(holder, sid)

    hold_counter(holder, "revision")
    reap = Background(reap_conn, lambda c: call(c, "dsreg_reap", out=1))
    wait_for_lock_wait(holder, reap.thread_id)  # reaper holds the session row, waits for the counter
    beat = Background(beat_conn, lambda c: call(c, name, sid, token, *args))
    wait_for_lock_wait(holder, beat.thread_id)  # the call read the session as live and waits for its row
    query(holder, "COMMIT")
    reap.join()
    beat.join()
    assert reap.error is None and reap.result[1] == (1,)
    return sid, token, reap, beat


def test_reaper_first_reaps_and_heartbeat_fails_45001(three: list[pymysql.Connection]) -> None:
    holder, beat_conn, _ = three
    sid, token, _, beat = _reaper_first(three, "dsreg_heartbeat", "/nodes/worker/w1", "load=2")
    assert beat.error is not None and sqlstate(beat.error) == "45001", beat.error
    # dead is dead: no session, no node, one DELETE event with the last value
    assert query(holder, "SELECT COUNT(*) FROM dsreg_session") == [(0,)]
    assert query(holder, "SELECT COUNT(*) FROM dsreg_node") == [(0,)]
    assert query(holder, "SELECT kind, value FROM dsreg_event ORDER BY rev DESC LIMIT 1") == [("DELETE", b"load=1")]
    # never a silent no-op afterwards either
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(beat_conn, "dsreg_session_keepalive", sid, token)
    assert sqlstate(err.value) == "45001"


def test_a_node_deleted_between_a_beats_read_and_its_lock_is_recreated(three: list[pymysql.Connection]) -> None:
    """Tried: a value-changing beat reads that the session holds its node, then waits for the
    session row, which another transaction holds while it deletes the node behind the API's back
    (as DolphinScheduler 3.1's cleanup did to live peers) and commits. The beat must notice under
    the lock that the node is gone and create it again (an ADD event), not update nothing and
    return success with the node missing until the next beat."""
    holder, beat_conn, _ = three
    disable_reaper_event(holder)
    sid, token = open_session(holder, "w1", 60_000)
    call(holder, "dsreg_heartbeat", sid, token, "/nodes/worker/w1", "load=1")
    query(holder, "START TRANSACTION")
    query(holder, "SELECT id FROM dsreg_session WHERE id = %s FOR UPDATE", sid)
    beat = Background(beat_conn, lambda c: call(c, "dsreg_heartbeat", sid, token, "/nodes/worker/w1", "load=2"))
    wait_for_lock_wait(holder, beat.thread_id)
    query(holder, "DELETE FROM dsreg_node WHERE path = '/nodes/worker/w1'")
    query(holder, "COMMIT")
    beat.join()
    assert beat.error is None, beat.error
    assert query(holder, "SELECT value, session_id, version FROM dsreg_node") == [(b"load=2", sid, 1)]
    assert query(holder, "SELECT kind, value FROM dsreg_event ORDER BY rev DESC LIMIT 1") == [("ADD", b"load=2")]


def test_reaper_first_reaps_and_keepalive_fails_45001(three: list[pymysql.Connection]) -> None:
    """The keepalive reads the session without a lock, then locks it (revision 0012 does both itself).
    Here the reaper holds the row when the keepalive reads it: the read still sees a live session, and
    only the check under the lock, after the reaper committed, may answer. 45001, never a silent no-op."""
    _, _, _, keepalive = _reaper_first(three, "dsreg_session_keepalive")
    assert keepalive.error is not None and sqlstate(keepalive.error) == "45001", keepalive.error
    assert query(three[0], "SELECT COUNT(*) FROM dsreg_session") == [(0,)]


def test_unchanged_heartbeat_against_reaper_both_orders(three: list[pymysql.Connection]) -> None:
    """An unchanged heartbeat whose lease is due takes no counter lock, but the session row lock too."""
    holder, beat_conn, reap_conn = three
    disable_reaper_event(holder)
    sid, token = open_session(holder, ttl_ms=3000)
    call(holder, "dsreg_heartbeat", sid, token, "/n/w", "same")
    expire(holder, sid)
    # the heartbeat's session lock is taken first: hold it by hand in a transaction, as the heartbeat would
    query(beat_conn, "START TRANSACTION")
    query(beat_conn, "SELECT id FROM dsreg_session WHERE id = %s FOR UPDATE", sid)
    _, (reaped,) = call(reap_conn, "dsreg_reap", out=1)
    assert reaped == 0  # skipped, not waited for
    query(beat_conn, "ROLLBACK")
    call(beat_conn, "dsreg_heartbeat", sid, token, "/n/w", "same")
    _, (reaped,) = call(reap_conn, "dsreg_reap", out=1)
    assert reaped == 0
    assert query(holder, "SELECT COUNT(*) FROM dsreg_node WHERE session_id = %s", sid) == [(1,)]


def test_a_long_reap_is_not_taken_for_a_database_stall(three: list[pymysql.Connection]) -> None:
    """A reap call held up for longer than stall_after_ms (here: its first batch waits 1.5 s for the
    revision lock) goes on reaping. With one reaper stamp per call, its second batch saw a 'stall',
    extended the leases still to reap by the gap, and the call returned 1 of 3."""
    holder, reap_conn, _ = three
    disable_reaper_event(holder)
    query(holder, "UPDATE dsreg_setting SET value = 1 WHERE name = 'reap_batch'")
    query(holder, "UPDATE dsreg_setting SET value = 1000 WHERE name = 'stall_after_ms'")
    sessions = [open_session(holder, f"long{i}") for i in range(3)]
    for sid, token in sessions:
        call(holder, "dsreg_heartbeat", sid, token, f"/long/{sid}", "v")
    # a reaper ran just now, and the three leases ran out after it
    query(holder, "UPDATE dsreg_reaper SET last_run_at = UTC_TIMESTAMP(6), stalls = 0")
    query(holder, "UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6)")
    hold_counter(holder, "revision")
    reap = Background(reap_conn, lambda c: call(c, "dsreg_reap", out=1))
    wait_for_lock_wait(holder, reap.thread_id)  # batch 1 locked a session, waits for the counter
    time.sleep(1.5)
    query(holder, "COMMIT")
    reap.join()
    assert reap.error is None
    assert reap.result[1] == (3,)
    assert query(holder, "SELECT COUNT(*) FROM dsreg_session") == [(0,)]
    assert query(holder, "SELECT stalls FROM dsreg_reaper") == [(0,)]


def test_many_heartbeats_and_reapers_never_deadlock(server: ServerInfo, dbname: str) -> None:
    """8 heartbeating sessions (half of them let their leases lapse) and 4 reapers, 1.5 s of contention.

    Found a deadlock once: a reaper that stamped the dsreg_reaper row after locking session rows, against
    one that locked that row first for a stall decision. The stamp is now its own transaction."""
    setup = server.connect(dbname)
    sessions = [open_session(setup, f"s{i}", 1000) for i in range(8)]
    # start with a stall decision due, so the stall-grace path races the reapers and heartbeats too
    query(setup, "UPDATE dsreg_reaper SET last_run_at = UTC_TIMESTAMP(6) - INTERVAL 10 SECOND")
    stop = time.monotonic() + 1.5
    errors: list[BaseException] = []
    counts = {"beats": 0, "reaps": 0}

    def beater(i: int) -> None:
        sid, token = sessions[i]
        with server.connect(dbname) as c:
            n = 0
            while time.monotonic() < stop:
                try:
                    call(c, "dsreg_heartbeat", sid, token, f"/nodes/w{i}", f"v{n % 3}")
                    counts["beats"] += 1
                except pymysql.err.MySQLError as exc:
                    if sqlstate(exc) != "45001" or i % 2 == 0:
                        errors.append(exc)
                    return
                n += 1
                if i % 2:
                    time.sleep(1.2)  # odd sessions stall past their ttl and must be reaped

    def reaper() -> None:
        with server.connect(dbname) as c:
            while time.monotonic() < stop:
                try:
                    call(c, "dsreg_reap", out=1)
                    counts["reaps"] += 1
                except pymysql.err.MySQLError as exc:
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=beater, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=reaper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts["beats"] > 50 and counts["reaps"] > 20, counts
    # every live session still has its node; no node without a live session
    orphans = query(
        setup, "SELECT COUNT(*) FROM dsreg_node n LEFT JOIN dsreg_session s ON s.id = n.session_id WHERE s.id IS NULL"
    )
    assert orphans == [(0,)]
    setup.close()


def test_one_sessions_concurrent_beats_leave_the_node_at_its_last_event(server: ServerInfo, dbname: str) -> None:
    """Tried: 3 connections of one session beat the same new path 60 times each, the values
    alternating between "a" and "b", while another session tries to take that path. A session
    rewrites its own node after one unlocked read (its session row lock makes that read exact), so
    this checks what that relies on: the first beats race to create the node (one ADD, then
    UPDATEs); no UPDATE repeats the value before it (that would be a write decided on a stale read:
    an equal value writes nothing); the node ends at the value and revision of the last event; and
    an intruder that starts once the node exists gets 45005 every time without leaving an event."""
    setup = server.connect(dbname)
    sid, token = open_session(setup, "owner", 60_000)
    other, other_token = open_session(setup, "intruder", 60_000)
    path = "/race/shared"
    errors: list[BaseException] = []
    refused = [0]

    def beater(k: int) -> None:
        with server.connect(dbname) as c:
            for n in range(60):
                try:
                    call(c, "dsreg_heartbeat", sid, token, path, "ab"[(k + n) % 2])
                except BaseException as exc:
                    errors.append(exc)
                    return

    def intruder() -> None:
        with server.connect(dbname) as c:
            for n in range(30):
                try:
                    call(c, "dsreg_heartbeat", other, other_token, path, f"x-{n}")
                except pymysql.err.MySQLError as exc:
                    if sqlstate(exc) == "45005":
                        refused[0] += 1
                        continue
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=beater, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    # the intruder starts once the node exists (before that, its beat would create the node itself)
    while not query(setup, "SELECT 1 FROM dsreg_node WHERE path = %s", path) and threads[0].is_alive():
        pass
    threads.append(threading.Thread(target=intruder))
    threads[-1].start()
    for t in threads:
        t.join(60)
    assert errors == []
    events = query(
        setup,
        "SELECT rev, kind, CONVERT(value USING utf8mb4), session_id FROM dsreg_event WHERE path = %s ORDER BY rev",
        path,
    )
    assert [e[1] for e in events] == ["ADD"] + ["UPDATE"] * (len(events) - 1)
    assert len(events) > 10, events  # the values did change under contention
    assert {e[3] for e in events} == {sid}
    repeats = [(a[0], b[0]) for a, b in itertools.pairwise(events) if a[2] == b[2]]
    assert repeats == []
    node = query(
        setup,
        "SELECT CONVERT(value USING utf8mb4), session_id, version, create_rev, mod_rev FROM dsreg_node WHERE path = %s",
        path,
    )
    assert node == [(events[-1][2], sid, len(events), events[0][0], events[-1][0])]
    assert refused[0] == 30
    setup.close()


def test_one_sessions_beats_racing_its_deletes_and_close_replay_to_the_table(server: ServerInfo, dbname: str) -> None:
    """Tried: 12 rounds; in each, 3 connections of one session beat one path with a new value every
    call while a 4th deletes the path 8 times, a few ms apart, and then closes the session. A beat
    decides on an unlocked first read that the session holds the node and skips its checks (the
    fast path of revision 0013); the delete or the close can commit between that read and the
    beat's lock. Checks: revisions are 1..N with no gap; each path's events replay to the table
    (ADD only where absent, UPDATE and DELETE only where present, a DELETE carries the last value,
    a write after the close never appears); no node outlives its session; beats end with 45001 and
    nothing else. At least some re-creations (an ADD after a DELETE) must have happened."""
    rounds, beaters = 12, 3
    errors: list[BaseException] = []
    conns = [server.connect(dbname) for _ in range(beaters + 1)]

    def beat(c: pymysql.Connection, sid: int, token: str, path: str, k: int, go: threading.Barrier) -> None:
        go.wait(timeout=30)
        for n in range(2000):
            try:
                call(c, "dsreg_heartbeat", sid, token, path, f"{k}-{n}")
            except pymysql.err.MySQLError as exc:
                if sqlstate(exc) != "45001":
                    errors.append(exc)
                return
        errors.append(AssertionError(f"beater {k} never saw its session closed"))

    def churn(c: pymysql.Connection, sid: int, token: str, path: str, go: threading.Barrier) -> None:
        go.wait(timeout=30)
        try:
            for _ in range(8):
                time.sleep(0.004)
                call(c, "dsreg_delete", sid, token, path)
            call(c, "dsreg_session_close", sid, token)
        except BaseException as exc:
            errors.append(exc)

    for r in range(rounds):
        sid, token = open_session(conns[0], f"round-{r}", 60_000)
        path = f"/beat-race/{r}"
        call(conns[0], "dsreg_heartbeat", sid, token, path, "start")
        go = threading.Barrier(beaters + 1)
        threads = [threading.Thread(target=beat, args=(conns[k], sid, token, path, k, go)) for k in range(beaters)] + [
            threading.Thread(target=churn, args=(conns[beaters], sid, token, path, go))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), f"round {r} hung"
    assert errors == []
    events = query(conns[0], "SELECT rev, kind, CONVERT(path USING ascii), value FROM dsreg_event ORDER BY rev")
    (total,) = query(conns[0], "SELECT value FROM dsreg_counter WHERE name = 'revision'")[0]
    assert [e[0] for e in events] == list(range(1, total + 1)), "a revision is missing or duplicated"
    replay: dict[str, bytes] = {}
    adds = 0
    for rev, kind, path, value in events:
        if kind == "ADD":
            assert path not in replay, f"rev {rev}: ADD of {path}, which exists"
            adds += 1
        else:
            assert path in replay, f"rev {rev}: {kind} of {path}, which does not exist"
        if kind == "DELETE":
            assert value == replay.pop(path), f"rev {rev}: DELETE without the last value"
        else:
            replay[path] = value
    assert replay == {} and query(conns[0], "SELECT COUNT(*) FROM dsreg_node") == [(0,)]
    assert adds > rounds, f"only {adds} ADD events in {rounds} rounds: no beat re-created a deleted node"
    for c in conns:
        c.close()


def _open_flood(params: dict[str, Any], seconds: float, out: Any) -> None:
    """Open 1 s sessions back to back and abandon them; every open also reaps up to two."""
    opened, errors = 0, []
    with pymysql.connect(autocommit=True, **params) as c:
        end = time.time() + seconds
        while time.time() < end:
            try:
                call(c, "dsreg_session_open", "flood", 1000, out=2)
                opened += 1
            except pymysql.err.MySQLError as exc:
                errors.append(exc.args[0])
    out.put((opened, errors))


def test_concurrent_opens_that_reap_never_deadlock(server: ServerInfo, dbname: str) -> None:
    """8 processes open 1 s sessions as fast as they can for 6 s while the reaper event runs: opens
    and reapers meet on expired sessions and the revision counter. Before the reaper locked its whole
    batch first and read in READ COMMITTED, this deadlocked hundreds of times (1213)."""
    import multiprocessing

    from dsreg_db.urls import pymysql_params

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_flood, args=(pymysql_params(server.url(dbname)), 6.0, out)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    errors = [e for _, errs in results for e in errs]
    assert sum(n for n, _ in results) > 1000 and errors == [], f"errors: {sorted(set(errors))} x {len(errors)}"
