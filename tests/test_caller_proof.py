"""No session variable of the caller changes what a procedure decides.

Each test is one reproduction from an attack or a driver default, tried on revision 0005 (the
docstring says what it did there) and pinned here: the caller's clock (``SET timestamp``),
autocommit=0, SERIALIZABLE and READ UNCOMMITTED callers, the caller's own transaction on an
error, XA, and wrong-token calls holding a dead session off the reaper.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import (
    call,
    disable_reaper_event,
    expire,
    open_session,
    query,
    sqlstate,
)

YEAR_S = 365 * 24 * 3600


def server_now(conn: pymysql.Connection) -> float:
    """The server's real clock as a Unix time (``conn`` must not have pinned its timestamp)."""
    ((now,),) = query(conn, "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))")
    return float(now) / 1e6


def pin_clock(conn: pymysql.Connection, at: float) -> None:
    """What an attacker with EXECUTE only can do: move its session's clock anywhere."""
    query(conn, "SET timestamp = %s", at)


def lease_left_ms(admin: pymysql.Connection, session_id: int) -> float:
    rows = query(
        admin,
        "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) FROM dsreg_session WHERE id = %s",
        session_id,
    )
    assert rows, f"session {session_id} is gone"
    return float(rows[0][0]) / 1000


@pytest.fixture
def attacker(server: ServerInfo, dbname: str) -> Iterator[pymysql.Connection]:
    with server.connect(dbname) as c:
        yield c


@pytest.fixture
def app_table(admin: pymysql.Connection) -> str:
    """An application's own table in the same database as the registry."""
    query(admin, "CREATE TABLE app_t (id INT PRIMARY KEY) ENGINE = InnoDB")
    return "app_t"


def test_clock_stepped_forward_does_not_reap_live_sessions(
    admin: pymysql.Connection, attacker: pymysql.Connection, conn: pymysql.Connection
) -> None:
    """0005: `SET timestamp = now + 1.5 s; CALL dsreg_reap` repeated in 1.5 s steps (each under
    stall_after_ms) reaped every live, heartbeating session with its nodes and locks."""
    disable_reaper_event(admin)
    sid, token = open_session(conn, "live", 3000)
    call(conn, "dsreg_heartbeat", sid, token, "/clock/live", "v")
    (fence,) = call(conn, "dsreg_lock_acquire", sid, token, "/clock/lock", out=1)[1]
    for step in range(1, 9):
        pin_clock(attacker, server_now(admin) + 1.5 * step)
        _, (reaped,) = call(attacker, "dsreg_reap", out=1)
        assert reaped == 0, f"step {step}: the attacker's clock reaped a live session"
        call(conn, "dsreg_heartbeat", sid, token, "/clock/live", f"v{step % 2}")
        time.sleep(0.1)
    assert call(admin, "dsreg_get", "/clock/live")[0][0][3] == sid
    assert query(admin, "SELECT fence FROM dsreg_lock WHERE session_id = %s", sid) == [(fence,)]


def test_clock_a_year_ahead_neither_extends_leases_nor_stops_the_reaper_alert(
    admin: pymysql.Connection, attacker: pymysql.Connection
) -> None:
    """0005: `SET timestamp = now + 1 year; CALL dsreg_reap` took the gap for a database stall and
    extended every lease by a year (dead clients never reaped), and left the reaper's last run a
    year in the future (its age negative, so the stale-reaper alert never fires)."""
    disable_reaper_event(admin)
    dead, _ = open_session(admin, "dead", 1000)
    before = lease_left_ms(admin, dead)
    pin_clock(attacker, server_now(admin) + YEAR_S)
    call(attacker, "dsreg_reap", out=1)
    assert lease_left_ms(admin, dead) <= before, "the attacker's reap extended a lease"
    ((age,),) = query(admin, "SELECT TIMESTAMPDIFF(MICROSECOND, last_run_at, UTC_TIMESTAMP(6)) FROM dsreg_reaper")
    assert age >= 0, f"reaper's last run is {-age} us in the future"
    time.sleep(1.3)
    assert call(admin, "dsreg_reap", out=1)[1] == (1,)


