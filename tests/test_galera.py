"""A real 3-node MariaDB Galera cluster on loopback: migrations, clients spread over the nodes, torture,
kill -9 of one node. Needs galera-4 and rsync (scripts/setup.sh --test installs them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pymysql
import pytest

from dsreg_db import Registry, SessionState, migrate
from dsreg_db.galera import GaleraCluster, enable_events_locally
from dsreg_db.torture import Torture


@pytest.fixture(scope="module")
def cluster() -> Iterator[GaleraCluster]:
    with GaleraCluster(3) as c:
        yield c


def _events(port: int) -> list[tuple[str, str]]:
    with pymysql.connect(host="127.0.0.1", port=port, user="root", database="g") as c, c.cursor() as cur:
        cur.execute("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS ORDER BY EVENT_NAME")
        return list(cur.fetchall())


def _torture_and_kill(cluster: GaleraCluster, seconds: float, kill_after: float) -> None:
    ports = [n.port for n in cluster.nodes]
    with pymysql.connect(host="127.0.0.1", port=ports[0], user="root") as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE g")
    migrate.upgrade(f"mysql+pymysql://root@127.0.0.1:{ports[0]}/g")
    # replicated events arrive disabled on the other nodes: only node 0 would reap
    assert [s for _, s in _events(ports[1])] == ["SLAVESIDE_DISABLED", "SLAVESIDE_DISABLED"]
    for port in ports[1:]:
        enable_events_locally("127.0.0.1", port, "root", "", "g")
    for port in ports:
        assert [s for _, s in _events(port)] == ["ENABLED", "ENABLED"]

    states: list[SessionState] = []
    with Registry(cluster.url("g")) as registry:
        sessions = [registry.session(f"w{i}", ttl=3.0, interval=0.5) for i in range(10)]
        for i, s in enumerate(sessions):
            s.add_listener(states.append)
            s.register(f"/nodes/master/w{i}", "up")
        ids = [s.id for s in sessions]
        killed = {}

        def kill() -> None:
            time.sleep(kill_after)
            cluster.nodes[2].kill()
            killed["at"] = time.monotonic()

        params = {"host": "127.0.0.1", "port": ports[0], "user": "root", "password": "", "database": "g"}
        torture = Torture(
            params, clients=30, ttl_ms=3000, seconds=seconds, seed=11, hosts=[("127.0.0.1", p) for p in ports]
        )
        killer = threading.Thread(target=kill)
        report = torture.run(during=killer.start)
        killer.join()
        print(
            f"\ngalera: {report.clients} clients on 3 nodes {report.seconds:.0f} s, node 2 killed at "
            f"{kill_after:.0f} s: {report.heartbeats} heartbeats, losses {report.losses}, zombies "
            f"{report.zombies}, certification conflicts retried {report.conflicts} (torture) + "
            f"{registry.client.retries.get(1213, 0)} (wrapper), failovers "
            f"{sum(c.failovers for c in torture.clients)}, long stalls {report.long_stalls} "
            f"(told expired {report.long_stalls_reported})"
        )
        assert report.losses == 0, report.loss_examples
        assert report.zombies == 0
        assert report.long_stalls_reported == report.long_stalls
        assert sum(c.failovers for c in torture.clients) > 0  # clients of node 2 moved
        assert [s.id for s in sessions] == ids  # no wrapper session lost
        assert SessionState.LOST not in states
        assert sorted(registry.children("/nodes/master")) == sorted(f"w{i}" for i in range(10))


def test_galera_torture_with_a_node_killed(cluster: GaleraCluster) -> None:
    _torture_and_kill(cluster, seconds=30, kill_after=12)


@pytest.mark.slow
def test_galera_torture_long() -> None:
    with GaleraCluster(3) as c:
        _torture_and_kill(c, seconds=150, kill_after=60)
