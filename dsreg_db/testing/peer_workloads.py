"""``dsreg bench --peers``: dsreg's heartbeat and keepalive next to etcd's and ZooKeeper's, in one table.

Why: "how does it compare with etcd or ZooKeeper" is the first question about a
registry inside MySQL, and absolute numbers from another machine do not answer
it. So one run starts a private etcd and ZooKeeper (dsreg_db.testing.peers) next
to the bench's MariaDB and drives each with the same client *processes* (one
connection each, :func:`dsreg_db.testing.bench.run_clients`, which also runs the
bench's own workloads), and every figure is a ratio to the raw single-row
``UPDATE`` measured in the same run (dsreg_db.testing.bench.compare).

Workloads (each client process owns one session or lease and one key):

* ``raw_update``, ``hb_json``, ``keepalive`` -- dsreg_db.testing.bench's baseline, heartbeat with a
  ~300-byte JSON value new every beat, and session keepalive with ``lease_tick_ms = 0``;
* ``etcd_put`` -- ``/v3/kv/put`` of such a value, attached to the client's lease;
* ``etcd_keepalive`` -- ``/v3/lease/keepalive`` of that lease;
* ``zk_set`` -- kazoo's ``set()`` of such a value on the client's ephemeral node.

etcd is driven through its JSON gRPC gateway over one keep-alive HTTP/1.1
connection per process (http.client; keys and values base64), not gRPC:
python-etcd3 is unmaintained and breaks with current protobuf. That adds the
gateway's hop inside etcd to every call, as PyMySQL's and kazoo's own work is
in theirs: these are the figures of these Python clients, on this machine.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import logging
from contextlib import ExitStack
from functools import partial
from typing import Any

from dsreg_db.errors import ServerNotFound
from dsreg_db.testing import bench
from dsreg_db.testing.bench import Extra, Report, Result
from dsreg_db.testing.peers import EtcdServer, ZooKeeperServer

log = logging.getLogger(__name__)

#: the workloads of bench itself, after its raw_update baseline
DSREG_WORKLOADS = ("hb_json", "keepalive")
#: every workload of the table, in its order
WORKLOADS = ("raw_update", *DSREG_WORKLOADS, "etcd_put", "etcd_keepalive", "zk_set")
#: workload: (the system it drives, what one call is)
LABELS: dict[str, tuple[str, str]] = {
    "raw_update": ("MariaDB", "UPDATE of one row per client, autocommit (the baseline)"),
    "hb_json": ("dsreg", "CALL dsreg_heartbeat, ~300-byte JSON value new every beat"),
    "keepalive": ("dsreg", "CALL dsreg_session_keepalive, lease_tick_ms 0: every call writes the lease"),
    "etcd_put": ("etcd", "put of a ~300-byte value new every beat, attached to a lease"),
    "etcd_keepalive": ("etcd", "lease keepalive"),
    "zk_set": ("ZooKeeper", "set() of a ~300-byte value new every beat on an ephemeral node"),
}
#: the lease and session timeout of every client (dsreg's bench sessions have 60 s too)
TTL_S = 60


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


class Gateway:
    """POSTs of JSON to etcd's gRPC gateway over one keep-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # one bytes body: http.client sends it with the headers in one segment (no Nagle/delayed-ACK stall)
        self.conn.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {response.status}: {raw[:500]!r}")
        data: dict[str, Any] = json.loads(raw)
        if "error" in data:  # a streaming call (keepalive) reports its error in the body
            raise RuntimeError(f"etcd {path}: {data['error']}")
        return data


def _etcd_worker(host: str, port: int, workload: str, index: int, seconds: float, start_at: float, queue: Any) -> None:
    etcd = Gateway(host, port)
    lease = etcd.post("/v3/lease/grant", {"TTL": TTL_S})["ID"]
    key = b64(f"/bench/{workload}/{index}")
    etcd.post("/v3/kv/put", {"key": key, "value": b64(bench.heartbeat_value(0)), "lease": lease})

    def put(n: int) -> None:
        etcd.post("/v3/kv/put", {"key": key, "value": b64(bench.heartbeat_value(n)), "lease": lease})

    def keepalive(n: int) -> None:
        result = etcd.post("/v3/lease/keepalive", {"ID": lease}).get("result", {})
        if int(result.get("TTL", 0)) <= 0:
            raise RuntimeError(f"etcd lease {lease} is gone: {result}")

    latencies = bench.timed(put if workload == "etcd_put" else keepalive, seconds, start_at)
    etcd.post("/v3/lease/revoke", {"ID": lease})  # its key goes with it
    etcd.conn.close()
    queue.put(latencies)


