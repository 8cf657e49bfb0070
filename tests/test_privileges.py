"""Least privilege: an EXECUTE-only account does everything through procedures and nothing to the tables;
the procedures' definer account cannot log in; grants survive upgrades that replace routines."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pymysql
import pytest
from click.testing import CliRunner

from dsreg_db.cli import main
from dsreg_db.schema import migrate, sqlobjects
from tests.conftest import ServerInfo
from tests.sqlcall import call, query

TABLES = sorted(obj.name for obj in sqlobjects.load(sqlobjects.SQL_DIR) if obj.kind == "tables")


@pytest.fixture
def accounts(server: ServerInfo, dbname: str) -> Iterator[tuple[str, str]]:
    """`dsreg grant` an app account and a locked definer; migrate with that definer."""
    url = server.url(dbname)
    result = CliRunner().invoke(main, ["grant", "--url", url, "--definer", "dsreg_owner@%"])
    assert result.exit_code == 0, result.output
    migrate.downgrade(url, "base")
    migrate.upgrade(url, definer="dsreg_owner@%")
    result = CliRunner().invoke(
        main, ["grant", "--url", url, "dsreg_app@127.0.0.1", "--password-env", "APP_PW"], env={"APP_PW": "app-pw-1"}
    )
    assert result.exit_code == 0 and "EXECUTE on 19 procedures" in result.output, result.output
    yield "dsreg_app", "app-pw-1"
    with server.connect() as root, root.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'dsreg_app'@'127.0.0.1', 'dsreg_owner'@'%'")


def test_execute_only_account_uses_every_procedure_and_no_table(
    server: ServerInfo, dbname: str, accounts: tuple[str, str]
) -> None:
    user, password = accounts
    with pymysql.connect(
        host=server.host, port=server.port, user=user, password=password, database=dbname, autocommit=True
    ) as app:
        _, (sid, token) = call(app, "dsreg_session_open", "app", 5000, out=2)
        call(app, "dsreg_session_keepalive", sid, token)
        call(app, "dsreg_heartbeat", sid, token, "/nodes/app", "v")
        call(app, "dsreg_put", None, None, "/config/p", "v")
        call(app, "dsreg_put", sid, token, "/nodes/e", "v")
        assert call(app, "dsreg_get", "/nodes/app")[0][0][1] == "v"
        assert call(app, "dsreg_children", "/nodes")[0] == [("app",), ("e",)]
        assert len(call(app, "dsreg_list", "/", out=1)[0]) == 3
        assert len(call(app, "dsreg_watch", "/", 0, 100)[0]) == 3
        _, (fence,) = call(app, "dsreg_lock_acquire", sid, token, "/locks/a", out=1)
        assert fence == 1
        query(app, "START TRANSACTION")  # the guards run inside the application's own transaction
        call(app, "dsreg_fence_check", sid, token, "/locks/a", fence)
        call(app, "dsreg_session_check", sid, token)
        query(app, "COMMIT")
        call(app, "dsreg_lock_release", sid, token, "/locks/a")
        assert call(app, "dsreg_lock_acquire_fair", sid, token, "/locks/f", out=2)[1][0] is not None
        assert [r[1] for r in call(app, "dsreg_lock_contenders", "/locks/f")[0]] == ["app"]
        call(app, "dsreg_lock_dequeue", sid, token, "/locks/f")
        call(app, "dsreg_lock_release", sid, token, "/locks/f")
        call(app, "dsreg_delete", sid, token, "/nodes/e")
        call(app, "dsreg_reap", out=1)
        call(app, "dsreg_compact", out=1)
        call(app, "dsreg_session_close", sid, token)
        # tried: every direct table statement, and calling a token-less helper
        for table in TABLES:
            for statement in (
                f"SELECT * FROM {table}",
                f"INSERT INTO {table} () VALUES ()",
                f"UPDATE {table} SET created_at = created_at",
                f"DELETE FROM {table}",
            ):
                with pytest.raises(pymysql.err.MySQLError) as err:
                    query(app, statement)
                assert err.value.args[0] in (1142, 1143), (statement, err.value)
        with pytest.raises(pymysql.err.MySQLError) as err:
            call(app, "dsreg__session_end", 1, False, out=1)
        assert err.value.args[0] == 1370  # execute command denied
    with server.connect(dbname) as root:
        definers = {
            r[0]
            for r in query(root, "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")
        }
        assert definers == {"dsreg_owner@%"}
        assert {
            r[0] for r in query(root, "SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()")
        } == {"dsreg_owner@%"}


def test_definer_account_cannot_log_in(server: ServerInfo, accounts: tuple[str, str]) -> None:
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(host=server.host, port=server.port, user="dsreg_owner", password="")
    assert err.value.args[0] in (3118, 4151), err.value  # "account is locked" (MySQL, MariaDB), not a bad password


def test_grants_survive_an_upgrade_that_replaces_routines(
    server: ServerInfo, dbname: str, accounts: tuple[str, str]
) -> None:
    """Upgrades replace routines by DROP + CREATE, and a DROP takes the routine's grants with it."""
    url = server.url(dbname)
    revisions = sqlobjects.revisions()
    assert len(revisions) >= 2, "needs a revision that replaces routines"
    migrate.downgrade(url, revisions[0], definer="dsreg_owner@%")
    migrate.upgrade(url, definer="dsreg_owner@%")
    with pymysql.connect(
        host=server.host, port=server.port, user="dsreg_app", password="app-pw-1", database=dbname, autocommit=True
    ) as app:
        _, (sid, token) = call(app, "dsreg_session_open", "app", 5000, out=2)
        call(app, "dsreg_heartbeat", sid, token, "/nodes/app", "v")  # dsreg_heartbeat was replaced
        assert call(app, "dsreg_get", "/nodes/app")[0][0][1] == "v"


