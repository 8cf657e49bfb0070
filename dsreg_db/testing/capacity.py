"""``dsreg bench --capacity``: how many DolphinScheduler-shaped clients one server carries, next to etcd and
ZooKeeper on the same machine.

A DolphinScheduler-shaped client holds one session and one ephemeral node and re-puts a new ~300-byte JSON
(:func:`dsreg_db.testing.bench.heartbeat_value`) every second, as DolphinScheduler's masters and workers
do. Each step runs N such clients for a few seconds; it passes when the beats' p99 latency is at most
:data:`P99_LIMIT_MS` and no session was lost. Latency is measured from each beat's *scheduled* time, so a
server (or a driver) that falls behind counts against it instead of silently beating less often. The
capacity is the largest passing N of the ladder; the server CPU per 1,000 clients is its process's CPU
seconds per second in that step, scaled (cores).

What each system's client is:

* dsreg: a session of its own (``dsreg_session_open``) and a ``dsreg_heartbeat`` of its node every beat;
* etcd: a lease of its own (TTL 30 s) and a put of its key with that lease every beat, plus a lease
  keepalive every 10th beat (ttl/3, as clients keep leases), through the JSON gateway;
* ZooKeeper: an ephemeral node and a ``set()`` of it every beat. The nodes of one driver process share
  one kazoo session (a session per node would be one TCP connection and one kazoo thread each); its
  pings are the server's only per-session work, so this favours ZooKeeper slightly.

The driver processes share the machine's cores with the servers, the same way for every system.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue as queue_module
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from dsreg_db import driver
from dsreg_db.testing import bench
from dsreg_db.testing.peer_workloads import Gateway, b64
from dsreg_db.testing.peers import EtcdServer, ZooKeeperServer
from dsreg_db.urls import pymysql_params

log = logging.getLogger(__name__)

#: a step passes at this p99 beat latency or less (and no lost session)
P99_LIMIT_MS = 50.0
#: the default ladder of clients
STEPS = (100, 200, 400, 800, 1600, 3200)
#: driver processes per step (fewer when a step has fewer clients)
PROCESSES = 16
BEAT_S = 1.0
ETCD_LEASE_TTL_S = 30
ETCD_KEEPALIVE_EVERY = 10  # beats: ttl/3


@dataclass
class Step:
    system: str
    clients: int
    seconds: float
    beats: int = 0
    lost: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_cores: float | None = None  # the server process's CPU seconds per second

    @property
    def passed(self) -> bool:
        return self.beats > 0 and self.lost == 0 and self.p99_ms <= P99_LIMIT_MS


@dataclass
class Capacity:
    server: str = ""
    steps: list[Step] = field(default_factory=list)

    def best(self, system: str) -> Step | None:
        """The largest passing step of ``system`` (below the first that failed)."""
        best = None
        for step in (s for s in self.steps if s.system == system):
            if not step.passed:
                break
            best = step
        return best

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "steps": [asdict(s) for s in self.steps]}


# -- one driver process: `count` clients, beats on schedule ---------------------------------------------
Beat = Callable[[int, int], bool]  # (client, beat number) -> False when its session was found lost


@dataclass
class _Start:
    """The drivers of a step start beating together, once every one has set its clients up."""

    ready: Any  # a queue: one item per driver whose clients are set up
    go: Any  # an event, set once start_at holds the start
    start_at: Any  # a shared double: the wall-clock time of every first beat

    def wait(self) -> float:
        self.ready.put(os.getpid())
        self.go.wait()
        return float(self.start_at.value)


def _schedule(beat: Beat, count: int, seconds: float, start: _Start) -> tuple[list[float], int]:
    """Beat every client once per BEAT_S, client i at offset i/count of the second; latency from the due time."""
    start_at = start.wait()
    latencies: list[float] = []
    lost = 0
    rounds = max(1, int(seconds / BEAT_S))
    for k in range(rounds):
        for i in range(count):
            due = start_at + k * BEAT_S + i * BEAT_S / count
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            if not beat(i, k):
                lost += 1
            latencies.append(time.time() - due)
    return latencies, lost


def _dsreg_driver(params: dict[str, Any], index: int, count: int, seconds: float, start: _Start, out: Any) -> None:
    conn = driver.connect(autocommit=True, **params)
    cur = conn.cursor()
    clients: list[tuple[int, str, str]] = []
    for i in range(count):
        path = f"/bench/capacity/{index}-{i}"
        cur.execute("CALL dsreg_session_open(%s, 10000, @s, @t)", (path,))
        cur.execute("SELECT @s, @t")
        sid, token = cur.fetchone()  # type: ignore[misc]
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, bench.heartbeat_value(0)))
        clients.append((int(sid), str(token), path))

    def beat(i: int, k: int) -> bool:
        sid, token, path = clients[i]
        try:
            cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, bench.heartbeat_value(k + 1)))
        except pymysql.err.MySQLError as exc:
            if getattr(exc, "sqlstate", None) == "45001":
                return False
            raise
        return True

    latencies, lost = _schedule(beat, count, seconds, start)
    for sid, token, _ in clients:
        with contextlib.suppress(pymysql.err.MySQLError):
            cur.execute("CALL dsreg_session_close(%s, %s)", (sid, token))
    conn.close()
    out.put((latencies, lost))


def _etcd_driver(host: str, port: int, index: int, count: int, seconds: float, start: _Start, out: Any) -> None:
    etcd = Gateway(host, port)
    clients = []
    for i in range(count):
        lease = etcd.post("/v3/lease/grant", {"TTL": ETCD_LEASE_TTL_S})["ID"]
        key = b64(f"/bench/capacity/{index}-{i}")
        etcd.post("/v3/kv/put", {"key": key, "value": b64(bench.heartbeat_value(0)), "lease": lease})
        clients.append((lease, key))

    def beat(i: int, k: int) -> bool:
        lease, key = clients[i]
        etcd.post("/v3/kv/put", {"key": key, "value": b64(bench.heartbeat_value(k + 1)), "lease": lease})
        if (k + i) % ETCD_KEEPALIVE_EVERY == 0:
            result = etcd.post("/v3/lease/keepalive", {"ID": lease}).get("result", {})
            return int(result.get("TTL", 0)) > 0
        return True

    latencies, lost = _schedule(beat, count, seconds, start)
    for lease, _ in clients:
        etcd.post("/v3/lease/revoke", {"ID": lease})
    etcd.conn.close()
    out.put((latencies, lost))


def _zk_driver(hosts: str, index: int, count: int, seconds: float, start: _Start, out: Any) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=10)
    lost_session: list[bool] = []
    zk.add_listener(lambda state: lost_session.append(True) if state == "LOST" else None)
    zk.start(timeout=30)
    try:
        paths = [f"/bench/capacity/{index}-{i}" for i in range(count)]
        for path in paths:
            zk.create(path, bench.heartbeat_value(0).encode(), ephemeral=True, makepath=True)

        def beat(i: int, k: int) -> bool:
            zk.set(paths[i], bench.heartbeat_value(k + 1).encode())
            return not lost_session

        latencies, lost = _schedule(beat, count, seconds, start)
    finally:
        zk.stop()
        zk.close()
    out.put((latencies, lost))


# -- a step: N clients over the driver processes ------------------------------------------------------
def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mariadb_pid(port: int) -> int | None:
    """The local server process listening on ``port`` (a throwaway one: its command line names the port)."""
    found = subprocess.run(["pgrep", "-f", "--", f"--port={port} "], capture_output=True, text=True, check=False)
    pids = found.stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


def _check(system: str, procs: list[Any], deadline: float) -> None:
    """Fail the step at once when a driver died, or when they take longer than ``deadline``."""
    died = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
    if died:
        raise RuntimeError(f"{system}: a driver process exited with {died[0]}")
    if time.monotonic() > deadline:
        raise TimeoutError(f"{system}: a driver process did not finish")


def step(
    system: str, worker: Callable[..., None], args: tuple[Any, ...], clients: int, seconds: float, pid: int | None
) -> Step:
    """Run ``clients`` clients for ``seconds`` (after every driver set its clients up), measure the beats."""
    processes = min(PROCESSES, clients)
    counts = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = _Start(ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0))
    procs = [ctx.Process(target=worker, args=(*args, i, n, seconds, start, out)) for i, n in enumerate(counts)]
    result = Step(system, clients, seconds)
    samples: list[float] = []
    cpu_before: float | None = None
    with bench.running(procs):
        deadline = time.monotonic() + 120
        for _ in procs:  # every driver has set its clients up
            while True:
                try:
                    start.ready.get(timeout=0.5)
                    break
                except queue_module.Empty:
                    _check(system, procs, deadline)
        start.start_at.value = time.time() + 0.2
        start.go.set()
        time.sleep(0.2)
        cpu_before = _cpu_seconds(pid)
        deadline = time.monotonic() + seconds + 120
        for _ in procs:
            while True:
                try:
                    latencies, lost = out.get(timeout=0.5)
                    break
                except queue_module.Empty:
                    _check(system, procs, deadline)
            samples.extend(latencies)
            result.lost += lost
        cpu_after = _cpu_seconds(pid)
    samples.sort()
    result.beats = len(samples)
    result.p50_ms = samples[len(samples) // 2] * 1000
    result.p99_ms = samples[int(len(samples) * 0.99)] * 1000
    if cpu_before is not None and cpu_after is not None:
        result.server_cpu_cores = (cpu_after - cpu_before) / seconds
    log.info("capacity %s: %s", system, result)
    return result


def _ladder(run: Callable[[int], Step], steps: Sequence[int]) -> Iterator[Step]:
    """The steps in order, up to and including the first that fails."""
    for clients in steps:
        result = run(clients)
        yield result
        if not result.passed:
            return


def run(url: str | None, *, steps: Sequence[int] = STEPS, seconds: float = 6.0, force: bool = False) -> Capacity:
    """The ladder for dsreg (in a throwaway MariaDB, or ``url``), then etcd, then ZooKeeper (private servers)."""
    report = Capacity()
    with bench.prepared(url, 1, force=force) as (db, version), ExitStack() as stack:
        params = pymysql_params(db)
        pid = _mariadb_pid(int(params["port"])) if params.get("host") in ("127.0.0.1", "localhost") else None
        report.steps += _ladder(lambda n: step("dsreg", _dsreg_driver, (params,), n, seconds, pid), steps)
        etcd = stack.enter_context(EtcdServer())
        host, port = etcd.endpoint
        report.steps += _ladder(lambda n: step("etcd", _etcd_driver, (host, port), n, seconds, etcd.pid), steps)
        etcd.stop()
        zk = stack.enter_context(ZooKeeperServer())
        report.steps += _ladder(lambda n: step("ZooKeeper", _zk_driver, (zk.hosts,), n, seconds, zk.pid), steps)
        report.server = f"{version}, etcd {etcd.version}, ZooKeeper {zk.version}"
    return report


def table(report: Capacity) -> list[str]:
    """The lines the CLI prints: every step, then the capacity of each system."""
    lines = [
        f"DolphinScheduler-shaped clients (a ~300-byte JSON every {BEAT_S:g} s); {report.server}; "
        f"a step passes at p99 <= {P99_LIMIT_MS:g} ms and no session lost",
        f"{'system':<10} {'clients':>7} {'beats':>7} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'server cores':>12}",
    ]
    for s in report.steps:
        cores = "-" if s.server_cpu_cores is None else f"{s.server_cpu_cores:.2f}"
        lines.append(
            f"{s.system:<10} {s.clients:>7} {s.beats:>7} {s.lost:>5} {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {cores:>12}"
            f"{'' if s.passed else '  fails'}"
        )
    for system in dict.fromkeys(s.system for s in report.steps):
        best = report.best(system)
        if best is None:
            lines.append(f"{system}: no step passed")
            continue
        per_k = "" if best.server_cpu_cores is None else f", {best.server_cpu_cores * 1000 / best.clients:.2f} "
        per_k += "server cores per 1,000 clients" if per_k else ""
        lines.append(f"{system}: capacity >= {best.clients} clients (p99 {best.p99_ms:.1f} ms{per_k})")
    return lines
