"""Client clocks and session time zones change nothing: leases run on the server's UTC clock.

DolphinScheduler 3.1 stamped rows with System.currentTimeMillis() and let
every node delete rows older than *its own* clock minus a window; a node with
a clock hours ahead deleted every live peer. Here the API takes no time from
the client at all; these tests pin that down from both sides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pymysql
import pytest

from dsreg_db import Registry
from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, open_session, query

ZONES = ["+13:00", "-11:00", "+05:45", "SYSTEM"]


@pytest.fixture
def zoned(server: ServerInfo, dbname: str) -> Iterator[list[pymysql.Connection]]:
    conns = []
    for zone in ZONES:
        c = server.connect(dbname)
        query(c, "SET time_zone = %s", zone)
        conns.append(c)
    yield conns
    for c in conns:
        c.close()


def test_time_zone_of_the_connection_does_not_move_leases(zoned: list[pymysql.Connection]) -> None:
    disable_reaper_event(zoned[0])
    sessions = [open_session(c, f"tz{c.thread_id()}", 4000) for c in zoned]
    for c, (sid, token) in zip(zoned, sessions, strict=True):
        call(c, "dsreg_heartbeat", sid, token, f"/tz/{sid}", "x")
    # each connection reaps: nobody is expired by another's zone offset
    for c in zoned:
        _, (reaped,) = call(c, "dsreg_reap", out=1)
        assert reaped == 0
    remaining = query(
        zoned[0],
        "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) DIV 1000 FROM dsreg_session ORDER BY id",
    )
    # a lease ends on a lease_tick_ms boundary: at most one tick beyond ttl
    ((tick,),) = query(zoned[0], "SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms'")
    assert all(3000 < r[0] <= 4000 + tick for r in remaining), remaining
    # and nobody outlives its lease either: without heartbeats, reaps from a far-west zone
    # (every 0.5 s, as the event would) expire all of them once 4 s have passed
    reaped_total = 0
    started = time.monotonic()
    while time.monotonic() - started < 5.0:
        _, (reaped,) = call(zoned[1], "dsreg_reap", out=1)
        if reaped:
            assert time.monotonic() - started > 3.0, "expired before its lease ran out"
        reaped_total += reaped
        time.sleep(0.5)
    assert reaped_total == len(ZONES)
    assert query(zoned[0], "SELECT COUNT(*) FROM dsreg_node") == [(0,)]


def test_client_clock_hours_off_neither_kills_peers_nor_survives(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper whose process clock is 5 hours ahead (time.time patched) keeps peers alive and dies on time."""
    real_time = time.time
    with Registry(db_url) as honest, honest.session("honest", ttl=2.0) as peer:
        peer.register("/nodes/worker/honest", "ok")
        monkeypatch.setattr(time, "time", lambda: real_time() + 5 * 3600)
        with Registry(db_url) as skewed:
            skewed_session = skewed.session("skewed", ttl=2.0)
            skewed_session.register("/nodes/worker/skewed", "ok")
            for _ in range(5):
                skewed.reap()  # what every DolphinScheduler node did with its own clock
                time.sleep(0.3)
            assert sorted(honest.children("/nodes/worker")) == ["honest", "skewed"]
            # the skewed client goes silent (its thread stops); its node must go within ttl + reaper interval
            skewed_session._stop.set()
            silent_at = time.monotonic()
            while "skewed" in honest.children("/nodes/worker"):
                assert time.monotonic() - silent_at < 2.0 + 1.0 + 1.5, "the silent session outlived its lease"
                time.sleep(0.05)
            assert honest.children("/nodes/worker") == ["honest"]
