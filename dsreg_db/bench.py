"""``dsreg bench``: throughput and latency of the hot paths, as ratios to a baseline in the same run.

Absolute numbers are not comparable between machines (or between two runs on
a noisy one), so every figure is printed next to a baseline measured in the
same process against the same server: a raw single-row ``UPDATE`` of one row
per client. Load comes from worker *processes* (one connection each, plain
PyMySQL without CLIENT_FOUND_ROWS), so the Python GIL does not cap it.

Workloads (each client owns one session and one node):

* ``raw_update``  -- ``UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = ?`` (baseline)
* ``raw_hot``     -- the same UPDATE, every client on one shared row: the ceiling of any design that
  orders commits through one locked row, as the 'revision' counter does for node changes
* ``hb_same``     -- ``CALL dsreg_heartbeat`` with an unchanged value: read-only while the lease
  already reaches this 'lease_tick_ms' tick's end (beats back to back: all but about one per tick)
* ``hb_lease``    -- the same with ``lease_tick_ms = 0``: every beat writes the lease (what a
  session beating less often than once per tick costs per beat)
* ``hb_change``   -- ``CALL dsreg_heartbeat`` with a new value each beat (node + change event)
* ``client_txn``  -- the heartbeat's work as a client-side transaction: ``SELECT ... FOR UPDATE``,
  ``UPDATE``, ``INSERT ... ON DUPLICATE KEY UPDATE``, ``COMMIT`` (what DolphinScheduler-style
  clients do, one round trip per statement)
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from dsreg_db import migrate
from dsreg_db.registry import Registry
from dsreg_db.server import LocalServer
from dsreg_db.urls import pymysql_params
from dsreg_db.watch import WatchEvent

WORKLOADS = ("raw_update", "raw_hot", "hb_same", "hb_lease", "hb_change", "client_txn")
#: the workloads of the throughput-vs-clients sweep
SWEEP_WORKLOADS = ("raw_update", "hb_same", "hb_lease", "hb_change")


@dataclass
class Result:
    workload: str
    clients: int
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds


@dataclass
class Report:
    server: str
    results: list[Result] = field(default_factory=list)
    sweep: list[Result] = field(default_factory=list)  # throughput by number of clients
    watch_p50_ms: float | None = None
    watch_p99_ms: float | None = None
    watch_poll_ms: float | None = None
    reap_ms: dict[str, float] = field(default_factory=dict)  # one reap (nothing expired) by live sessions
    idle_p99_ms: float | None = None  # heartbeat p99 with nothing expiring ...
    storm_p99_ms: float | None = None  # ... and while a batch of sessions expires at once
    storm_sessions: int = 0
    kill_removed_s: float | None = None  # SIGKILLed client's node gone after (ttl 3 s)
    ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("results", "sweep"):
            for r, d in zip(getattr(self, key), out[key], strict=True):
                d["ops_per_s"] = round(r.ops_per_s, 1)
        return out


def _connect(params: dict[str, Any]) -> pymysql.Connection:
    return pymysql.connect(autocommit=True, **params)


def _worker(params: dict[str, Any], workload: str, index: int, seconds: float, start_at: float, queue: Any) -> None:
    conn = _connect(params)
    cur = conn.cursor()
    cur.execute("CALL dsreg_session_open(%s, 60000, @s, @t)", (f"bench-{index}",))
    cur.execute("SELECT @s, @t")
    sid, token = cur.fetchone()  # type: ignore[misc]
    path = f"/bench/{workload}/{index}"
    cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, "0"))

    def raw_update(n: int) -> None:
        cur.execute("UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = %s", (index,))

    def raw_hot(n: int) -> None:
        cur.execute("UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = 1")

    def hb_same(n: int) -> None:
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, "0"))

    def hb_change(n: int) -> None:
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, str(n)))

    def client_txn(n: int) -> None:
        cur.execute("START TRANSACTION")
        cur.execute("SELECT ttl_ms FROM dsreg_session WHERE id = %s FOR UPDATE", (sid,))
        cur.execute(
            "UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND WHERE id = %s",
            (sid,),
        )
        cur.execute(
            "INSERT INTO dsreg_node (path, value, session_id, version, create_rev, mod_rev) "
            "VALUES (%s, %s, %s, 1, 0, 0) ON DUPLICATE KEY UPDATE value = VALUES(value)",
            (path, "0", sid),
        )
        cur.execute("COMMIT")

    op: Callable[[int], None] = {
        "raw_update": raw_update,
        "raw_hot": raw_hot,
        "hb_same": hb_same,
        "hb_lease": hb_same,  # run() sets lease_tick_ms = 0 around it
        "hb_change": hb_change,
        "client_txn": client_txn,
    }[workload]
    while time.time() < start_at:
        time.sleep(0.001)
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    n = 0
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        op(n)
        latencies.append(time.perf_counter() - t0)
        n += 1
    cur.execute("CALL dsreg_session_close(%s, %s)", (sid, token))
    conn.close()
    queue.put(latencies)


@contextmanager
def lease_tick(url: str, ms: int | None) -> Iterator[None]:
    """Run with the 'lease_tick_ms' setting at ``ms`` (None: leave it), restored afterwards."""
    if ms is None:
        yield
        return
    with _connect(pymysql_params(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms'")
        (saved,) = cur.fetchone()  # type: ignore[misc]
        cur.execute("UPDATE dsreg_setting SET value = %s WHERE name = 'lease_tick_ms'", (ms,))
        try:
            yield
        finally:
            cur.execute("UPDATE dsreg_setting SET value = %s WHERE name = 'lease_tick_ms'", (saved,))


def run_workload(url: str, workload: str, clients: int, seconds: float) -> Result:
    with lease_tick(url, 0 if workload == "hb_lease" else None):
        return _run_workload(url, workload, clients, seconds)


def _run_workload(url: str, workload: str, clients: int, seconds: float) -> Result:
    params = pymysql_params(url)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0 + 0.05 * clients  # every process connected and ready before the clock starts
    procs = [
        ctx.Process(target=_worker, args=(params, workload, i + 1, seconds, start_at, queue)) for i in range(clients)
    ]
    for p in procs:
        p.start()
    samples: list[float] = []
    for _ in procs:
        samples.extend(queue.get(timeout=seconds + 120))
    for p in procs:
        p.join()
    samples.sort()
    return Result(
        workload,
        clients,
        len(samples),
        seconds,
        statistics.median(samples) * 1000,
        samples[int(len(samples) * 0.99)] * 1000,
    )


def watch_delay(url: str, seconds: float, poll: float = 0.25) -> tuple[float, float]:
    """p50/p99 of (delivery to a subscriber) - (just before the writer's CALL), milliseconds."""
    delays: list[float] = []

    def listener(event: WatchEvent) -> None:
        delays.append(time.time() - float(event.value))

    with Registry(url, poll_interval=poll) as watcher, Registry(url) as writer:
        watcher.subscribe("/bench/watch", listener)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            writer.put("/bench/watch/clock", repr(time.time()))
            time.sleep(0.013)  # deliberately not a divisor of the poll interval
        time.sleep(poll * 2)
    delays.sort()
    return statistics.median(delays) * 1000, delays[int(len(delays) * 0.99)] * 1000


def _insert_sessions(cur: Any, owner: str, n: int, expires_in_ms: int) -> None:
    """n sessions straight into the table (the benchmark owns the database), in batches."""
    for start in range(0, n, 5000):
        rows = [(owner, expires_in_ms) for _ in range(start, min(n, start + 5000))]
        cur.executemany(
            "INSERT INTO dsreg_session (token_hash, owner, ttl_ms, created_at, expires_at) VALUES "
            "(UNHEX(SHA2(RAND(), 256)), %s, 60000, UTC_TIMESTAMP(6), "
            "UTC_TIMESTAMP(6) + INTERVAL %s * 1000 MICROSECOND)",
            rows,
        )


def reap_scaling(url: str, sizes: tuple[int, ...] = (1000, 100_000), repeats: int = 15) -> dict[str, float]:
    """Median time of one dsreg_reap with nothing expired, at each number of live sessions (ms)."""
    out: dict[str, float] = {}
    with _connect(pymysql_params(url)) as conn, conn.cursor() as cur:
        inserted = 0
        for size in sizes:
            _insert_sessions(cur, "bench-reap", size - inserted, 3_600_000)
            inserted = size
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                cur.execute("CALL dsreg_reap(@r)")
                times.append(time.perf_counter() - t0)
            out[str(size)] = statistics.median(times) * 1000
        cur.execute("DELETE FROM dsreg_session WHERE owner = 'bench-reap'")
    return out


def expiry_storm(url: str, sessions: int, seconds: float, clients: int = 8) -> tuple[float, float]:
    """Heartbeat p99 (ms) with nothing expiring, then while ``sessions`` leases run out at once."""
    idle = run_workload(url, "hb_same", clients, seconds)
    with _connect(pymysql_params(url)) as conn, conn.cursor() as cur:
        # the leases end a third into the measured window (its processes take 1 s + 50 ms each to line up)
        _insert_sessions(cur, "bench-storm", sessions, int((1.0 + 0.05 * clients + seconds / 3) * 1000))
    storm = run_workload(url, "hb_same", clients, seconds)
    with _connect(pymysql_params(url)) as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 60
        while True:
            cur.execute("SELECT COUNT(*) FROM dsreg_session WHERE owner = 'bench-storm'")
            (left,) = cur.fetchone()  # type: ignore[misc]
            if not left:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{left} of {sessions} expired sessions were not reaped within 60 s")
            time.sleep(0.1)
    return idle.p99_ms, storm.p99_ms


def kill_detection(url: str, ttl: float = 3.0) -> float:
    """Seconds from SIGKILL of a heartbeating client process until its node is gone."""
    import os
    import signal
    import subprocess
    import sys

    from dsreg_db.client import Client
    from dsreg_db.sqlobjects import ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "dsreg_db.demo_node", url, "bench", "victim:1", str(ttl)], env=env)
    client = Client(url)
    try:
        deadline = time.monotonic() + 60
        while client.get("/nodes/bench/victim:1") is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the client never registered")
            time.sleep(0.05)
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        while client.get("/nodes/bench/victim:1") is not None:
            time.sleep(0.02)
        return time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
        client.dispose()