def test_clock_a_year_ahead_gives_no_longer_lease(admin: pymysql.Connection, attacker: pymysql.Connection) -> None:
    """0005: the same pinned clock before dsreg_session_keepalive / dsreg_heartbeat gave the caller a
    lease of 31,536,005 s (max_ttl_ms is one hour)."""
    disable_reaper_event(admin)
    ((tick,),) = query(admin, "SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms'")
    pin_clock(attacker, server_now(admin) + YEAR_S)
    sid, token = open_session(attacker, "greedy", 5000)
    assert lease_left_ms(admin, sid) <= 5000 + tick
    for name, args in (
        ("dsreg_session_keepalive", (sid, token)),
        ("dsreg_heartbeat", (sid, token, "/clock/greedy", "x")),
        ("dsreg_put", (sid, token, "/clock/greedy2", "x")),
    ):
        pin_clock(attacker, server_now(admin) + YEAR_S)
        call(attacker, name, *args)
        assert lease_left_ms(admin, sid) <= 5000 + tick, name


def test_clock_a_year_ahead_does_not_compact_the_change_log(
    admin: pymysql.Connection, attacker: pymysql.Connection
) -> None:
    """0005: `SET timestamp = now + 1 year; CALL dsreg_compact` dropped the whole change log."""
    for i in range(3):
        call(admin, "dsreg_put", None, None, f"/clock/c{i}", "v")
    pin_clock(attacker, server_now(admin) + YEAR_S)
    assert call(attacker, "dsreg_compact", out=1)[1] == (0,)
    assert len(call(admin, "dsreg_watch", "/clock", 0, 100)[0]) == 3


def test_clock_through_the_mariadb_client(server: ServerInfo, dbname: str, admin: pymysql.Connection) -> None:
    """The same attack through the `mariadb` command-line client (no CLIENT_FOUND_ROWS, its own
    session defaults): a year ahead, a reap removes no live session and extends nothing."""
    import shutil
    import subprocess

    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None, "the mariadb client is installed with the server (scripts/setup.sh)"
    disable_reaper_event(admin)
    sid, _ = open_session(admin, "cli-live", 3000)
    before = lease_left_ms(admin, sid)
    script = f"SET timestamp = UNIX_TIMESTAMP() + {YEAR_S}; CALL dsreg_reap(@n); SELECT @n;"
    args = [client, "-h", server.host, "-P", str(server.port), "-u", server.user, "-N", "-B", dbname, "-e", script]
    if server.password:
        args.insert(1, f"-p{server.password}")
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "0"
    assert 0 < lease_left_ms(admin, sid) <= before


def test_autocommit_off_reader_sees_every_new_commit(
    server: ServerInfo, dbname: str, admin: pymysql.Connection, app_table: str
) -> None:
    """0005: with autocommit=0 (PyMySQL's and Connector/J-in-a-transaction's default) dsreg_watch,
    dsreg_get, dsreg_children and dsreg_list ran in the caller's REPEATABLE READ snapshot, so a
    watcher polling on one connection never saw a commit made after its first poll. Also tried: the
    application's own read between polls (it opens a snapshot in the caller's transaction)."""
    with server.connect(dbname) as reader:
        query(reader, "SET autocommit = 0")
        assert call(reader, "dsreg_watch", "/ac", 0, 100)[0] == []
        assert call(reader, "dsreg_get", "/ac/a")[0] == []
        assert call(reader, "dsreg_children", "/ac")[0] == []
        for i, name in enumerate(("a", "b")):
            # the application's own read opens a snapshot in its transaction, before the put commits
            query(reader, f"SELECT COUNT(*) FROM {app_table}")
            call(admin, "dsreg_put", None, None, f"/ac/{name}", "v")
            assert len(call(reader, "dsreg_watch", "/ac", 0, 100)[0]) == i + 1
            assert call(reader, "dsreg_get", f"/ac/{name}")[0][0][:2] == (f"/ac/{name}", "v")
            assert len(call(reader, "dsreg_children", "/ac")[0]) == i + 1
            rows, (rev,) = call(reader, "dsreg_list", "/ac", out=1)
            assert len(rows) == i + 1 and rev == max(r[6] for r in rows)


