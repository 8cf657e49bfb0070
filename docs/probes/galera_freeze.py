"""Does a fresh 3-node Galera cluster freeze under the 30-client torture? One run, no node killed.

    python docs/probes/galera_freeze.py SECONDS [--variant=NAME ...] [mariadbd args ...]

From a checkout (it borrows the Galera tests' commit monitor and hang report). Each node commits every
0.1 s through the run; when node 0's wsrep_last_committed stands still for 8 s, every node's wsrep queues,
busy threads and InnoDB lock waits are printed (twice at most). The last line, RESULT, gives the torture's
figures and each node's longest commit gap with when it began (seconds into the run). The README's
lock-wait figures came from 6 runs of 90 s with ``--innodb-lock-wait-timeout=5`` and 6 without.
``--variant=NAME`` replaces one migrated procedure before the run by its file in ``sql/`` with the edits
of VARIANTS applied, for an A/B of a change to the SQL without a revision (the README's account-row and
revision-lock runs); an edit that no longer matches the file stops the probe.
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


SQL = Path(__file__).resolve().parents[2] / "sql" / "procedures"
#: name: (procedure, [(text in its file, replacement), ...])
VARIANTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # no per-account serialization: not for use
    "open-without-account-row": (
        "dsreg_session_open",
        [
            (
                "    INSERT INTO dsreg_account (name, opened) VALUES (v_account, 1)\n"
                "        ON DUPLICATE KEY UPDATE opened = opened + 1;\n",
                "",
            )
        ],
    ),
    # the counter's lock waited for in an UPDATE (execution), not in the primary-key lookup of a
    # SELECT ... FOR UPDATE, which waits in the optimizer (processlist state 'Statistics')
    "rev-lock-by-update": (
        "dsreg__rev_lock",
        [
            ("    READS SQL DATA\n", "    MODIFIES SQL DATA\n"),
            (
                "    SELECT value INTO p_rev",
                "    UPDATE dsreg_counter SET value = value WHERE name = 'revision';\n    SELECT value INTO p_rev",
            ),
        ],
    ),
}


def replace_routines(port: int, variants: list[str]) -> None:
    """Each variant's procedure in place of the migrated one."""
    for variant in variants:
        name, edits = VARIANTS[variant]
        body = (SQL / f"{name}.sql").read_text()
        for old, new in edits:
            if old not in body:
                raise SystemExit(f"variant {variant}: {old!r} is no longer in sql/procedures/{name}.sql")
            body = body.replace(old, new)
        with pymysql.connect(host="127.0.0.1", port=port, user="root", database="g") as c, c.cursor() as cur:
            cur.execute(f"DROP PROCEDURE {name}")
            cur.execute(body)
        print(f"replaced {name} by variant {variant}", flush=True)


def main() -> None:
    seconds, args = float(sys.argv[1]), sys.argv[2:]
    variants = [a.removeprefix("--variant=") for a in args if a.startswith("--variant=")]
    extra = tuple(a for a in args if not a.startswith("--variant="))
    cluster = GaleraCluster(3)
    for node in cluster.nodes:
        node.extra_args = (*node.extra_args, *extra)
    with cluster:
        ports = [n.port for n in cluster.nodes]
        with pymysql.connect(host="127.0.0.1", port=ports[0], user="root") as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE g")
        migrate.upgrade(f"mysql+pymysql://root@127.0.0.1:{ports[0]}/g")
        replace_routines(ports[0], variants)
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
            f"RESULT args={extra} variants={variants} heartbeats={report.heartbeats} losses={report.losses} "
            f"zombies={report.zombies} "
            f"conflicts={report.conflicts} longest commit gaps (s, from s)={gaps}",
            flush=True,
        )


if __name__ == "__main__":
    main()
