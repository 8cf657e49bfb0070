"""Bad input gets 45002 (or 45003 for a wrong token) naming the argument, and changes nothing.

Called directly over SQL: callers in other languages never pass through Python.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pymysql
import pytest

from dsreg_db import InvalidArgument, Registry
from dsreg_db.schema.sqlobjects import SQL_DIR
from tests.conftest import ServerInfo
from tests.sqlcall import call, open_session, query, snapshot, sqlstate

BAD_PATHS = [
    None,
    "",
    "/",
    "nodes",
    "/a/",
    "//a",
    "/a//b",
    "/a/./b",
    "/a/..",
    "/é",
    "/a\x00b",
    "/a\tb",
    "/a\nb",
    "/\x7f",
    "/" + "x" * 255,
    "/日本",
    "/a\n",
    "/a\r\n",
    "/a/b\n",
]
# printable ASCII that must be stored and matched literally, never interpreted
ODD_PATHS = [
    "/a'b",
    '/a"b',
    "/a\\b",
    "/a%b",
    "/a_b",
    "/a;b",
    "/a -- b",
    "/a/*b*",
    "/a`b",
    "/ lead",
    "/trail ",
    "/a%",
    "/_",
]


@pytest.fixture
def s(conn: pymysql.Connection) -> tuple[int, str]:
    return open_session(conn, "s", 5000)


def _fails(conn: pymysql.Connection, state: str, procedure: str, *args: Any, out: int = 0) -> str:
    before = snapshot(conn)
    with pytest.raises(pymysql.err.MySQLError) as err:
        call(conn, procedure, *args, out=out)
    assert sqlstate(err.value) == state, f"{procedure}{args!r}: {err.value}"
    assert snapshot(conn) == before, f"{procedure}{args!r} changed the database"
    return str(err.value.args[1])


def test_bad_paths_are_rejected_by_every_procedure(conn: pymysql.Connection, s: tuple[int, str]) -> None:
    sid, token = s
    call(conn, "dsreg_put", None, None, "/exists", "v")
    for path in BAD_PATHS:
        calls: list[tuple[str, tuple[Any, ...], int, str]] = [
            ("dsreg_heartbeat", (sid, token, path, "v"), 0, "p_path"),
            ("dsreg_put", (None, None, path, "v"), 0, "p_path"),
            ("dsreg_put", (sid, token, path, "v"), 0, "p_path"),
            ("dsreg_get", (path,), 0, "p_path"),
            ("dsreg_delete", (sid, token, path), 0, "p_path"),
            ("dsreg_lock_acquire", (sid, token, path), 1, "p_name"),
            ("dsreg_lock_release", (sid, token, path), 0, "p_name"),
        ]
        if path != "/":  # the root is a valid prefix
            calls += [
                ("dsreg_children", (path,), 0, "p_path"),
                ("dsreg_watch", (path, 0, 10), 0, "p_prefix"),
                ("dsreg_list", (path,), 1, "p_prefix"),
            ]
        for procedure, args, out, argument in calls:
            message = _fails(conn, "45002", procedure, *args, out=out)
            assert message.startswith(argument + ":"), (procedure, path, message)


def test_odd_but_valid_paths_are_literal(conn: pymysql.Connection, s: tuple[int, str]) -> None:
    sid, token = s
    for i, path in enumerate(ODD_PATHS):
        call(conn, "dsreg_heartbeat", sid, token, path, f"v{i}")
    for i, path in enumerate(ODD_PATHS):
        rows, _ = call(conn, "dsreg_get", path)
        assert rows and rows[0][0] == path and rows[0][1] == f"v{i}", path
    rows, _ = call(conn, "dsreg_children", "/")
    names = [r[0] for r in rows]
    assert names == sorted(names, key=lambda n: n.encode())
    assert set(names) == {p[1:].split("/")[0] for p in ODD_PATHS}
    # '%' and '_' in a prefix match only themselves
    rows, _ = call(conn, "dsreg_children", "/a%")
    assert rows == []
    assert query(conn, "SELECT COUNT(*) FROM dsreg_node") == [(len(ODD_PATHS),)]


def test_bad_values_ttls_owners_and_bounds(conn: pymysql.Connection, s: tuple[int, str]) -> None:
    sid, token = s
    limit = 65536
    assert "p_value" in _fails(conn, "45002", "dsreg_heartbeat", sid, token, "/v", None)
    assert "p_value" in _fails(conn, "45002", "dsreg_put", None, None, "/v", "x" * (limit + 1))
    assert "p_value" in _fails(conn, "45002", "dsreg_put", None, None, "/v", "é" * (limit // 2 + 1))  # bytes count
    call(conn, "dsreg_put", None, None, "/v", "x" * limit)  # exactly the limit is fine
    query(conn, "UPDATE dsreg_setting SET value = 10 WHERE name = 'max_value_bytes'")
    assert "p_value" in _fails(conn, "45002", "dsreg_put", None, None, "/w", "x" * 11)
    # a too-long value for a path someone else owns: the owner is checked first (heartbeat's error order)
    other, other_token = open_session(conn, "other", 5000)
    call(conn, "dsreg_heartbeat", other, other_token, "/theirs", "v")
    assert "held by session" in _fails(conn, "45005", "dsreg_heartbeat", sid, token, "/theirs", "x" * 11)
    assert "persistent" in _fails(conn, "45005", "dsreg_heartbeat", sid, token, "/v", "x" * 11)
    for ttl in (None, 0, 999, -5, 3_600_001, 2**40):
        assert _fails(conn, "45002", "dsreg_session_open", "o", ttl, out=2).startswith("p_ttl_ms:")
    for owner in (None, "x" * 256):
        assert _fails(conn, "45002", "dsreg_session_open", owner, 5000, out=2).startswith("p_owner:")
    for args in (("/", -1, 10), ("/", None, 10), ("/", 0, 0), ("/", 0, -1), ("/", 0, 10001), ("/", 0, None)):
        _fails(conn, "45002", "dsreg_watch", *args)
    for procedure, args, out in (
        ("dsreg_session_keepalive", (None, token), 0),
        ("dsreg_session_keepalive", (sid, None), 0),
        ("dsreg_session_close", (None, token), 0),
        ("dsreg_heartbeat", (None, token, "/h", "v"), 0),
        ("dsreg_heartbeat", (sid, None, "/h", "v"), 0),
        ("dsreg_lock_acquire", (sid, None, "/l"), 1),
        ("dsreg_lock_acquire", (None, token, "/l"), 1),
        ("dsreg_put", (sid, None, "/h", "v"), 0),
    ):
        assert re.match(r"p_(session_id|token):", _fails(conn, "45002", procedure, *args, out=out)), procedure


def test_bad_beats_of_a_node_the_session_holds_change_nothing(conn: pymysql.Connection, s: tuple[int, str]) -> None:
    """Tried: every bad heartbeat on a path the session already holds, the call that takes the
    heartbeat's own fast path when the arguments are good (revision 0013 skips the path and owner
    checks there, since the node is the session's). Each fails with its SQLSTATE and changes
    nothing; a lease that needs writing (lease_tick_ms 0) is not written either."""
    sid, token = s
    call(conn, "dsreg_heartbeat", sid, token, "/mine", "v0")
    query(conn, "UPDATE dsreg_setting SET value = 10 WHERE name = 'max_value_bytes'")
    query(conn, "UPDATE dsreg_setting SET value = 0 WHERE name = 'lease_tick_ms'")
    for value in ("x" * 11, "é" * 6):  # 11 and 12 bytes: the limit counts bytes
        assert "max_value_bytes" in _fails(conn, "45002", "dsreg_heartbeat", sid, token, "/mine", value)
    assert "p_value" in _fails(conn, "45002", "dsreg_heartbeat", sid, token, "/mine", None)
    assert "p_token" in _fails(conn, "45002", "dsreg_heartbeat", sid, None, "/mine", "v1")
    assert "p_token" in _fails(conn, "45003", "dsreg_heartbeat", sid, token[::-1], "/mine", "v1")
    assert "p_token" in _fails(conn, "45003", "dsreg_heartbeat", sid, token[::-1], "/mine", "x" * 11)
    other, other_token = open_session(conn, "other", 5000)
    assert "held by session" in _fails(conn, "45005", "dsreg_heartbeat", other, other_token, "/mine", "v1")
    call(conn, "dsreg_session_close", sid, token)
    assert "expired" in _fails(conn, "45001", "dsreg_heartbeat", sid, token, "/mine", "v1")
    # and the good beat still works: exactly the limit, through the fast path
    sid, token = open_session(conn, "s2", 5000)
    call(conn, "dsreg_heartbeat", sid, token, "/mine", "v0")
    call(conn, "dsreg_heartbeat", sid, token, "/mine", "x" * 10)
    assert query(conn, "SELECT value, version FROM dsreg_node WHERE path = '/mine'") == [(b"x" * 10, 2)]


def test_no_call_can_act_for_another_session(conn: pymysql.Connection) -> None:
    """Every session-bound call with someone else's id and a wrong token: 45003, nothing changes."""
    victim = open_session(conn, "victim", 5000)
    attacker = open_session(conn, "attacker", 5000)
    call(conn, "dsreg_heartbeat", victim[0], victim[1], "/nodes/victim", "v")
    call(conn, "dsreg_lock_acquire", victim[0], victim[1], "/locks/v", out=1)
    wrong = attacker[1]  # a real token, of another session
    for procedure, args, out in (
        ("dsreg_session_keepalive", (victim[0], wrong), 0),
        ("dsreg_session_close", (victim[0], wrong), 0),
        ("dsreg_heartbeat", (victim[0], wrong, "/nodes/victim", "stolen"), 0),
        ("dsreg_put", (victim[0], wrong, "/nodes/new", "x"), 0),
        ("dsreg_delete", (victim[0], wrong, "/nodes/victim"), 0),
        ("dsreg_lock_acquire", (victim[0], wrong, "/locks/w"), 1),
        ("dsreg_lock_release", (victim[0], wrong, "/locks/v"), 0),
        ("dsreg_lock_release", (attacker[0], attacker[1], "/locks/v"), 0),
        ("dsreg_delete", (attacker[0], attacker[1], "/nodes/victim"), 0),
    ):
        _fails(conn, "45003", procedure, *args, out=out)
    # and ids that do not exist: 45001
    _fails(conn, "45001", "dsreg_session_keepalive", 999_999, wrong)