def test_serializable_reader_with_an_open_transaction_blocks_no_writer(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """0005: a SERIALIZABLE reader with autocommit=0 share-locked the revision counter (dsreg_list)
    and the event range (dsreg_watch) until it committed; every put, new-path heartbeat, close and
    the reaper waited and failed with 1205."""
    disable_reaper_event(admin)
    dead, _ = open_session(admin, "dead", 60_000)
    sid, token = open_session(admin, "w", 60_000)
    expire(admin, dead)  # after the opens: an open reaps a little first
    with server.connect(dbname) as reader, server.connect(dbname) as writer:
        query(reader, "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        query(reader, "SET autocommit = 0")
        call(reader, "dsreg_list", "/", out=1)
        call(reader, "dsreg_watch", "/", 0, 100)
        call(reader, "dsreg_get", "/ser/p")
        call(reader, "dsreg_children", "/")
        query(writer, "SET SESSION innodb_lock_wait_timeout = 2")
        call(writer, "dsreg_put", None, None, "/ser/p", "v")
        call(writer, "dsreg_heartbeat", sid, token, "/ser/new", "v")
        assert call(writer, "dsreg_reap", out=1)[1] == (1,)
        call(writer, "dsreg_session_close", sid, token)
        query(reader, "ROLLBACK")


def test_read_uncommitted_watcher_never_sees_an_event_that_rolls_back(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """0005: a READ UNCOMMITTED watcher received an event of a writer's transaction that then rolled
    back, and later skipped the real event that committed under the same revision."""
    call(admin, "dsreg_put", None, None, "/ru/a", "first")
    ((rev,),) = query(admin, "SELECT value FROM dsreg_counter WHERE name = 'revision'")
    with server.connect(dbname) as writer, server.connect(dbname) as watcher:
        query(watcher, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        # a writer in flight: its event row exists, uncommitted
        query(writer, "START TRANSACTION")
        query(
            writer,
            "INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at) "
            "VALUES (%s, 'UPDATE', '/ru/a', 'rolled back', NULL, UTC_TIMESTAMP(6))",
            rev + 1,
        )
        assert call(watcher, "dsreg_watch", "/ru", rev, 100)[0] == []
        _, (listed_rev,) = call(watcher, "dsreg_list", "/ru", out=1)
        assert listed_rev == rev
        query(writer, "ROLLBACK")
        call(admin, "dsreg_put", None, None, "/ru/a", "second")
        events = call(watcher, "dsreg_watch", "/ru", rev, 100)[0]
        assert [(e[0], e[3]) for e in events] == [(rev + 1, "second")]


OUTS = {"dsreg_session_open": 2, "dsreg_lock_acquire": 1}
CALLS_THAT_FAIL_EARLY = [
    ("dsreg_put", (None, None, "no-slash", "v"), "45002"),
    ("dsreg_put", (None, None, "/x", None), "45002"),
    ("dsreg_delete", (None, None, "no-slash"), "45002"),
    ("dsreg_session_open", ("o", 1), "45002"),
    ("dsreg_lock_acquire", (1, "0" * 32, "bad name"), "45002"),
    ("dsreg_session_keepalive", (999_999, "0" * 32), "45001"),
    ("dsreg_watch", ("/", -1, 10), "45002"),
    ("dsreg_get", ("//",), "45002"),
]


@pytest.mark.parametrize(("procedure", "args", "state"), CALLS_THAT_FAIL_EARLY, ids=lambda v: str(v)[:24])
def test_a_failed_call_treats_the_callers_transaction_like_a_successful_one(
    server: ServerInfo, dbname: str, app_table: str, procedure: str, args: tuple[object, ...], state: str
) -> None:
    """0005: an argument error raised before the procedure's own transaction ran the EXIT handler's
    ROLLBACK on the caller's open work (`INSERT ...; CALL dsreg_put(NULL, NULL, 'no-slash', 'v');
    COMMIT` lost the INSERT), while other errors and every success committed it. Now every call
    commits the caller's transaction first: the row survives the caller's own ROLLBACK."""
    with server.connect(dbname) as c:
        query(c, "SET autocommit = 0")
        query(c, f"INSERT INTO {app_table} (id) VALUES (1)")
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(c, procedure, *args, out=OUTS.get(procedure, 0))
        assert sqlstate(err.value) == state
        query(c, f"INSERT INTO {app_table} (id) VALUES (2)")
        call(c, "dsreg_get", "/ok")  # a successful call commits the same way
        query(c, "ROLLBACK")
        assert query(c, f"SELECT id FROM {app_table} ORDER BY id") == [(1,), (2,)]


def test_inside_an_xa_transaction_a_call_fails_and_changes_nothing(
    server: ServerInfo, dbname: str, app_table: str, admin: pymysql.Connection
) -> None:
    """A procedure cannot commit inside the caller's XA transaction: a clear error (1399), the
    registry unchanged, the XA transaction still the caller's to end."""
    with server.connect(dbname) as c:
        query(c, "XA START 'dsreg-xa'")
        query(c, f"INSERT INTO {app_table} (id) VALUES (1)")
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(c, "dsreg_put", None, None, "/xa/p", "v")
        assert err.value.args[0] == 1399, err.value
        query(c, "XA END 'dsreg-xa'")
        query(c, "XA ROLLBACK 'dsreg-xa'")
    assert call(admin, "dsreg_get", "/xa/p")[0] == []
    assert query(admin, f"SELECT COUNT(*) FROM {app_table}") == [(0,)]


def test_wrong_token_takes_no_lock_on_the_session_row(
    server: ServerInfo, dbname: str, admin: pymysql.Connection
) -> None:
    """0005: a call with a wrong token locked the session row (FOR UPDATE) before checking the
    token. Here the row is held by another transaction: each wrong-token call must answer 45003
    at once instead of waiting for that lock (1205 after innodb_lock_wait_timeout)."""
    disable_reaper_event(admin)
    sid, _ = open_session(admin, "victim", 60_000)
    bad = "0" * 32
    with server.connect(dbname) as holder, server.connect(dbname) as c:
        query(holder, "START TRANSACTION")
        query(holder, "SELECT id FROM dsreg_session WHERE id = %s FOR UPDATE", sid)
        query(c, "SET SESSION innodb_lock_wait_timeout = 1")
        for name, args in (
            ("dsreg_session_keepalive", (sid, bad)),
            ("dsreg_heartbeat", (sid, bad, "/wt/a", "v")),
            ("dsreg_put", (sid, bad, "/wt/a", "v")),
            ("dsreg_delete", (sid, bad, "/wt/a")),
            ("dsreg_lock_acquire", (sid, bad, "/wt/l")),
            ("dsreg_lock_release", (sid, bad, "/wt/l")),
            ("dsreg_session_close", (sid, bad)),
        ):
            with pytest.raises(pymysql.err.MySQLError) as err:
                call(c, name, *args, out=OUTS.get(name, 0))
            assert sqlstate(err.value) == "45003", (name, err.value)
        query(holder, "ROLLBACK")


def test_lease_boundary_reapers_back_to_back(admin: pymysql.Connection, conn: pymysql.Connection) -> None:
    """Reapers run back to back while a lease runs out: every reap that ended before the lease end
    left the session alone, and the first reap that started after it removed the session."""
    disable_reaper_event(admin)
    sid, _ = open_session(conn, "boundary", 1500)
    ((end_us,),) = query(
        admin, "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01', expires_at) FROM dsreg_session WHERE id = %s", sid
    )
    end = float(end_us) / 1e6
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        t0 = server_now(admin)
        _, (reaped,) = call(conn, "dsreg_reap", out=1)
        t1 = server_now(admin)
        if reaped:
            assert t1 >= end, f"reaped {end - t1:.3f} s before its lease ended"
            break
        assert t0 <= end, f"a reap that started {t0 - end:.3f} s after the lease end left it alive"
    else:
        raise AssertionError("the session outlived its lease by 3.5 s")
    assert query(admin, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", sid) == [(0,)]
