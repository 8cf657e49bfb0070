"""Every failure a user can fix is one line on stderr naming the cause and the fix, never a traceback.

Exit status as the cli module says: 1 server-side or runtime, 2 bad usage.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pymysql
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from dsreg_db import Client, Registry, SchemaMissing, SessionState, Unavailable
from dsreg_db.cli import main
from dsreg_db.errors import MigrationLocked
from dsreg_db.ops.explain import explain
from dsreg_db.schema import migrate, migration_lock
from dsreg_db.testing.server import free_port
from tests.conftest import ServerInfo


def fails(args: list[str], code: int = 1) -> str:
    """Run the CLI; it must exit ``code`` with exactly one line on stderr, nothing on stdout. Returns the line."""
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    lines = result.stderr.splitlines()
    assert result.exit_code == code, (args, result.output)
    assert "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
    assert result.stdout == "", (args, result.stdout)
    return lines[0]


def previous_revision() -> str:
    """The revision before head, whatever the revisions are called."""
    down = ScriptDirectory.from_config(migrate.config()).get_revision(migrate.head()).down_revision
    assert isinstance(down, str)
    return down


# -- connecting ------------------------------------------------------------------
@pytest.mark.parametrize("command", ["status", "ls", "upgrade"])
def test_server_down(command: str) -> None:
    port = free_port()  # nothing listens there
    line = fails([command, "--url", f"mysql://root@127.0.0.1:{port}/x"])
    assert "database unavailable: cannot connect to the server at 127.0.0.1 (Connection refused)" in line
    assert "start the server, or fix the host and port in --url / $DSREG_URL" in line


def test_wrong_password(server: ServerInfo, dbname: str) -> None:
    url = f"mysql+pymysql://{server.user}:wrong-{uuid.uuid4().hex}@{server.host}:{server.port}/{dbname}"
    for command in ("ls", "status", "current"):
        line = fails([command, "--url", url])
        assert line.startswith(f"Error: wrong user or password: Access denied for user '{server.user}'"), line
        assert line.endswith("fix the user and password in --url / $DSREG_URL"), line


def test_unknown_database(server: ServerInfo) -> None:
    name = f"dsreg_nosuch_{uuid.uuid4().hex[:8]}"
    for command in ("ls", "status", "upgrade"):
        line = fails([command, "--url", server.url(name)])
        assert line == (
            f"Error: the database '{name}' does not exist: create it (CREATE DATABASE `{name}`) "
            "or fix the database name in --url / $DSREG_URL"
        )


# -- revisions -------------------------------------------------------------------
@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_unknown_revision_is_a_usage_error(command: str, db_url: str) -> None:
    line = fails([command, "--url", db_url, "9999"], code=2)
    assert "unknown revision 'dsreg_9999'" in line or "unknown revision '9999'" in line, line
    assert f".. {migrate.head()} (head); pass one of them, head or base" in line, line
    assert migrate.current(db_url) == migrate.head()  # nothing happened


def test_unknown_revision_offline() -> None:
    line = fails(["upgrade", "--sql", "9999"], code=2)
    assert "unknown revision" in line and f"{migrate.head()} (head)" in line, line


def test_unknown_revision_from_a_real_process(db_url: str) -> None:
    """The headline case of the issue: 87 lines of traceback before."""
    proc = subprocess.run(
        [sys.executable, "-m", "dsreg_db.cli", "upgrade", "--url", db_url, "9999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("Error: unknown revision"), proc.stderr


# -- schema ----------------------------------------------------------------------
def test_schema_not_migrated(server: ServerInfo, make_db: Callable[..., str]) -> None:
    url = server.url(make_db(migrated=False))
    for command in ("status", "metrics"):  # they read the tables: 1146
        line = fails([command, "--url", url])
        assert line.startswith("Error: dsreg schema missing or older than this package (Table "), line
        assert line.endswith("dsreg_session' doesn't exist): run dsreg upgrade"), line
    for args in (["ls"], ["get", "/x"], ["put", "/x", "1"]):  # they call procedures: 1305
        line = fails([args[0], "--url", url, *args[1:]])
        assert line.startswith("Error: dsreg schema missing or older than this package (PROCEDURE "), line
        assert line.endswith(" does not exist): run dsreg upgrade"), line
    doctor = CliRunner().invoke(main, ["doctor", "--url", url], catch_exceptions=False)
    assert doctor.exit_code == 1
    assert f"[FAIL] schema: no dsreg schema in this database (this package's head is {migrate.head()}): " in (
        doctor.stdout
    )


def test_schema_older_than_the_package(server: ServerInfo, make_db: Callable[..., str]) -> None:
    url = server.url(make_db(migrated=False))
    old = previous_revision()
    migrate.upgrade(url, old)
    expected = f"database at revision {old}, older than this package (head {migrate.head()}): run dsreg upgrade"

    status = CliRunner().invoke(main, ["status", "--url", url], catch_exceptions=False)
    assert status.exit_code == 0, status.output  # the status itself is still worth seeing
    assert status.stderr == f"warning: {expected}\n"
    assert "reaper: last run" in status.stdout

    doctor = CliRunner().invoke(main, ["doctor", "--url", url], catch_exceptions=False)
    assert doctor.exit_code == 1
    assert f"[FAIL] schema: {expected}\n" in doctor.stdout

    migrate.upgrade(url)
    status = CliRunner().invoke(main, ["status", "--url", url], catch_exceptions=False)
    assert status.exit_code == 0 and status.stderr == ""


def test_event_scheduler_off(server: ServerInfo, db_url: str) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.event_scheduler")
        (before,) = cur.fetchone()  # type: ignore[misc]
        cur.execute("SET GLOBAL event_scheduler = OFF")
        try:
            result = CliRunner().invoke(main, ["doctor", "--url", db_url], catch_exceptions=False)
        finally:
            cur.execute(f"SET GLOBAL event_scheduler = {before}")
    assert result.exit_code == 1
    [line] = [x for x in result.stdout.splitlines() if x.startswith("[FAIL] event scheduler")]
    assert line.startswith("[FAIL] event scheduler: OFF: sessions never expire"), line
    assert "SET GLOBAL event_scheduler = ON" in line and "event_scheduler=ON under [mysqld] in my.cnf" in line


# -- migration lock --------------------------------------------------------------
def test_migration_lock_held(server: ServerInfo, dbname: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with server.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO dsreg_migration_lock (id, owner, expires_at) "
            "VALUES (1, 'deadhost:4242:cafe', UTC_TIMESTAMP(6) + INTERVAL 600 SECOND)"
        )
    # the real lock, waited for 1 s instead of 20 minutes (env.py looks it up on each run)
    monkeypatch.setattr(migration_lock, "migration_lock", functools.partial(migration_lock.migration_lock, wait_s=1.0))
    result = CliRunner().invoke(main, ["upgrade", "--url", server.url(dbname)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    errors = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
    assert errors == [result.stderr.splitlines()[-1]], result.stderr  # progress lines may come before it
    line = errors[0]
    assert line.startswith("Error: migration lock busy: dsreg_migration_lock held by deadhost:4242:cafe (lease until ")
    assert " UTC) for over 1 s; wait for deadhost:4242:cafe to finish, or if it died: the stale lock expires" in line
    assert line.endswith("release it now with dsreg release-migration-lock"), line


def test_migration_lock_holder_is_named_when_known() -> None:
    line = explain(MigrationLocked("dsreg_migration_lock held by web-3:812:0a1b2c3d for over 1200 s"))
    assert "; wait for web-3:812:0a1b2c3d to finish, or if it died: the stale lock expires" in line, line
    assert "\n" not in line


# -- the Python client -----------------------------------------------------------
def test_client_raises_schema_missing_not_unavailable(server: ServerInfo, make_db: Callable[..., str]) -> None:
    """1305 on an unmigrated database: a short retry (a routine may be mid DROP + CREATE), then SchemaMissing."""
    client = Client(server.url(make_db(migrated=False)), retry_seconds=10.0)
    try:
        started = time.monotonic()
        with pytest.raises(SchemaMissing) as raised:
            client.get("/x")
        elapsed = time.monotonic() - started
    finally:
        client.dispose()
    assert not isinstance(raised.value, Unavailable)
    assert "dsreg_get does not exist): run dsreg upgrade" in str(raised.value)
    assert client.routine_retry_seconds <= elapsed < 5.0, elapsed  # not the 10 s retry budget
    assert client.retries[1305] >= 2 and set(client.retries) == {1305}, client.retries


def test_client_raises_schema_missing_at_once_for_a_missing_table(db_url: str, admin: pymysql.Connection) -> None:
    with admin.cursor() as cur:
        cur.execute("DROP TABLE dsreg_node")
    client = Client(db_url, retry_seconds=10.0)
    try:
        with pytest.raises(SchemaMissing, match=r"dsreg_node' doesn't exist\): run dsreg upgrade"):
            client.get("/x")
    finally:
        client.dispose()
    assert sum(client.retries.values()) == 0, client.retries


def test_session_is_suspended_while_its_procedure_is_missing(db_url: str, admin: pymysql.Connection) -> None:
    """A keepalive that hits SchemaMissing leaves the lease unconfirmed, like Unavailable: SUSPENDED."""
    from dsreg_db.schema import sqlobjects

    keepalive = next(o for o in sqlobjects.load(sqlobjects.SQL_DIR) if o.name == "dsreg_session_keepalive")
    states: list[SessionState] = []
    suspended = threading.Event()

    def listen(state: SessionState) -> None:
        states.append(state)
        if state is SessionState.SUSPENDED:
            suspended.set()

    with Registry(db_url) as registry:
        session = registry.session("schema-gone", ttl=30.0, interval=0.2)
        session.add_listener(listen)
        with session:
            with admin.cursor() as cur:
                cur.execute("DROP PROCEDURE dsreg_session_keepalive")
            try:
                assert suspended.wait(10.0), states
            finally:
                with admin.cursor() as cur:
                    for statement in keepalive.statements():
                        cur.execute(statement)
    assert SessionState.SUSPENDED in states
