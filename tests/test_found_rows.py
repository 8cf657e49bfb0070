"""Every procedure behaves the same with and without CLIENT_FOUND_ROWS.

SQLAlchemy and Connector/J set the flag, plain PyMySQL and the mariadb CLI do
not; ROW_COUNT() inside a procedure follows it. The same script of calls --
including the no-change cases where ROW_COUNT() differs -- runs on two fresh
databases, one connection of each kind, and must give identical outcomes and
identical table contents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql

from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, expire, snapshot, sqlstate


def _script(conn: pymysql.Connection) -> list[Any]:
    outcomes: list[Any] = []

    def step(procedure: str, *args: Any, out: int = 0) -> Any:
        try:
            rows, outs = call(conn, procedure, *args, out=out)
            outcomes.append((procedure, rows, outs))
            return outs
        except pymysql.err.MySQLError as exc:
            outcomes.append((procedure, "error", sqlstate(exc) or exc.args[0]))
            return None

    disable_reaper_event(conn)
    a_id, a_tok = step("dsreg_session_open", "a", 5000, out=2)
    b_id, b_tok = step("dsreg_session_open", "b", 5000, out=2)
    outcomes[-2:] = [("open", "ok"), ("open", "ok")]  # tokens are random; ids equal anyway
    step("dsreg_session_keepalive", a_id, a_tok)
    step("dsreg_session_keepalive", a_id, a_tok)  # same-microsecond extension changes nothing in the best case
    step("dsreg_heartbeat", a_id, a_tok, "/n/a", "v1")
    step("dsreg_heartbeat", a_id, a_tok, "/n/a", "v1")  # unchanged: ROW_COUNT 0 vs 1 territory
    step("dsreg_heartbeat", a_id, a_tok, "/n/a", "v2")
    step("dsreg_put", None, None, "/p", "x")
    step("dsreg_put", None, None, "/p", "x")  # an UPDATE to the same value
    step("dsreg_put", b_id, b_tok, "/n/a", "steal")
    step("dsreg_get", "/n/a")
    step("dsreg_children", "/n")
    step("dsreg_delete", None, None, "/missing")
    step("dsreg_delete", b_id, b_tok, "/n/a")
    step("dsreg_lock_acquire", a_id, a_tok, "/l", out=1)
    step("dsreg_lock_acquire", a_id, a_tok, "/l", out=1)  # re-acquire: same fence, no change
    step("dsreg_lock_acquire", b_id, b_tok, "/l", out=1)
    step("dsreg_lock_release", b_id, b_tok, "/l")
    step("dsreg_lock_release", a_id, a_tok, "/l")
    step("dsreg_lock_release", a_id, a_tok, "/l")
    step("dsreg_watch", "/", 0, 100)
    step("dsreg_list", "/", out=1)
    step("dsreg_session_keepalive", a_id, "0" * 32)
    expire(conn, b_id)
    step("dsreg_reap", out=1)
    step("dsreg_reap", out=1)
    step("dsreg_heartbeat", b_id, b_tok, "/n/b", "late")
    step("dsreg_session_close", a_id, a_tok)
    step("dsreg_session_close", a_id, a_tok)
    step("dsreg_compact", out=1)
    return outcomes


def test_same_outcomes_with_and_without_client_found_rows(server: ServerInfo, make_db: Callable[[], str]) -> None:
    results = []
    for found_rows in (False, True):
        name = make_db()
        with server.connect(name, found_rows=found_rows) as conn:
            # check the premise: this connection really reports found (not changed) rows
            with conn.cursor() as cur:
                cur.execute("CREATE TEMPORARY TABLE t (x INT)")
                cur.execute("INSERT INTO t VALUES (1)")
                assert cur.execute("UPDATE t SET x = 1") == (1 if found_rows else 0)
            outcomes = _script(conn)
            results.append((outcomes, snapshot(conn)))
    (plain, plain_state), (found, found_state) = results
    assert plain == found
    assert plain_state == found_state
    errors = [o for o in plain if o[1] == "error"]
    # the script does hit every error path it meant to
    assert [e[2] for e in errors] == ["45005", "45003", "45003", "45003", "45003", "45001", "45001"]
