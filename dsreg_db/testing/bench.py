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

Two more, for the comparison with etcd and ZooKeeper (``dsreg bench --peers``:
:func:`compare`, dsreg_db.testing.peer_workloads), which runs its other systems' workloads
on the same client processes (:func:`run_clients`, :func:`timed`):

* ``hb_json``     -- ``CALL dsreg_heartbeat`` with a ~300-byte JSON value like DolphinScheduler's
  heartbeat, new every beat (:func:`heartbeat_value`)
* ``keepalive``   -- ``CALL dsreg_session_keepalive`` with ``lease_tick_ms = 0``: every call writes the lease
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import pymysql

from dsreg_db import driver
from dsreg_db.ops.progress import progress
from dsreg_db.registry import Registry
from dsreg_db.schema import migrate
from dsreg_db.testing import probes
from dsreg_db.testing.server import LocalServer
from dsreg_db.testing.target import Footprint, borrowed
from dsreg_db.urls import pymysql_params
from dsreg_db.watch import WatchEvent

WORKLOADS = ("raw_update", "raw_hot", "hb_same", "hb_lease", "hb_change", "client_txn")
#: the workloads of the throughput-vs-clients sweep
SWEEP_WORKLOADS = ("raw_update", "hb_same", "hb_lease", "hb_change")
#: the persistent node watch_delay writes
WATCH_PATH = "/bench/watch/clock"
#: what a run leaves in a user's database, removed again afterwards: the sessions of the workers
#: (bench-N), of the bulk inserts (bench-reap, bench-storm), of the churners (bench-churn) and of the
#: SIGKILLed client (bench@victim:1), the watch node and the raw-UPDATE table
FOOTPRINT = Footprint("bench", owners=("bench-%", "bench@%"), persistent=(WATCH_PATH,), tables=("dsreg_bench_raw",))


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
    churn_opened_per_s: float | None = None  # 1 s sessions opened (never closed) by churning clients ...
    churn_reaped_per_s: float | None = None  # ... sessions reaped meanwhile (event and opens together)
    churn_kill_removed_s: float | None = None  # SIGKILLed client's node gone after, during that churn
    ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("results", "sweep"):
            for r, d in zip(getattr(self, key), out[key], strict=True):
                d["ops_per_s"] = round(r.ops_per_s, 1)
        return out


def _connect(params: dict[str, Any]) -> pymysql.Connection:
    return driver.connect(autocommit=True, **params)


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

    def hb_json(n: int) -> None:
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, path, heartbeat_value(n)))

    def keepalive(n: int) -> None:
        cur.execute("CALL dsreg_session_keepalive(%s, %s)", (sid, token))

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

    def probe(n: int) -> None:  # a procedure of a --probes file (dsreg_db.testing.probes), SHAPE:NAME
        if shape == "heartbeat":
            cur.execute(f"CALL `{name}`(%s, %s, %s, %s)", (sid, token, path, heartbeat_value(n)))
        else:
            cur.execute(f"CALL `{name}`(%s, %s)", (sid, token))

    shape, _, name = workload.partition(":")
    op: Callable[[int], None] = (
        probe
        if name
        else {
            "raw_update": raw_update,
            "raw_hot": raw_hot,
            "hb_same": hb_same,
            "hb_lease": hb_same,  # run() sets lease_tick_ms = 0 around it
            "hb_change": hb_change,
            "client_txn": client_txn,
            "hb_json": hb_json,
            "keepalive": keepalive,  # run() sets lease_tick_ms = 0 around it
        }[workload]
    )
    latencies = timed(op, seconds, start_at)
    cur.execute("CALL dsreg_session_close(%s, %s)", (sid, token))
    conn.close()
    queue.put(latencies)


def heartbeat_value(n: int) -> str:
    """Beat ``n``'s value: a ~300-byte JSON like a DolphinScheduler worker's heartbeat, never the previous one."""
    return json.dumps(
        {
            "startupTime": 1700000000000,
            "reportTime": int(time.time() * 1000),
            "cpuUsage": n * 37 % 1000 / 1000,  # 37 and 1000 coprime: beat n and n + 1 differ
            "memoryUsage": 0.42,
            "jvmMemoryUsage": 0.31,
            "diskUsage": 0.57,
            "availablePhysicalMemorySize": 6.12,
            "serverStatus": "NORMAL",
            "processId": os.getpid(),
            "host": "127.0.0.1",
            "port": 1234,
            "workerHostWeight": 100,
            "threadPoolUsage": n % 100,
            "workerGroup": "default",
        },
        separators=(",", ":"),
    )