def _app(server: ServerInfo, dbname: str) -> pymysql.Connection:
    return pymysql.connect(
        host=server.host, port=server.port, user="dsreg_app", password="app-pw-1", database=dbname, autocommit=True
    )


def _gone_within(root: pymysql.Connection, session_id: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if query(root, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", session_id) == [(0,)]:
            return True
        time.sleep(0.1)
    return False


def test_locked_definer_events_reap_a_dead_session(server: ServerInfo, dbname: str, accounts: tuple[str, str]) -> None:
    """0005: with the definer `dsreg grant --definer` made (no EVENT privilege) the scheduler skipped the
    reaper every second ("user no longer has EVENT privilege") and a 1 s session was still there after
    4 s. Here the event alone reaps it (nobody calls dsreg_reap or opens another session), and
    `dsreg doctor` passes; after REVOKE EVENT it fails and names the fix."""
    url = server.url(dbname)
    with _app(server, dbname) as app, server.connect(dbname) as root:
        _, (sid, _token) = call(app, "dsreg_session_open", "dead", 1000, out=2)
        assert _gone_within(root, sid, 1.0 + 0.1 + 1.0 + 2.0), "the reaper event never ran as its definer"
    doctor = CliRunner().invoke(main, ["doctor", "--url", url])
    assert doctor.exit_code == 0, doctor.output
    assert "event dsreg_reaper: ENABLED, definer dsreg_owner@%" in doctor.output
    with server.connect() as root:
        query(root, f"REVOKE EVENT ON `{dbname}`.* FROM 'dsreg_owner'@'%'")
    doctor = CliRunner().invoke(main, ["doctor", "--url", url])
    assert doctor.exit_code == 1, doctor.output
    assert "lacks EVENT" in doctor.output and "dsreg grant --definer dsreg_owner@%" in doctor.output


def test_regrant_never_recreates_a_dropped_account(server: ServerInfo, dbname: str, accounts: tuple[str, str]) -> None:
    """0005: after `DROP USER app`, a migration that re-created routines re-granted to the accounts in
    dsreg_grantee, and MariaDB's GRANT re-created the account with an empty password (MySQL 8 failed
    with 1410 halfway instead). Here the account stays dropped, the migration completes and the
    account leaves dsreg_grantee."""
    url = server.url(dbname)
    with server.connect() as root:
        query(root, "DROP USER 'dsreg_app'@'127.0.0.1'")
    # back to before the newest revision that re-creates procedures (and so re-grants them)
    revisions = sqlobjects.revisions()
    recreating = [r for r in revisions if (sqlobjects.FROZEN_DIR / r / "procedures").is_dir()][-1]
    migrate.downgrade(url, revisions[revisions.index(recreating) - 1], definer="dsreg_owner@%")
    migrate.upgrade(url, definer="dsreg_owner@%")
    assert migrate.current(url) == migrate.head()
    with server.connect(dbname) as root:
        assert query(root, "SELECT COUNT(*) FROM mysql.user WHERE User = 'dsreg_app'") == [(0,)]
        assert query(root, "SELECT account FROM dsreg_grantee") == []
        public = [o for o in sqlobjects.load(sqlobjects.SQL_DIR) if sqlobjects.is_public(o)]
        assert len(query(root, "SHOW PROCEDURE STATUS WHERE Db = DATABASE()")) >= len(public)
