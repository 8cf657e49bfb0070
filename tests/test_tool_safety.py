"""bench, torture and demo with --url never hurt a user's database (dsreg_db.testing.target).

A database holding an application's table and DolphinScheduler's ``t_ds_mysql_registry_data``
(each with a row) is refused by every tool with one line naming the flag, and nothing is created;
with the flag the tool runs, and afterwards the database holds exactly what it held before.
The runs go through the real command line (a subprocess), kept short with the tools' options.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner

from dsreg_db.cli import main
from dsreg_db.testing import bench, torture
from dsreg_db.testing.target import FLAG
from tests.conftest import ServerInfo

#: short runs of each tool (bench's sizes are shortened below)
TOOLS = {
    "torture": ["torture", "--clients", "3", "--ttl", "2", "--seconds", "2"],
    "bench": ["bench", "--clients", "1", "--seconds", "0.2"],
    "demo": ["demo", "--ttl", "2"],
}

#: DolphinScheduler 3.1's table, as its MySQL registry creates it
DS31_DDL = """
CREATE TABLE t_ds_mysql_registry_data (
    id               BIGINT       NOT NULL AUTO_INCREMENT,
    `key`            VARCHAR(256) NOT NULL,
    data             TEXT         NOT NULL,
    type             TINYINT      NOT NULL,
    last_term        BIGINT       NOT NULL,
    create_time      TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_update_time TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uk_t_ds_mysql_registry_data_key (`key`)
) ENGINE = InnoDB"""

#: the statements of DolphinScheduler 3.1's MySQL registry the torture's replica runs
DS31_STATEMENTS = (
    "SELECT id FROM t_ds_mysql_registry_data WHERE `key` = %s",
    "INSERT INTO t_ds_mysql_registry_data (`key`, data, type, last_term) VALUES (%s, %s, %s, %s)",
    "UPDATE t_ds_mysql_registry_data SET data = %s, last_term = %s WHERE id = %s",
    "UPDATE t_ds_mysql_registry_data SET last_term = %s WHERE id IN (%s)",
    "DELETE FROM t_ds_mysql_registry_data WHERE last_term < %s AND type = %s",
    "SELECT `key` FROM t_ds_mysql_registry_data WHERE type = %s",
)


def _app_db(server: ServerInfo, make_db: Callable[..., str], migrated: bool = False) -> str:
    """A database in use: an application's table and a live DolphinScheduler 3.1 registry row."""
    name = make_db(migrated=migrated)
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app_orders (id INT PRIMARY KEY, item VARCHAR(50) NOT NULL) ENGINE=InnoDB")
        cur.execute("INSERT INTO app_orders VALUES (1, 'coffee'), (2, 'tea')")
        cur.execute(DS31_DDL)
        cur.execute(
            "INSERT INTO t_ds_mysql_registry_data (`key`, data, type, last_term) "
            "VALUES ('/nodes/master/10.0.0.9:5678', '{}', 1, 1)"
        )
    return name


