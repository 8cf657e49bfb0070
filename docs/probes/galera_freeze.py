"""Does a fresh 3-node Galera cluster freeze under the 30-client torture? One run, no node killed.

    python docs/probes/galera_freeze.py SECONDS [--routine=FILE ...] [mariadbd args ...]

From a checkout (it borrows the Galera tests' commit monitor and hang report). Each node commits every
0.1 s through the run; when node 0's wsrep_last_committed stands still for 8 s, every node's wsrep queues,
busy threads and InnoDB lock waits are printed (twice at most). The last line, RESULT, gives the torture's
figures and each node's longest commit gap with when it began (seconds into the run). The README's
lock-wait figures came from 6 runs of 90 s with ``--innodb-lock-wait-timeout=5`` and 6 without.
``--routine=FILE`` replaces one migrated procedure by the ``CREATE PROCEDURE`` in FILE before the run,
for an A/B of a change to the SQL without a revision (the README's account-row and revision-lock runs).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dsreg_db.schema import migrate
from dsreg_db.testing.galera import GaleraCluster
from dsreg_db.testing.torture import Torture
from tests.test_galera import _CommitMonitor, _hang_report

QUEUES = (
    "wsrep_last_committed",
    "wsrep_local_recv_queue",
    "wsrep_local_send_queue",
    "wsrep_flow_control_paused",
    "wsrep_local_bf_aborts",
)


def wsrep_status(port: int) -> dict[str, str]:
    with (
        pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=3, read_timeout=5) as c,
        c.cursor() as cur,
    ):
        marks = ", ".join(["%s"] * len(QUEUES))
        cur.execute(f"SHOW STATUS WHERE Variable_name IN ({marks})", QUEUES)
        return {str(k): str(v) for k, v in cur.fetchall()}


def watch(cluster: GaleraCluster, stop: threading.Event) -> None:
    last, since, dumps = "", time.monotonic(), 0
    while not stop.wait(0.5) and dumps < 2:
        try:
            committed = wsrep_status(cluster.nodes[0].port)["wsrep_last_committed"]
        except pymysql.err.MySQLError:
            continue
        if committed != last:
            last, since = committed, time.monotonic()
        elif time.monotonic() - since > 8:
            dumps += 1
            for i, node in enumerate(cluster.nodes):
                print(f"node {i}: {wsrep_status(node.port)}")
            print(_hang_report(cluster), flush=True)
            since = time.monotonic() + 10


def replace_routines(port: int, files: list[str]) -> None:
    """Each file's CREATE PROCEDURE in place of the migrated one of that name."""
    for file in files:
        body = Path(file).read_text()
        name = body.split("CREATE PROCEDURE", 1)[1].split("(", 1)[0].strip()
        with pymysql.connect(host="127.0.0.1", port=port, user="root", database="g") as c, c.cursor() as cur:
            cur.execute(f"DROP PROCEDURE {name}")
            cur.execute(body)
        print(f"replaced {name} by {file}", flush=True)


def main() -> None:
    seconds, args = float(sys.argv[1]), sys.argv[2:]
    routines = [a.removeprefix("--routine=") for a in args if a.startswith("--routine=")]
    extra = tuple(a for a in args if not a.startswith("--routine="))
    cluster = GaleraCluster(3)
    for node in cluster.nodes:
        node.extra_args = (*node.extra_args, *extra)
    with cluster:
        ports = [n.port for n in cluster.nodes]
        with pymysql.connect(host="127.0.0.1", port=ports[0], user="root") as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE g")
        migrate.upgrade(f"mysql+pymysql://root@127.0.0.1:{ports[0]}/g")
        replace_routines(ports[0], routines)
        monitors = [_CommitMonitor(p, "g") for p in ports]
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(cluster, stop), daemon=True)
        for m in monitors:
            m.start()
        watcher.start()
        params = {"host": "127.0.0.1", "port": ports[0], "user": "root", "password": "", "database": "g"}
        hosts = [("127.0.0.1", p) for p in ports]
        torture = Torture(params, clients=30, ttl_ms=3000, seconds=seconds, seed=int(time.time()) % 1000, hosts=hosts)
        started = time.monotonic()
        report = torture.run()
        stop.set()
        for m in monitors:
            m.stop()
        gaps = [(round(m.longest, 2), round(m.longest_at - started, 1)) for m in monitors]
        print(
            f"RESULT args={extra} routines={routines} heartbeats={report.heartbeats} losses={report.losses} "
            f"zombies={report.zombies} "
            f"conflicts={report.conflicts} longest commit gaps (s, from s)={gaps}",
            flush=True,
        )


if __name__ == "__main__":
    main()