def test_no_dynamic_sql_in_the_server_code() -> None:
    """PREPARE/EXECUTE of text built from arguments is the injection surface; there is none at all."""
    for path in SQL_DIR.rglob("*.sql"):
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        assert not re.search(r"\b(PREPARE|EXECUTE\s+\w|DEALLOCATE)\b", code, re.I), path


def test_exceptions_carry_sqlstate_argument_message(db_url: str) -> None:
    with Registry(db_url) as registry, pytest.raises(InvalidArgument) as err:
        registry.put("/a//b", "v")
    assert (err.value.sqlstate, err.value.argument) == ("45002", "p_path")
    assert "non-empty" in err.value.message and str(err.value).startswith("[45002] p_path:")


def test_wrapper_never_logs_tokens_or_passwords(
    server: ServerInfo, dbname: str, caplog: pytest.LogCaptureFixture
) -> None:
    with server.connect() as root, root.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'dsreg_logtest'@'127.0.0.1' IDENTIFIED BY 'Sekr1t-pw'")
        cur.execute(f"GRANT EXECUTE ON `{dbname}`.* TO 'dsreg_logtest'@'127.0.0.1'")
    url = f"mysql://dsreg_logtest:Sekr1t-pw@{server.host}:{server.port}/{dbname}"
    caplog.set_level(logging.DEBUG)
    with Registry(url) as registry:
        session = registry.session("logged", ttl=1.0)
        _, token = session.credentials()
        session.register("/nodes/logged", "v")
        with session._lock:  # force LOST and re-registration: the chattiest path
            import time

            time.sleep(3.0)
        time.sleep(1.0)
        with pytest.raises(InvalidArgument):
            registry.get("bad")
        _, new_token = session.credentials()
        session.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "LOST" in text or "lost" in text  # the logs were captured at all
    for secret in (token, new_token, "Sekr1t-pw"):
        assert secret not in text
    with server.connect() as root, root.cursor() as cur:
        cur.execute("DROP USER 'dsreg_logtest'@'127.0.0.1'")
