"""``dsreg doctor`` on a cluster (issue 18): a line per node (Galera state, the dsreg events there, the
event scheduler, the reaper's last run), a verdict on who reaps, and a FAIL line for a node that does
not answer. The first test needs only the suite's private server; the others a real 3-node Galera
cluster on loopback (``-m slow``; galera-4 and rsync)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator

import pymysql
import pytest
from click.testing import CliRunner, Result

from dsreg_db import Registry
from dsreg_db.cli import main
from dsreg_db.schema import migrate
from dsreg_db.testing.galera import GaleraCluster, enable_events_locally
from dsreg_db.testing.server import free_port
from tests.conftest import ServerInfo

OLD = "dsreg_0008"  # the last revision without client reaping


def doctor(url: str, *extra: str) -> Result:
    return CliRunner().invoke(main, ["doctor", "--url", url, *extra], catch_exceptions=False)


def lines(result: Result, prefix: str) -> list[str]:
    return [x for x in result.stdout.splitlines() if re.match(rf"\[\s*\w+\] {re.escape(prefix)}", x)]


# -- without Galera: a multi-host URL naming one server twice and a dead port -------------------------------
def test_multi_host_url_without_galera(server: ServerInfo, make_db: Callable[..., str]) -> None:
    dead = free_port()
    auth = server.user + (f":{server.password}" if server.password else "")
    here = f"{server.host}:{server.port}"

    def url(database: str, hosts: list[str]) -> str:
        return f"mysql+pymysql://{auth}@{','.join(hosts)}/{database}"

    name = make_db()
    # the single-server output is unchanged: no node lines
    single = doctor(server.url(name))
    assert single.exit_code == 0, single.output
    assert lines(single, "node") == [] and lines(single, "reaping") == [], single.stdout

    # the dead host first: the server checks run on the first one that answers
    result = doctor(url(name, [f"127.0.0.1:{dead}", here, here]))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"[info] nodes: 3 named in the URL; the checks above ran on {here}, the first that answered" in (
        result.stdout
    )
    assert re.search(r"\[  ok\] event scheduler: ON", result.stdout)  # run()'s checks are all there
    assert re.search(r"\[  ok\] schema: revision \w+, head", result.stdout)
    [gone] = lines(result, f"node 127.0.0.1:{dead}")
    assert gone.startswith(f"[FAIL] node 127.0.0.1:{dead}: unreachable: "), gone
    assert "database unavailable" in gone or "refused" in gone, gone
    first, twin = lines(result, f"node {here}")
    assert re.fullmatch(
        rf"\[  ok\] node {re.escape(here)}: wsrep_on=OFF; dsreg_reaper ENABLED, dsreg_compactor ENABLED; "
        r"event_scheduler ON; reaper last ran \d+\.\d s ago",
        first,
    ), first
    assert twin == f"[warn] node {here}: the same server as {here}, named twice"
    [reaping] = lines(result, "reaping")
    assert reaping.startswith(f"[  ok] reaping: the reaper event runs on {here}; the compactor on {here}; ")
    assert "clients reap when no event runs" in reaping and "reap_stale_ms, 1500 ms" in reaping

    checks = json.loads(doctor(url(name, [here, f"127.0.0.1:{dead}"]), "--json").stdout)
    by_name = {c["name"]: c for c in checks}
    assert by_name[f"node {here}"]["level"] == "ok"
    assert by_name[f"node 127.0.0.1:{dead}"]["level"] == "FAIL"

    # before dsreg_0009 (no client reaping), one server that runs the events and another that does not
    # answer: reaping depends on that one
    old = make_db(migrated=False)
    migrate.upgrade(server.url(old), OLD)
    result = doctor(url(old, [here, f"127.0.0.1:{dead}"]))
    assert result.exit_code == 1
    [reaping] = lines(result, "reaping")
    assert reaping.startswith(f"[FAIL] reaping: reaping depends on {here} alone: "), reaping
    assert f"revision {OLD} predates client reaping (dsreg_0009)" in reaping
    # the same server twice is one server: nothing to depend on
    result = doctor(url(old, [here, here]))
    [reaping] = lines(result, "reaping")
    assert reaping.startswith("[  ok] reaping: ") and f"revision {OLD}: no client reaping" in reaping, reaping


# -- a real 3-node Galera cluster ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[GaleraCluster]:
    c = GaleraCluster(3)
    # by default a node publishes AUTO in wsrep_incoming_addresses (the doctor then checks only the node it
    # was given, and says so); with its client address set, the others are found from one node's URL
    for node in c.nodes:
        node.extra_args = (*node.extra_args, f"--wsrep-node-incoming-address=127.0.0.1:{node.port}")
    with c:
        ports = [n.port for n in c.nodes]
        with pymysql.connect(host="127.0.0.1", port=ports[0], user="root") as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE gd")
            cur.execute("CREATE DATABASE gd_old")
        migrate.upgrade(c.nodes[0].url("gd"))
        migrate.upgrade(c.nodes[0].url("gd_old"), OLD)
        yield c


def _addresses(cluster: GaleraCluster) -> list[str]:
    return [f"127.0.0.1:{n.port}" for n in cluster.nodes]


def _node_lines(result: Result, cluster: GaleraCluster) -> list[str]:
    found = []
    for address in _addresses(cluster):
        [line] = lines(result, f"node {address}")
        found.append(line)
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_doctor_lists_every_node_at_head(cluster: GaleraCluster) -> None:
    a = _addresses(cluster)
    by_url = doctor(cluster.url("gd"))
    assert by_url.exit_code == 0, by_url.output
    assert f"[info] nodes: 3 named in the URL; the checks above ran on {a[0]}, the first that answered" in (
        by_url.stdout
    )
    discovered = doctor(cluster.nodes[1].url("gd"))  # one node's URL: the others from wsrep_incoming_addresses
    assert discovered.exit_code == 0, discovered.output
    assert f"[info] nodes: 3 listed in wsrep_incoming_addresses of {a[1]}" in discovered.stdout
    for result in (by_url, discovered):
        print("\n" + result.stdout)
        for i, line in enumerate(_node_lines(result, cluster)):
            status = "ENABLED" if i == 0 else "SLAVESIDE_DISABLED"
            assert re.fullmatch(
                rf"\[  ok\] node {re.escape(a[i])}: node{i}: Primary, Synced, wsrep_ready=ON \(cluster size 3\); "
                rf"dsreg_reaper {status}, dsreg_compactor {status}; event_scheduler ON; "
                r"reaper last ran \d+\.\d s ago",
                line,
            ), line
        [reaping] = lines(result, "reaping")
        # the other two in the order the doctor found them (wsrep_incoming_addresses has no fixed order)
        assert any(
            reaping.startswith(
                f"[  ok] reaping: the reaper event runs on {a[0]}, not on {x} (SLAVESIDE_DISABLED, scheduler ON), "
                f"{y} (SLAVESIDE_DISABLED, scheduler ON); the compactor on {a[0]}; clients reap when no event runs"
            )
            for x, y in ((a[1], a[2]), (a[2], a[1]))
        ), reaping
    checks = json.loads(doctor(cluster.url("gd"), "--json").stdout)
    assert [c["level"] for c in checks if c["name"].startswith("node ")] == ["ok", "ok", "ok"]
    # a URL naming 2 of the 3 nodes: the third is not checked, and the doctor says so
    partial = doctor(cluster.url("gd", [0, 1]))
    assert partial.exit_code == 0, partial.output
    assert (
        "[warn] nodes: the cluster has 3 nodes (wsrep_cluster_size), the URL names 2 of them: 1 not checked; "
        "name every node in the URL"
    ) in partial.stdout
    assert len(lines(partial, "node 127.0.0.1:")) == 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_doctor_fails_when_reaping_depends_on_one_node(cluster: GaleraCluster) -> None:
    a = _addresses(cluster)
    for url in (cluster.url("gd_old"), cluster.nodes[2].url("gd_old")):
        result = doctor(url)
        print("\n" + result.stdout)
        assert result.exit_code == 1
        [reaping] = lines(result, "reaping")
        assert reaping.startswith(f"[FAIL] reaping: reaping depends on {a[0]} alone: the reaper event runs on {a[0]}")
        assert f"revision {OLD} predates client reaping (dsreg_0009)" in reaping
        assert "SET SESSION wsrep_on = OFF; ALTER EVENT dsreg_reaper ENABLE" in reaping
        assert [line[:6] for line in _node_lines(result, cluster)] == ["[  ok]"] * 3
    # the per-node fix the README gives: events enabled on every node, so no node is alone
    for node in cluster.nodes[1:]:
        enable_events_locally("127.0.0.1", node.port, "root", "", "gd_old")
    result = doctor(cluster.url("gd_old"))
    [reaping] = lines(result, "reaping")
    assert reaping == (
        f"[  ok] reaping: the reaper event runs on {', '.join(a)}; the compactor on {', '.join(a)} "
        f"(revision {OLD}: no client reaping before dsreg_0009)"
    )
    assert result.exit_code == 1  # the schema is still older than the package
    assert lines(result, "schema")[0].startswith("[FAIL] schema: database at revision dsreg_0008")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_doctor_names_a_dead_node(cluster: GaleraCluster) -> None:
    a = _addresses(cluster)
    dead = cluster.nodes[2]
    dead.kill()
    try:
        cluster.wait_size(2)
        for url in (cluster.url("gd"), cluster.url("gd", [2, 0, 1])):  # the dead node first, too
            result = doctor(url)
            print("\n" + result.stdout)
            assert result.exit_code == 1, result.output
            assert "Traceback" not in result.output
            node0, node1, node2 = _node_lines(result, cluster)
            assert node2.startswith(f"[FAIL] node {a[2]}: unreachable: "), node2
            assert len(node2.splitlines()) == 1
            assert node0.startswith(f"[  ok] node {a[0]}: node0: Primary, Synced, wsrep_ready=ON (cluster size 2)")
            assert node1.startswith(f"[  ok] node {a[1]}: node1: Primary, Synced, wsrep_ready=ON (cluster size 2)")
            assert lines(result, "reaping")[0].startswith(f"[  ok] reaping: the reaper event runs on {a[0]}")
        # one live node's URL: the dead node is gone from wsrep_incoming_addresses, so it lists 2
        result = doctor(cluster.nodes[1].url("gd"))
        assert result.exit_code == 0, result.output
        assert f"[info] nodes: 2 listed in wsrep_incoming_addresses of {a[1]}" in result.stdout
    finally:
        if hasattr(cluster, "restart"):
            cluster.restart(2)  # recovers the position first, to rejoin by IST
        else:
            # the joiner's rsync SST daemon runs as nobody (see GaleraCluster.start)
            for path in [dead.datadir, *dead.datadir.rglob("*")]:
                shutil.chown(path, "nobody")
            dead.start(240)
            cluster.wait_synced(dead, 240)
            cluster.wait_size(3, 120)


def _provider_option(cluster: GaleraCluster, value: str) -> None:
    for node in cluster.nodes:
        with pymysql.connect(host="127.0.0.1", port=node.port, user="root") as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL wsrep_provider_options = %s", (value,))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_doctor_warns_of_galera_settings_that_freeze_or_expire_clients(cluster: GaleraCluster) -> None:
    """Tried: Galera's default flow control (gcs.fc_limit=16, which froze the test cluster for ~50 s),
    then a live session whose 3 s ttl a node loss's commit stall (evs.suspect_timeout + view change)
    outlasts; each is a warning naming the setting, and the fixed setting is an ok line."""
    url = cluster.url("gd")
    with Registry(url) as registry:
        _provider_option(cluster, "gcs.fc_limit=16")
        try:
            checks = {c["name"]: c for c in json.loads(doctor(url, "--json").stdout)}
        finally:
            _provider_option(cluster, "gcs.fc_limit=256")
        flow = checks["galera flow control"]
        assert flow["level"] == "warn" and flow["detail"].startswith("gcs.fc_limit=16: "), flow
        assert "gcs.fc_limit=256" in flow["detail"]
        detection = checks["galera failure detection"]
        assert detection["level"] == "ok", detection  # no live session yet
        assert detection["detail"].startswith("no live sessions; a lost node stalls every commit for ~6.5 s")
        assert "evs.suspect_timeout=PT5S" in detection["detail"]

        with registry.session("short", ttl=3.0), registry.session("long", ttl=10.0):
            result = doctor(url)
            print("\n" + result.stdout)
            [flow_line] = lines(result, "galera flow control")
            assert flow_line == "[  ok] galera flow control: gcs.fc_limit=256"
            [short] = lines(result, "galera failure detection")
            assert short.startswith(
                "[warn] galera failure detection: the shortest live session ttl is 3000 ms: its client will "
                "treat it as lost when a node is"
            ), short
        with registry.session("long", ttl=10.0):
            [long] = lines(doctor(url), "galera failure detection")
            assert long.startswith("[  ok] galera failure detection: the shortest live session ttl is 10000 ms"), long