@contextmanager
def target(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with LocalServer() as server:  # default durability: innodb_flush_log_at_trx_commit=1
        yield server.create_database("dsreg_bench")


def run(
    url: str | None,
    *,
    clients: int = 16,
    seconds: float = 5.0,
    out: Callable[[str], None] = print,
    workloads: tuple[str, ...] = WORKLOADS,
    reap_sizes: tuple[int, ...] = (1000, 100_000),
    storm_sessions: int = 10_000,
    sweep: tuple[int, ...] = (),
) -> Report:
    """The whole benchmark; ``sweep`` also measures throughput at each of those numbers of clients."""
    with target(url) as db:
        migrate.upgrade(db)
        with _connect(pymysql_params(db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()  # type: ignore[misc]
            cur.execute("DROP TABLE IF EXISTS dsreg_bench_raw")
            cur.execute("CREATE TABLE dsreg_bench_raw (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB")
            rows = max((clients, *sweep))
            cur.executemany("INSERT INTO dsreg_bench_raw VALUES (%s, 0)", [(i + 1,) for i in range(rows)])
        report = Report(server=str(version))
        try:
            for workload in workloads:
                result = run_workload(db, workload, clients, seconds)
                report.results.append(result)
                out(
                    f"{workload:<11} {clients:>3} clients  {result.ops_per_s:>9.0f} ops/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                )
            for n in sweep:
                for workload in SWEEP_WORKLOADS:
                    result = run_workload(db, workload, n, seconds)
                    report.sweep.append(result)
                    out(f"sweep {workload:<11} {n:>3} clients  {result.ops_per_s:>9.0f} ops/s")
            p50, p99 = watch_delay(db, seconds)
            report.watch_p50_ms, report.watch_p99_ms, report.watch_poll_ms = p50, p99, 250.0
            out(f"watch delivery after commit: p50 {p50:.0f} ms, p99 {p99:.0f} ms (poll interval 250 ms)")
            report.reap_ms = reap_scaling(db, reap_sizes)
            out("one reap, nothing expired: " + ", ".join(f"{k} live {v:.2f} ms" for k, v in report.reap_ms.items()))
            report.idle_p99_ms, report.storm_p99_ms = expiry_storm(db, storm_sessions, seconds)
            report.storm_sessions = storm_sessions
            out(
                f"heartbeat p99: idle {report.idle_p99_ms:.2f} ms, while {storm_sessions} sessions expire "
                f"{report.storm_p99_ms:.2f} ms"
            )
            report.kill_removed_s = kill_detection(db)
            out(
                f"SIGKILLed client's node removed after {report.kill_removed_s:.2f} s "
                "(bound: ttl 3 s + reaper 1 s + 0.5 s)"
            )
        finally:
            with _connect(pymysql_params(db)) as conn, conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS dsreg_bench_raw")
    by = {r.workload: r.ops_per_s for r in report.results}
    if "raw_update" in by:
        for name in ("raw_hot", "hb_same", "hb_lease", "hb_change"):
            if name in by:
                report.ratios[f"{name}/raw_update"] = by[name] / by["raw_update"]
    if "hb_same" in by and "client_txn" in by:
        report.ratios["hb_same/client_txn"] = by["hb_same"] / by["client_txn"]
    sizes = [str(n) for n in reap_sizes]
    if len(sizes) == 2:
        report.ratios[f"reap_{sizes[1]}/reap_{sizes[0]}"] = report.reap_ms[sizes[1]] / report.reap_ms[sizes[0]]
    if report.idle_p99_ms and report.storm_p99_ms:
        report.ratios["storm_p99/idle_p99"] = report.storm_p99_ms / report.idle_p99_ms
    for name, ratio in report.ratios.items():
        out(f"ratio {name:<20} {ratio:5.2f}")
    return report


def read_json(path: str) -> Report:
    """A report written by write_json (to redraw its chart)."""
    with open(path) as f:
        data = json.load(f)
    fields = {f.name for f in Result.__dataclass_fields__.values()}
    for key in ("results", "sweep"):
        data[key] = [Result(**{k: v for k, v in r.items() if k in fields}) for r in data.get(key, [])]
    return Report(**data)


def write_json(report: Report, path: str) -> None:
    with open(path, "w") as f:
        json.dump(report.as_dict(), f, indent=2)


def write_chart(report: Report, path: str) -> None:
    """PNG: throughput against clients (the sweep) and p50/p99 latency of each workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for workload in SWEEP_WORKLOADS:
        points = sorted((r.clients, r.ops_per_s) for r in report.sweep if r.workload == workload)
        if points:
            left.plot(*zip(*points, strict=True), marker="o", label=workload)
    left.set(xlabel="client processes", ylabel="calls / s", title="throughput by clients")
    left.set_xscale("log", base=2)
    counts = sorted({r.clients for r in report.sweep})
    if counts:
        left.set_xticks(counts, [str(n) for n in counts])
    left.grid(True, alpha=0.3)
    left.legend()
    names = [r.workload for r in report.results]
    xs = range(len(names))
    right.bar([x - 0.2 for x in xs], [r.p50_ms for r in report.results], width=0.4, label="p50")
    right.bar([x + 0.2 for x in xs], [r.p99_ms for r in report.results], width=0.4, label="p99")
    clients = report.results[0].clients if report.results else 0
    right.set(ylabel="ms per call", title=f"latency, {clients} clients")
    right.set_xticks(list(xs), names)
    right.grid(True, axis="y", alpha=0.3)
    right.legend()
    fig.suptitle(f"dsreg bench on {report.server}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