def _snapshot(server: ServerInfo, name: str) -> dict[str, Any]:
    """Every table, routine and event, and the application's and DolphinScheduler's rows."""
    with server.connect(name) as conn, conn.cursor() as cur:
        out: dict[str, Any] = {}
        for kind, sql in (
            ("tables", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"),
            ("routines", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"),
            ("events", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()"),
        ):
            cur.execute(sql)
            out[kind] = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT * FROM app_orders ORDER BY id")
        out["app_orders"] = cur.fetchall()
        cur.execute("SELECT * FROM t_ds_mysql_registry_data ORDER BY id")
        out["t_ds_mysql_registry_data"] = cur.fetchall()
        return out


def _dsreg(url: str, args: list[str], timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dsreg_db.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _count(server: ServerInfo, name: str, table: str) -> int:
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        (n,) = cur.fetchone()  # type: ignore[misc]
        return int(n)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_refuses_a_database_it_did_not_create(tool: str, server: ServerInfo, make_db: Callable[..., str]) -> None:
    name = _app_db(server, make_db)
    before = _snapshot(server, name)
    proc = _dsreg(server.url(name), TOOLS[tool], timeout=30)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert FLAG in lines[0] and "app_orders" in lines[0] and "t_ds_mysql_registry_data" in lines[0], lines[0]
    assert proc.stdout == ""
    assert _snapshot(server, name) == before  # nothing created, nothing touched
    assert before["tables"] == ["app_orders", "t_ds_mysql_registry_data"]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_with_the_flag_runs_and_leaves_only_what_was_there(
    tool: str, server: ServerInfo, make_db: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _app_db(server, make_db)
    before = _snapshot(server, name)
    if tool == "bench":
        # the command line has no options for these sizes (100k sessions, a 12 s churn: 45 s in all), so
        # the command runs in this process with smaller ones: every step still runs, in about 20 s
        short = functools.partial(bench.run, reap_sizes=(100, 1000), storm_sessions=300, churn_seconds=3.0)
        monkeypatch.setattr(bench, "run", short)
        result = CliRunner().invoke(main, [*TOOLS[tool], FLAG, "--url", server.url(name)])
        assert result.exit_code == 0, (result.output, result.exception)
        stdout = result.stdout
    else:
        proc = _dsreg(server.url(name), [*TOOLS[tool], FLAG])
        assert proc.returncode == 0, proc.stderr[-3000:]
        stdout = proc.stdout
    expected = {"torture": "ds31 ", "bench": "ratio churn_reaped/opened", "demo": "detection time:"}[tool]
    assert expected in stdout, stdout  # it did run, to the end
    # the run installed the dsreg schema, so it removed it again, with its own tables, sessions and nodes
    assert _snapshot(server, name) == before


def test_refuses_a_registry_in_use(server: ServerInfo, make_db: Callable[..., str]) -> None:
    """Only dsreg's objects, but someone's session and node in them: someone else's registry."""
    name = make_db()
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("CALL dsreg_session_open('app-worker', 60000, @s, @t)")
        cur.execute("CALL dsreg_heartbeat(@s, @t, '/nodes/worker/app-1', 'up')")
    proc = _dsreg(server.url(name), TOOLS["torture"], timeout=30)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and FLAG in lines[0] and "dsreg_session" in lines[0], proc.stderr
    assert _count(server, name, "dsreg_session") == 1 and _count(server, name, "dsreg_node") == 1
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE 'dsreg_torture%'")
        assert cur.fetchall() == ()


def test_a_migrated_empty_database_needs_no_flag_and_keeps_its_schema(
    server: ServerInfo, make_db: Callable[..., str]
) -> None:
    name = make_db()
    proc = _dsreg(server.url(name), TOOLS["torture"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dsreg " in proc.stdout and "ds31 " in proc.stdout
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE 'dsreg_torture%'")
        assert cur.fetchall() == ()  # the replica's table is gone ...
        cur.execute("SELECT COUNT(*) FROM dsreg_alembic_version")
        assert cur.fetchone() == (1,)  # ... the schema it found stays
    assert _count(server, name, "dsreg_session") == 0 and _count(server, name, "dsreg_node") == 0


def test_bench_interrupted_removes_its_own_and_only_its_own(
    server: ServerInfo, make_db: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception in the middle of a forced run: bench's sessions (a live one with a node, bulk-inserted
    ones), its watch node and its table are gone; the application's session and node are not."""
    name = _app_db(server, make_db, migrated=True)
    url = server.url(name)
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("CALL dsreg_session_open('app-worker', 60000, @s, @t)")
        cur.execute("CALL dsreg_heartbeat(@s, @t, '/nodes/worker/app-1', 'up')")
        cur.execute("CALL dsreg_put(NULL, NULL, '/config/app', 'v1')")
        cur.execute("SELECT @s")
        (app_session,) = cur.fetchone()  # type: ignore[misc]

    def interrupted(url: str, sizes: Any = None) -> dict[str, float]:
        with pymysql.connect(autocommit=True, **bench.pymysql_params(url)) as conn, conn.cursor() as cur:
            bench._insert_sessions(cur, "bench-reap", 2000, 3_600_000)
            cur.execute("CALL dsreg_session_open('bench-1', 60000, @s, @t)")
            cur.execute("CALL dsreg_heartbeat(@s, @t, '/bench/hb_same/1', '0')")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(bench, "reap_scaling", interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        bench.run(url, clients=1, seconds=0.2, workloads=("raw_update",), out=lambda _: None, force=True)
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, owner FROM dsreg_session")
        assert cur.fetchall() == ((app_session, "app-worker"),)
        cur.execute("SELECT path FROM dsreg_node ORDER BY path")
        assert [r[0] for r in cur.fetchall()] == [b"/config/app", b"/nodes/worker/app-1"]
        cur.execute("SHOW TABLES LIKE 'dsreg_bench%'")
        assert cur.fetchall() == ()
        cur.execute("SELECT kind, path FROM dsreg_event WHERE path LIKE '/bench/%' AND kind = 'DELETE' ORDER BY path")
        deleted = {r[1] for r in cur.fetchall()}
        assert {b"/bench/hb_same/1", b"/bench/watch/clock"} <= deleted  # watchers were told
    after = _snapshot(server, name)
    assert after["app_orders"] == ((1, "coffee"), (2, "tea")) and len(after["t_ds_mysql_registry_data"]) == 1


def test_the_replica_uses_its_own_table_and_dolphinschedulers_sql() -> None:
    """Never a ``t_ds_`` table; otherwise the statements are DolphinScheduler 3.1's, word for word."""
    source = Path(torture.__file__).read_text()
    assert torture.DS31_TABLE_NAME == "dsreg_torture_ds31_registry"
    for statement in DS31_STATEMENTS:
        assert statement.replace("t_ds_mysql_registry_data", torture.DS31_TABLE_NAME) in source, statement
    ddl = torture.DS31_TABLE.replace(torture.DS31_TABLE_NAME, "t_ds_mysql_registry_data")
    assert ddl == DS31_DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")
    statement = re.compile(r"\b(FROM|INTO|UPDATE|JOIN|TABLE|EXISTS)\s+`?t_ds_", re.I)
    for path in Path(bench.__file__).parent.glob("*.py"):
        assert not statement.search(path.read_text()), path
