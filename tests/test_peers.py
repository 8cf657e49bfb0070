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
from functools import partial
from pathlib import Path

import pymysql
import pytest
from click.testing import CliRunner

from dsreg_db.cli import main
from dsreg_db.testing import bench, peer_workloads, probes
from dsreg_db.testing.bench import Result
from dsreg_db.testing.peers import EtcdServer, ZooKeeperServer
from dsreg_db.urls import pymysql_params
from tests.conftest import ServerInfo

PREFIXES = ("dsreg-etcd-", "dsreg-zookeeper-")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    png = tmp_path / "peers.png"
    peer_workloads.write_chart(bench.read_json(str(path)), str(png))  # the chart redraws from the JSON alone
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
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


def test_capacity_and_peers_refuse_options_of_the_other_modes() -> None:
    """Tried: --capacity with --peers, a ladder with a zero in it, and --peers with a sweep: usage errors,
    nothing started."""
    runner = CliRunner()
    assert runner.invoke(main, ["bench", "--capacity", "--peers"]).exit_code == 2
    result = runner.invoke(main, ["bench", "--peers", "--sweep", "1,2"])  # --peers runs 16 clients only
    assert result.exit_code == 2 and "--sweep does not apply to --peers" in result.output
    result = runner.invoke(main, ["bench", "--capacity", "--steps", "4,0"])
    assert result.exit_code == 2 and "at least 1" in result.output


#: a probe file as docs/probes/revision_probes.sql is one: a header, a table, DELIMITER and one procedure
#: of each shape (the keepalive-shaped one writes the table, as a probe with its own event table does)
PROBES = """-- probes for the test; a comment with a ; in it
CREATE TABLE t_probe_calls (id INT PRIMARY KEY, n BIGINT NOT NULL);
DELIMITER $$
DROP PROCEDURE IF EXISTS t_beat$$
CREATE PROCEDURE t_beat(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT, IN p_value MEDIUMTEXT)
BEGIN
  CALL dsreg_heartbeat(p_session_id, p_token, p_path, p_value);
END$$
-- the keepalive, counted;
CREATE PROCEDURE t_ka(IN p_session_id BIGINT, IN p_token TEXT)
BEGIN
  CALL dsreg_session_keepalive(p_session_id, p_token);
  INSERT INTO t_probe_calls VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1;
END$$
DELIMITER ;
"""


