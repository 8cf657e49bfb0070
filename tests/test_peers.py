"""``dsreg bench --peers`` end to end, and its etcd and ZooKeeper leave nothing behind.

A smoke run (2 clients, 1 s per workload, no thresholds: speed is never asserted)
through the real command line: every workload made progress, the table names
every system, and no etcd or ZooKeeper process or temp dir outlives the run.
Needs Debian's etcd-server and zookeeper packages and kazoo (scripts/setup.sh --test).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsreg_db.cli import main
from dsreg_db.testing import peer_workloads
from dsreg_db.testing.peers import EtcdServer, ZooKeeperServer
from tests.conftest import ServerInfo

PREFIXES = ("dsreg-etcd-", "dsreg-zookeeper-")


def _peer_dirs() -> set[str]:
    """This machine's temp dirs of private etcd and ZooKeeper servers."""
    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(PREFIXES)}


def _peer_processes() -> set[int]:
    """Processes whose command line names one of those temp dirs (etcd --data-dir, java ... zoo.cfg)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if any(f"{tempfile.gettempdir()}/{prefix}" in cmdline for prefix in PREFIXES):
            found.add(int(proc.name))
    return found


@pytest.mark.timeout(50)
def test_peers_bench_smoke(db_url: str, tmp_path: Path) -> None:
    dirs, procs = _peer_dirs(), _peer_processes()
    path = tmp_path / "peers.json"
    args = ["bench", "--peers", "--url", db_url, "--clients", "2", "--seconds", "1", "--json", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(path.read_text())
    assert [r["workload"] for r in report["results"]] == list(peer_workloads.WORKLOADS)
    for r in report["results"]:
        assert r["clients"] == 2 and r["ops"] > 0, r
        assert math.isfinite(r["p50_ms"]) and math.isfinite(r["p99_ms"]) and r["p99_ms"] >= r["p50_ms"] > 0, r
    assert set(report["ratios"]) == {f"{w}/raw_update" for w in peer_workloads.WORKLOADS[1:]}
    lines = result.stdout.splitlines()
    table = "\n".join(lines)
    for system in ("MariaDB", "dsreg", "etcd", "ZooKeeper"):
        assert system in table, table
    for workload in peer_workloads.WORKLOADS:
        assert any(line.split()[1:2] == [workload] for line in lines), table
    assert "etcd 3." in lines[0] and "ZooKeeper 3." in lines[0], lines[0]
    # the servers are stopped and their temp dirs removed
    assert _peer_processes() <= procs
    assert _peer_dirs() <= dirs


@pytest.mark.timeout(50)
@pytest.mark.parametrize("kind", [EtcdServer, ZooKeeperServer])
def test_peer_server_goes_on_keyboard_interrupt(kind: type[EtcdServer] | type[ZooKeeperServer]) -> None:
    with pytest.raises(KeyboardInterrupt), kind() as server:
        assert server.running and server.version.startswith("3.")
        pid, basedir = server.pid, server.basedir
        raise KeyboardInterrupt
    assert pid is not None and not Path(f"/proc/{pid}").exists()  # exited and waited for (no zombie either)
    assert not basedir.exists()


@pytest.mark.timeout(120)
def test_capacity_smoke(server: ServerInfo, db_url: str, tmp_path: Path) -> None:
    """Two small steps per system (no thresholds: whether a step passes depends on the machine); every step
    beat every client on schedule, lost nothing, and the servers and their dirs are gone afterwards."""
    dirs, procs = _peer_dirs(), _peer_processes()
    path = tmp_path / "capacity.json"
    args = ["bench", "--capacity", "--url", db_url, "--steps", "4,8", "--seconds", "2", "--json", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (result.output, result.exception)
    steps = json.loads(path.read_text())["steps"]
    # a system stops at its first failing step, so each ran 1 or 2 steps, in order
    for system in ("dsreg", "etcd", "ZooKeeper"):
        mine = [s for s in steps if s["system"] == system]
        assert [s["clients"] for s in mine] in ([4], [4, 8]), steps
        for s in mine:
            assert s["beats"] == s["clients"] * 2 and s["lost"] == 0, s
            assert 0 < s["p50_ms"] <= s["p99_ms"], s
            # the server's CPU is read from /proc: known for the private servers, not for $DSREG_TEST_URL's
            measurable = system != "dsreg" or server.local is not None
            assert (s["server_cpu_cores"] is not None) == measurable, s
    assert any(line.startswith("dsreg: ") for line in result.stdout.splitlines()), result.stdout
    assert _peer_processes() <= procs
    assert _peer_dirs() <= dirs


def test_capacity_refuses_options_of_the_other_modes() -> None:
    """Tried: --capacity with --peers, and a ladder with a zero in it: usage errors, nothing started."""
    runner = CliRunner()
    assert runner.invoke(main, ["bench", "--capacity", "--peers"]).exit_code == 2
    result = runner.invoke(main, ["bench", "--capacity", "--steps", "4,0"])
    assert result.exit_code == 2 and "at least 1" in result.output
