"""The claim: no live registration is ever lost -- where DolphinScheduler 3.1's MySQL registry loses them.

Short runs here (<= 60 s each); `-m slow` runs the long ones. Numbers are printed for the README.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from dsreg_db import Registry, SessionState
from dsreg_db.schema import migrate
from dsreg_db.testing.server import LocalServer
from dsreg_db.testing.torture import Report, Torture
from dsreg_db.urls import pymysql_params
from tests.conftest import FAST, ServerInfo


def _show(r: Report) -> None:
    print(
        f"\n{r.system}: {r.clients} clients {r.seconds:.0f} s, {r.heartbeats} heartbeats, max stall "
        f"{r.max_stall_ms} ms, losses {r.losses} ({r.lost_clients} clients), zombies {r.zombies}, "
        f"long stalls {r.long_stalls} (told expired {r.long_stalls_reported}), samples {r.samples}"
    )


def _dsreg(server: ServerInfo, make_db: Callable[..., str], seconds: float) -> Report:
    report = Torture(pymysql_params(server.url(make_db())), clients=50, ttl_ms=3000, seconds=seconds, seed=7).run()
    _show(report)
    assert report.samples > seconds * 5 and report.heartbeats > 50 * seconds * 0.8
    assert report.max_stall_ms > 1000 and report.long_stalls > 0, "the run must include stalls to mean anything"
    assert report.losses == 0, report.loss_examples
    assert report.zombies == 0
    assert report.crashed_clients == 0
    assert report.long_stalls_reported == report.long_stalls, report.missed_examples  # every one was told
    # one server, no database stall: no grace extends a lease, and reapers run all the time
    assert report.long_stalls_graced == report.long_stalls_unreaped == report.long_stalls_missed == 0
    return report


def _control(server: ServerInfo, make_db: Callable[..., str], seconds: float) -> Report:
    report = Torture(
        pymysql_params(server.url(make_db(migrated=False))),
        system="ds31",
        clients=50,
        ttl_ms=3000,
        seconds=seconds,
        skew_s=5.0,
        seed=7,
    ).run()
    _show(report)
    assert report.crashed_clients == 0
    assert report.losses > 0 and report.lost_clients > 0  # the failure this project exists to remove
    return report


def test_torture_dsreg_no_losses(server: ServerInfo, make_db: Callable[..., str]) -> None:
    _dsreg(server, make_db, 20)


def test_torture_dolphinscheduler_31_control_loses_live_workers(
    server: ServerInfo, make_db: Callable[..., str]
) -> None:
    _control(server, make_db, 15)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_torture_long(server: ServerInfo, make_db: Callable[..., str]) -> None:
    _dsreg(server, make_db, 180)
    _control(server, make_db, 180)


def test_database_outage_longer_than_ttl_expires_nobody() -> None:
    """kill -9 the server under load, restart it after more than the ttl: the stall grace keeps every session."""
    with LocalServer(extra_args=FAST) as server:
        url = server.create_database("outage")
        migrate.upgrade(url)
        states: dict[int, list[SessionState]] = {}
        with Registry(url, retry_seconds=1.0) as registry:
            for i in range(10):
                registry.put(f"/config/persistent-{i}", f"v{i}")
            sessions = [registry.session(f"w{i}", ttl=3.0, interval=0.5) for i in range(20)]
            for i, s in enumerate(sessions):
                s.register(f"/nodes/master/w{i}", "up")
                states[i] = []
                s.add_listener(states[i].append)
            ids = [s.id for s in sessions]
            outage: dict[str, float] = {}

            def crash() -> None:
                time.sleep(3.0)
                server.kill()
                started = time.monotonic()
                time.sleep(5.0)  # longer than the ttl
                server.start()
                outage["seconds"] = time.monotonic() - started

            torture = Torture(pymysql_params(url), clients=30, ttl_ms=3000, seconds=20, long_stall_chance=0.0, seed=3)
            crasher = threading.Thread(target=crash)
            report = torture.run(during=crasher.start)
            crasher.join()
            time.sleep(1.0)
            _show(report)
            print(f"outage {outage['seconds']:.1f} s")
            assert outage["seconds"] > 3.0
            assert report.losses == 0 and report.zombies == 0
            assert report.expired_reported == 0  # nobody who kept trying was expired by the outage
            assert report.failed_heartbeats > 0  # the outage was felt
            for i, s in enumerate(sessions):
                assert s.id == ids[i], "a session was lost to the outage"
                # told LOST by its own deadline (no contact for the ttl), then the server's stall grace
                # proved it wrong: the same session again
                assert states[i] == [SessionState.SUSPENDED, SessionState.LOST, SessionState.RECONNECTED], states[i]
            assert sorted(registry.children("/nodes/master")) == sorted(f"w{i}" for i in range(20))
            for i in range(10):
                node = registry.get(f"/config/persistent-{i}")
                assert node is not None and node.value == f"v{i}"