def _zk_worker(hosts: str, index: int, seconds: float, start_at: float, queue: Any) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=TTL_S)
    zk.start(timeout=30)
    try:
        path = f"/bench/zk_set/{index}"
        zk.create(path, bench.heartbeat_value(0).encode(), ephemeral=True, makepath=True)
        latencies = bench.timed(lambda n: zk.set(path, bench.heartbeat_value(n).encode()), seconds, start_at)
    finally:
        zk.stop()  # closes the session: the ephemeral node goes
        zk.close()
    queue.put(latencies)


def _etcd(server: EtcdServer, workload: str, clients: int, seconds: float) -> Result:
    host, port = server.endpoint
    return bench.run_clients(workload, _etcd_worker, (host, port, workload), clients, seconds)


def _zk(server: ZooKeeperServer, clients: int, seconds: float) -> Result:
    return bench.run_clients("zk_set", _zk_worker, (server.hosts,), clients, seconds)


def run(
    url: str | None,
    *,
    clients: int = 16,
    seconds: float = 5.0,
    rounds: int = 1,
    probe_script: str | None = None,
    force: bool = False,
) -> Report:
    """Every workload of :data:`WORKLOADS`, ``rounds`` times over (the best of each kept), with the
    procedures of ``probe_script`` after dsreg's (dsreg_db.testing.probes); etcd and ZooKeeper run
    privately for the length of the call.

    With ``url``: dsreg's workloads run in that database, refused unless it is disposable or ``force``
    (dsreg_db.testing.target); else in a throwaway MariaDB as ``dsreg bench`` does."""
    if importlib.util.find_spec("kazoo") is None:
        raise ServerNotFound("kazoo, the ZooKeeper client, is not installed: pip install kazoo (or dsreg-db[test])")
    with ExitStack() as stack:
        etcd = stack.enter_context(EtcdServer())
        zk = stack.enter_context(ZooKeeperServer())
        extra = [
            Extra("etcd_put", partial(_etcd, etcd, "etcd_put")),
            Extra("etcd_keepalive", partial(_etcd, etcd, "etcd_keepalive")),
            Extra("zk_set", partial(_zk, zk)),
        ]
        report = bench.compare(
            url,
            extra,
            workloads=DSREG_WORKLOADS,
            probe_script=probe_script,
            clients=clients,
            seconds=seconds,
            rounds=rounds,
            force=force,
        )
    report.server = f"{report.server}, etcd {etcd.version}, ZooKeeper {zk.version}"
    return report


def table(report: Report) -> list[str]:
    """The lines of the report's table (the CLI prints them)."""
    results = report.results
    head = (
        f"{results[0].clients if results else 0} client processes, {results[0].seconds if results else 0:g} s "
        f"per workload; {report.server}; x raw = ops/s / raw_update's ops/s in this run"
    )
    probes = {r.workload: ("probe", f"CALL {r.workload}, from the --probes file") for r in results}
    return [head, *bench.ratio_table(report, {**probes, **LABELS})]


#: a bar's colour in the chart, by system (probes: those of a --probes file)
_COLOURS = {
    "MariaDB": "tab:gray",
    "dsreg": "tab:blue",
    "probe": "tab:cyan",
    "etcd": "tab:green",
    "ZooKeeper": "tab:orange",
}


def write_chart(report: Report, path: str) -> None:
    """PNG of one peers run: each workload's ops/s as a ratio to the raw UPDATE, and its p50 and p99,
    coloured by system. Drawn from the report alone, so ``bench.read_json`` of a run's JSON redraws it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    results = report.results
    base = results[0].ops_per_s if results else 0.0
    systems = [LABELS.get(r.workload, ("probe", ""))[0] for r in results]
    colours = [_COLOURS.get(s, "tab:purple") for s in systems]
    ys = list(range(len(results)))[::-1]  # the table's order, top to bottom
    names = [r.workload for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(results) + 1.8), sharey=True)
    left.barh(ys, [r.ops_per_s / base if base else 0.0 for r in results], color=colours)
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set(xlabel="ops/s as a ratio to raw_update in this run", title="throughput")
    left.set_yticks(ys, names)
    left.grid(True, axis="x", alpha=0.3)
    right.barh([y + 0.2 for y in ys], [r.p50_ms for r in results], height=0.4, color=colours, alpha=0.55)
    right.barh([y - 0.2 for y in ys], [r.p99_ms for r in results], height=0.4, color=colours)
    right.set(xlabel="ms per call (pale: p50, dark: p99)", title="latency")
    right.grid(True, axis="x", alpha=0.3)
    seen = dict.fromkeys(systems)
    left.legend(handles=[Patch(color=_COLOURS.get(s, "tab:purple"), label=s) for s in seen], loc="lower right")
    clients = results[0].clients if results else 0
    fig.suptitle(f"dsreg bench --peers, {clients} clients: {report.server}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