def timed(op: Callable[[int], object], seconds: float, start_at: float) -> list[float]:
    """At ``start_at`` (time.time()), call ``op(0)``, ``op(1)``, ... back to back for ``seconds``:
    each call's latency in seconds. The measuring loop of every client process."""
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
    return latencies


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
    with lease_tick(url, 0 if workload in ("hb_lease", "keepalive") else None):
        return run_clients(workload, _worker, (pymysql_params(url), workload), clients, seconds)


def run_probe(url: str, name: str, shape: str, clients: int, seconds: float) -> Result:
    """Probe procedure ``name`` (dsreg_db.testing.probes) as a workload, called as ``hb_json`` calls the
    heartbeat (``shape`` "heartbeat") or as ``keepalive`` calls the keepalive, ``lease_tick_ms = 0`` too."""
    with lease_tick(url, 0 if shape == "keepalive" else None):
        return run_clients(name, _worker, (pymysql_params(url), f"{shape}:{name}"), clients, seconds)


@contextmanager
def running(procs: Sequence[multiprocessing.process.BaseProcess]) -> Iterator[None]:
    """Start ``procs`` for the block and wait for them at its end; whatever happens, none is left running."""
    try:
        for p in procs:
            p.start()
        yield
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join()


def run_clients(
    workload: str, worker: Callable[..., None], args: tuple[Any, ...], clients: int, seconds: float
) -> Result:
    """``clients`` processes, each ``worker(*args, index, seconds, start_at, queue)`` (index from 1):
    set up, then :func:`timed` from ``start_at``, then put the latencies on ``queue``. Their Result.
    A process that dies fails the run at once; none is left running, whatever happens."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0 + 0.05 * clients  # every process connected and ready before the clock starts
    procs = [ctx.Process(target=worker, args=(*args, i + 1, seconds, start_at, queue)) for i in range(clients)]
    samples: list[float] = []
    with running(procs):
        deadline = time.monotonic() + seconds + 120
        for _ in procs:
            while True:
                try:
                    samples.extend(queue.get(timeout=0.5))
                    break
                except queue_module.Empty:
                    died = [(i + 1, p.exitcode) for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
                    if died:
                        number, code = died[0]
                        raise RuntimeError(f"{workload}: client process {number} exited with {code}") from None
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{workload}: a client process did not finish") from None
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
            writer.put(WATCH_PATH, repr(time.time()))
            time.sleep(0.013)  # deliberately not a divisor of the poll interval
        time.sleep(poll * 2)
    delays.sort()
    return statistics.median(delays) * 1000, delays[int(len(delays) * 0.99)] * 1000


def _insert_sessions(cur: Any, owner: str, n: int, expires_in_ms: int) -> None:
    """n sessions straight into the table, in batches (deleted again by their owner)."""
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
    import signal
    import subprocess
    import sys

    from dsreg_db.client import Client

    proc = subprocess.Popen([sys.executable, "-m", "dsreg_db.testing.demo_node", url, "bench", "victim:1", str(ttl)])
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


def _churner(params: dict[str, Any], seconds: float, start_at: float, queue: Any) -> None:
    """Open 1 s sessions back to back and abandon them (a crash-looping fleet); count opens and 45006."""
    conn = _connect(params)
    cur = conn.cursor()
    opened = refused = 0
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < start_at + seconds:
        try:
            cur.execute("CALL dsreg_session_open('bench-churn', 1000, @s, @t)")
            opened += 1
        except pymysql.err.MySQLError as exc:
            if exc.args[0] == 1213:  # a lock conflict, rolled back: retried, as every client does
                continue
            if exc.args[0] & 0xFFFF != 45006:  # PyMySQL reads the error number as signed 16-bit
                raise
            refused += 1
    conn.close()
    queue.put((opened, refused))


def churn(url: str, seconds: float, clients: int = 8) -> tuple[float, float, float]:
    """While ``clients`` processes open 1 s sessions as fast as they can (up to the account's
    limit), a heartbeating client is SIGKILLed: opens/s, reaps/s, and its node's removal delay."""
    params = pymysql_params(url)
    with _connect(params) as conn, conn.cursor() as cur:
        cur.execute("SELECT expired FROM dsreg_reaper")
        (expired_before,) = cur.fetchone()  # type: ignore[misc]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0 + 0.05 * clients
    procs = [ctx.Process(target=_churner, args=(params, seconds, start_at, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()) + min(2.0, seconds / 4))  # the churn is under way
    removed_s = kill_detection(url)
    counts = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    with _connect(params) as conn, conn.cursor() as cur:
        cur.execute("SELECT expired FROM dsreg_reaper")
        (expired_after,) = cur.fetchone()  # type: ignore[misc]
        deadline = time.monotonic() + 60
        while True:  # leave no backlog to the next measurement
            cur.execute("SELECT COUNT(*) FROM dsreg_session WHERE owner = 'bench-churn'")
            (left,) = cur.fetchone()  # type: ignore[misc]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        cur.execute("DELETE FROM dsreg_session WHERE owner = 'bench-churn'")
    opened = sum(c[0] for c in counts)
    return opened / seconds, (expired_after - expired_before) / seconds, removed_s


@contextmanager
def target(url: str | None, footprint: Footprint = FOOTPRINT, *, force: bool = False) -> Iterator[str]:
    """A throwaway server's database; with ``url``, that database if it is disposable (or ``force``),
    with what ``footprint`` names removed afterwards (dsreg_db.testing.target)."""
    if url:
        with borrowed(url, footprint, force=force) as db:
            yield db
        return
    with LocalServer() as server:  # default durability: innodb_flush_log_at_trx_commit=1
        yield server.create_database("dsreg_bench")


@contextmanager
def prepared(url: str | None, rows: int, *, force: bool = False) -> Iterator[tuple[str, str]]:
    """The :func:`target` database, migrated, with the raw-UPDATE table of ``rows`` rows (dropped
    again afterwards): (its URL, the server's version)."""
    with target(url, force=force) as db:
        migrate.upgrade(db)
        with _connect(pymysql_params(db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()  # type: ignore[misc]
            cur.execute("DROP TABLE IF EXISTS dsreg_bench_raw")
            cur.execute("CREATE TABLE dsreg_bench_raw (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB")
            cur.executemany("INSERT INTO dsreg_bench_raw VALUES (%s, 0)", [(i + 1,) for i in range(rows)])
        try:
            yield db, str(version)
        finally:
            with _connect(pymysql_params(db)) as conn, conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS dsreg_bench_raw")


@dataclass(frozen=True)
class Extra:
    """A workload of another module, measured next to this one's (dsreg_db.testing.peer_workloads):
    ``run(clients, seconds)`` measures it, e.g. with :func:`run_clients`."""

    name: str
    run: Callable[[int, float], Result]


def compare(
    url: str | None,
    extra: Sequence[Extra] = (),
    *,
    workloads: tuple[str, ...] = (),
    probe_script: str | None = None,
    clients: int = 16,
    seconds: float = 5.0,
    rounds: int = 1,
    force: bool = False,
) -> Report:
    """``raw_update`` (the baseline), then ``workloads`` of this module, then the procedures that
    ``probe_script`` creates (dsreg_db.testing.probes), then each of ``extra``, all with ``clients``
    processes for ``seconds``; that sequence ``rounds`` times over, each workload's best round kept
    (one system's slow moment then costs another round, not the comparison); ratios of each one's
    ops/s to the baseline's (``NAME/raw_update``).

    With ``url``: refused unless the database is disposable or ``force`` (dsreg_db.testing.target)."""
    with ExitStack() as stack:
        db, version = stack.enter_context(prepared(url, clients, force=force))
        report = Report(server=version)
        runs: list[tuple[str, Callable[[int, float], Result]]]
        runs = [(w, partial(run_workload, db, w)) for w in ("raw_update", *workloads)]
        shapes = stack.enter_context(probes.loaded(db, probe_script)) if probe_script else {}
        runs += [(name, partial(run_probe, db, name, shape)) for name, shape in shapes.items()]
        runs += [(x.name, x.run) for x in extra]
        report.results = best_rounds(runs, rounds, clients, seconds)
    base = report.results[0].ops_per_s
    for r in report.results[1:]:
        report.ratios[f"{r.workload}/raw_update"] = r.ops_per_s / base
    return report


def best_rounds(
    runs: Sequence[tuple[str, Callable[[int, float], Result]]], rounds: int, clients: int, seconds: float
) -> list[Result]:
    """Each of ``runs`` (name, measure) measured with ``clients`` for ``seconds``, the whole sequence
    ``rounds`` times over: the best round of each (most ops/s), in the order of ``runs``. Two runs of
    one name are a ValueError (a probe named like a workload would merge with it)."""
    names = [name for name, _ in runs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"two workloads named {', '.join(twice)}: rename the probe")
    best: dict[str, Result] = {}
    for turn in range(rounds):
        for name, measure in runs:
            progress(f"bench: {name} with {clients} clients for {seconds:g} s (round {turn + 1} of {rounds})")
            result = measure(clients, seconds)
            if name not in best or result.ops_per_s > best[name].ops_per_s:
                best[name] = result
    return [best[name] for name in names]


def ratio_table(report: Report, labels: Mapping[str, tuple[str, str]]) -> list[str]:
    """The lines of one table of ``report``'s results: system, workload, ops/s, ratio to the first
    result (the baseline), p50 and p99; ``labels`` maps a workload to (its system, what it does)."""
    rows = [("system", "workload", "ops/s", "x raw", "p50 ms", "p99 ms", "what")]
    base = report.results[0].ops_per_s if report.results else 0.0
    for r in report.results:
        system, what = labels.get(r.workload, ("", ""))
        ratio = f"{r.ops_per_s / base:.2f}" if base else "-"
        rows.append((system, r.workload, f"{r.ops_per_s:.0f}", ratio, f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", what))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:6], widths[2:], strict=True)]
        lines.append("  ".join([*cells, row[6]]).rstrip())
    return lines


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
    churn_seconds: float = 12.0,
    force: bool = False,
) -> Report:
    """The whole benchmark; ``sweep`` also measures throughput at each of those numbers of clients.

    With ``url``: refused unless the database is disposable or ``force`` (dsreg_db.testing.target)."""
    with prepared(url, max((clients, *sweep)), force=force) as (db, version):
        report = Report(server=version)
        for workload in workloads:
            progress(f"bench: {workload} with {clients} clients for {seconds:g} s")
            result = run_workload(db, workload, clients, seconds)
            report.results.append(result)
            out(
                f"{workload:<11} {clients:>3} clients  {result.ops_per_s:>9.0f} ops/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            )
        for n in sweep:
            for workload in SWEEP_WORKLOADS:
                progress(f"bench: sweep {workload} with {n} clients for {seconds:g} s")
                result = run_workload(db, workload, n, seconds)
                report.sweep.append(result)
                out(f"sweep {workload:<11} {n:>3} clients  {result.ops_per_s:>9.0f} ops/s")
        progress(f"bench: watch delivery delay for {seconds:g} s")
        p50, p99 = watch_delay(db, seconds)
        report.watch_p50_ms, report.watch_p99_ms, report.watch_poll_ms = p50, p99, 250.0
        out(f"watch delivery after commit: p50 {p50:.0f} ms, p99 {p99:.0f} ms (poll interval 250 ms)")
        progress(f"bench: one reap among {reap_sizes} live sessions")
        report.reap_ms = reap_scaling(db, reap_sizes)
        out("one reap, nothing expired: " + ", ".join(f"{k} live {v:.2f} ms" for k, v in report.reap_ms.items()))
        progress(f"bench: heartbeats while {storm_sessions} sessions expire")
        report.idle_p99_ms, report.storm_p99_ms = expiry_storm(db, storm_sessions, seconds)
        report.storm_sessions = storm_sessions
        out(
            f"heartbeat p99: idle {report.idle_p99_ms:.2f} ms, while {storm_sessions} sessions expire "
            f"{report.storm_p99_ms:.2f} ms"
        )
        progress("bench: time to drop a SIGKILLed client")
        report.kill_removed_s = kill_detection(db)
        out(
            f"SIGKILLed client's node removed after {report.kill_removed_s:.2f} s (bound: ttl 3 s + reaper 1 s + 0.5 s)"
        )
        progress(f"bench: session churn for {churn_seconds:g} s")
        churned = churn(db, churn_seconds)
        report.churn_opened_per_s, report.churn_reaped_per_s, report.churn_kill_removed_s = churned
        out(
            f"churn: 1 s sessions opened {churned[0]:.0f}/s, reaped {churned[1]:.0f}/s; SIGKILLed "
            f"client's node removed after {churned[2]:.2f} s meanwhile (bound: ttl 3 s + tick + 1.5 s)"
        )
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
    if report.churn_opened_per_s and report.churn_reaped_per_s is not None:
        report.ratios["churn_reaped/opened"] = report.churn_reaped_per_s / report.churn_opened_per_s
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