def _routines(url: str) -> set[str]:
    with pymysql.connect(**pymysql_params(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")
        names = {name for (name,) in cur.fetchall()}
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        return names | {name for (name,) in cur.fetchall()}


def test_probe_script_splits_at_its_delimiter() -> None:
    """Tried: a script with a comment holding a ';', a DELIMITER switch, a body full of ';' and a comment
    between procedures: one statement per object, comments kept with the statement they precede."""
    found = probes.statements(PROBES)
    assert [s.splitlines()[-1].split("(")[0] for s in found] == [
        "CREATE TABLE t_probe_calls ",
        "DROP PROCEDURE IF EXISTS t_beat",
        "END",
        "END",
    ], found
    assert found[2].count(";") == 1 and found[3].startswith("-- the keepalive, counted;\nCREATE PROCEDURE t_ka")


@pytest.mark.timeout(120)
def test_peers_bench_measures_probes_in_the_same_run(db_url: str, tmp_path: Path) -> None:
    """--probes FILE --rounds 2: each procedure the file creates is a workload of the one table, called by
    every client (the keepalive-shaped one with its session), each workload twice; the probes' objects are
    dropped afterwards."""
    script = tmp_path / "probes.sql"
    script.write_text(PROBES)
    before = _routines(db_url)
    path = tmp_path / "peers.json"
    args = ["bench", "--peers", "--url", db_url, "--clients", "2", "--seconds", "0.5", "--rounds", "2"]
    png = tmp_path / "peers.png"
    result = CliRunner().invoke(main, [*args, "--probes", str(script), "--json", str(path), "--png", str(png)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    report = json.loads(path.read_text())
    dsreg = peer_workloads.WORKLOADS[: 1 + len(peer_workloads.DSREG_WORKLOADS)]
    names = [*dsreg, "t_beat", "t_ka", *peer_workloads.WORKLOADS[len(dsreg) :]]
    assert [r["workload"] for r in report["results"]] == names
    assert all(r["ops"] > 0 for r in report["results"]), report["results"]
    probe_lines = [line for line in result.stdout.splitlines() if line.startswith("probe ")]
    assert [line.split()[1] for line in probe_lines] == ["t_beat", "t_ka"], result.stdout
    # both rounds ran every workload (progress goes to stderr)
    for name in names:
        assert f"bench: {name} with 2 clients for 0.5 s (round 2 of 2)" in result.stderr, result.stderr
    assert _routines(db_url) == before  # t_beat, t_ka and t_probe_calls are gone


def test_peers_bench_refuses_a_probe_it_cannot_call(db_url: str, tmp_path: Path) -> None:
    """Tried: a probe of three arguments (neither shape), and --probes or --rounds without --peers: a
    clear error, and the probe's objects are gone again."""
    script = tmp_path / "probes.sql"
    script.write_text("CREATE PROCEDURE t_odd(IN a INT, IN b INT, IN c INT) SELECT a + b + c;\n")
    before = _routines(db_url)
    result = CliRunner().invoke(main, ["bench", "--peers", "--url", db_url, "--probes", str(script)])
    assert result.exit_code != 0 and "probe t_odd takes neither" in str(result.exception), result.output
    assert _routines(db_url) == before
    for args in (["--probes", str(script)], ["--rounds", "2"]):
        refused = CliRunner().invoke(main, ["bench", "--url", db_url, *args])
        assert refused.exit_code == 2 and "apply to --peers only" in refused.output, refused.output


def test_the_documented_probe_file_loads_and_every_probe_has_a_shape(db_url: str) -> None:
    """docs/probes/revision_probes.sql, which the README's peers run loads with --probes: each of its
    procedures is created with a shape the bench can call, and all of it is dropped afterwards."""
    script = (Path(__file__).resolve().parent.parent / "docs" / "probes" / "revision_probes.sql").read_text()
    before = _routines(db_url)
    with probes.loaded(db_url, script) as shapes:
        assert {"p_full", "p_full_ctr", "p_chg_ai", "p_ka_full"} <= set(shapes), shapes
        assert shapes["p_full"] == "heartbeat" and shapes["p_ka_full"] == "keepalive", shapes
        assert set(shapes) <= _routines(db_url) and "ev_ai" in _routines(db_url)
    assert _routines(db_url) == before


def test_best_rounds_keeps_each_workloads_best_round_in_order() -> None:
    """Tried: two workloads whose rounds come out in different orders, and two workloads of one name.
    Each keeps its own best round (not the last, not the first), in the order of the runs; a name twice
    is refused before anything is measured."""
    rates = {"a": [5, 9, 7], "b": [8, 2, 3]}
    calls: list[str] = []

    def measure(name: str, clients: int, seconds: float) -> Result:
        calls.append(name)
        ops = rates[name][sum(1 for c in calls if c == name) - 1]
        return Result(name, clients, ops, seconds, 1.0, 2.0)

    runs = [("b", partial(measure, "b")), ("a", partial(measure, "a"))]
    best = bench.best_rounds(runs, 3, 2, 1.0)
    assert [(r.workload, r.ops) for r in best] == [("b", 8), ("a", 9)]
    assert calls == ["b", "a"] * 3  # round after round, not one workload's rounds back to back
    calls.clear()
    with pytest.raises(ValueError, match="two workloads named a"):
        bench.best_rounds([*runs, ("a", partial(measure, "a"))], 1, 2, 1.0)
    assert calls == []


def test_probe_script_that_fails_or_would_replace_leaves_the_database_as_it_was(db_url: str) -> None:
    """Tried: a script that fails at its third statement (after creating a table and a procedure), one
    that names a table the database has, and one whose last statement has no delimiter. Each is an
    error; what the first created is dropped, and the existing table is untouched."""
    before = _routines(db_url)
    failing = (
        "CREATE TABLE t_half (id INT PRIMARY KEY);\n"
        "CREATE PROCEDURE t_half_p(IN a BIGINT, IN b TEXT) SELECT a;\n"
        "SELECT * FROM t_no_such_table;\n"
    )
    with pytest.raises(pymysql.err.ProgrammingError), probes.loaded(db_url, failing):
        pass
    assert _routines(db_url) == before
    with pymysql.connect(**pymysql_params(db_url)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t_mine (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t_mine VALUES (7)")
        conn.commit()
        try:
            replacing = "DROP TABLE IF EXISTS t_mine;\nCREATE TABLE t_mine (x INT);\n"
            taken = "would replace what the database has: t_mine"
            with pytest.raises(ValueError, match=taken), probes.loaded(db_url, replacing):
                pass
            cur.execute("SELECT id FROM t_mine")
            assert cur.fetchall() == ((7,),)
        finally:
            cur.execute("DROP TABLE t_mine")
    with pytest.raises(ValueError, match="ends without its delimiter"):
        probes.statements("CREATE TABLE t_x (id INT);\nSELECT 1\n")
    refused = CliRunner().invoke(main, ["bench", "--capacity", "--rounds", "3"])
    assert refused.exit_code == 2 and "apply to --peers only" in refused.output, refused.output
