"""Clients as reapers of last resort: with no reaper event running anywhere, live clients' lease
writes reap (dsreg__reap_last_resort), so reaping needs no per-node setup (Galera: the event runs
only on the node that created it). Revision dsreg_0008 and before: nobody reaps, the test fails."""

from __future__ import annotations

import time

import pymysql
import pytest

from tests.sqlcall import call, disable_reaper_event, open_session, query


@pytest.mark.parametrize("beat", ["keepalive", "heartbeat"])
def test_live_clients_reap_when_no_reaper_event_runs(
    conn: pymysql.Connection, admin: pymysql.Connection, beat: str
) -> None:
    disable_reaper_event(admin)
    call(admin, "dsreg_reap", out=1)  # the last run the event recorded before it stopped
    ((stalls_before,),) = query(admin, "SELECT stalls FROM dsreg_reaper")
    idle, idle_token = open_session(conn, "idle", 1000)
    call(conn, "dsreg_lock_acquire", idle, idle_token, "/locks/idle", out=1)
    live, live_token = open_session(conn, "live", 3000)
    ((expires_at,),) = query(admin, "SELECT expires_at FROM dsreg_session WHERE id = %s", idle)
    late_s = None
    n = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        n += 1
        if beat == "keepalive":
            call(conn, "dsreg_session_keepalive", live, live_token)
        else:  # DolphinScheduler's beat: a value that changes every time
            call(conn, "dsreg_heartbeat", live, live_token, "/nodes/worker/live", f'{{"beat": {n}}}')
        if not query(admin, "SELECT 1 FROM dsreg_session WHERE id = %s", idle):
            ((late_us,),) = query(admin, "SELECT TIMESTAMPDIFF(MICROSECOND, %s, UTC_TIMESTAMP(6))", expires_at)
            late_s = late_us / 1e6
            break
        time.sleep(0.3)
    print(f"\nno reaper event, a client beating every 0.3 s ({beat}): idle session reaped {late_s} s after its lease")
    assert late_s is not None, "nobody reaped the idle session"
    assert late_s <= 2.0  # ttl + tick + 2 s after its last contact
    assert query(admin, "SELECT COUNT(*) FROM dsreg_lock") == [(0,)]  # its lock went with it
    assert query(admin, "SELECT id FROM dsreg_session") == [(live,)]
    ((stalls_after,),) = query(admin, "SELECT stalls FROM dsreg_reaper")
    assert stalls_after == stalls_before  # the gap never grew into a stall (which would extend leases)


def test_with_the_reaper_event_running_clients_do_not_reap(conn: pymysql.Connection, admin: pymysql.Connection) -> None:
    """The help costs a read per lease write, nothing more: while the event records runs, the record
    stays fresh and a beating client never reaps (the reaper row shows only the event's runs)."""
    live, token = open_session(conn, "live", 3000)
    query(admin, "UPDATE dsreg_setting SET value = 60000 WHERE name = 'reap_stale_ms'")  # the help can't fire
    stale_help_off = query(admin, "SELECT value FROM dsreg_setting WHERE name = 'reap_stale_ms'")
    assert stale_help_off == [(60000,)]
    idle, _ = open_session(conn, "idle", 1000)
    started = time.monotonic()
    while query(admin, "SELECT 1 FROM dsreg_session WHERE id = %s", idle):
        assert time.monotonic() - started < 5, "the reaper event did not reap"
        call(conn, "dsreg_session_keepalive", live, token)
        time.sleep(0.2)
    # the same database with the event off and the help off: nothing reaps (the control for the test above)
    disable_reaper_event(admin)
    call(admin, "dsreg_reap", out=1)
    idle, _ = open_session(conn, "idle-2", 1000)
    for _ in range(12):
        call(conn, "dsreg_session_keepalive", live, token)
        time.sleep(0.25)
    assert query(admin, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", idle) == [(1,)]
