"""Property-based fuzzing against a real server (hypothesis, stateful).

Random sequences of calls from several sessions with random valid and invalid
arguments. Before each call an oracle, written independently of the SQL,
predicts the outcome (success or which SQLSTATE) from the arguments and the
rows as they are; after each call the invariants must hold:

* every ephemeral node and every lock belongs to a live session;
* revisions are gapless and strictly increasing: the change log holds exactly
  compacted+1 .. counter, and every node's mod_rev is within it;
* a failed call changed nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.conftest import ServerInfo
from tests.sqlcall import call, expire, query, snapshot, sqlstate

MAX_VALUE = 64
GOOD = st.sampled_from(["/a", "/a/b", "/a/b/c", "/b", "/a%", "/a_b", "/a b", "/x'y", "/x\\y", "/locks/l"])
PATHS = st.one_of(
    GOOD,
    GOOD,
    GOOD,  # weighted: most calls should reach the session and ownership checks
    st.sampled_from([None, "", "/", "a", "/a/", "//a", "/a/../b", "/é", "/a\x00", "/" + "z" * 300]),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
    st.text(max_size=6).map(lambda t: "/" + t),
)
VALUES = st.one_of(st.none(), st.text(max_size=20), st.text(min_size=MAX_VALUE - 2, max_size=MAX_VALUE + 2))
TTLS = st.one_of(st.integers(min_value=-5, max_value=5_000_000), st.none(), st.sampled_from([1000, 3600000]))
COUNTS = {"steps": 0, "calls": 0, "errors": 0}


def valid_path(p: Any, allow_root: bool = False) -> bool:
    if not isinstance(p, str):
        return False
    if allow_root and p == "/":
        return True
    if not p.isascii() or len(p) > 255 or not re.fullmatch(r"(/[ -.0-~]+)+", p):
        return False
    return not any(seg in (".", "..") for seg in p.split("/")[1:])


class Registry(RuleBasedStateMachine):
    conn: pymysql.Connection

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[tuple[int, str]] = []
        for table in ("dsreg_event", "dsreg_lock", "dsreg_node", "dsreg_session"):
            query(self.conn, f"DELETE FROM {table}")
        query(self.conn, "UPDATE dsreg_counter SET value = 0")

    # -- the oracle's view of the rows ------------------------------------
    def _alive(self, sid: Any) -> bool:
        return bool(query(self.conn, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", sid)[0][0])

    def _owner(self, path: str) -> tuple[bool, int | None]:
        rows = query(self.conn, "SELECT session_id FROM dsreg_node WHERE path = %s", path)
        return (True, rows[0][0]) if rows else (False, None)

    def _holds(self, path: str, value: str) -> bool:
        """An unchanged heartbeat writes nothing, so its value is not size-checked."""
        rows = query(self.conn, "SELECT value FROM dsreg_node WHERE path = %s", path)
        return bool(rows) and rows[0][0] == value.encode()

    def _session_error(self, sid: Any, token: Any) -> str | None:
        if sid is None or token is None:
            return "45002"
        if not self._alive(sid):
            return "45001"
        return None if any(s == (sid, token) for s in self.sessions) else "45003"

    def _pick(self, data: st.DataObject, allow_none: bool = True) -> tuple[Any, Any]:
        if self.sessions and data.draw(st.integers(0, 9)) < 7:  # mostly a real session with its token
            return data.draw(st.sampled_from(self.sessions))
        options: list[tuple[Any, Any]] = list(self.sessions)
        if self.sessions:
            sid, token = data.draw(st.sampled_from(self.sessions))
            options += [(sid, "0" * 32), (sid, None), (999_999, token)]  # wrong token, NULL token, unknown id
        if allow_none or not options:
            options.append((None, None))
        return data.draw(st.sampled_from(options))

    def _run(self, expected: str | None, procedure: str, *args: Any, out: int = 0) -> Any:
        COUNTS["calls"] += 1
        before = snapshot(self.conn)
        try:
            _, outs = call(self.conn, procedure, *args, out=out)
        except pymysql.err.MySQLError as exc:
            COUNTS["errors"] += 1
            assert sqlstate(exc) == expected, f"{procedure}{args!r}: got {exc}, expected {expected}"
            assert snapshot(self.conn) == before, f"{procedure}{args!r} failed but changed rows"
            return None
        assert expected is None, f"{procedure}{args!r}: succeeded, expected {expected}"
        return outs

    # -- rules ------------------------------------------------------------
    @rule(owner=st.one_of(st.none(), st.text(max_size=10), st.just("o" * 256)), ttl=TTLS)
    def open(self, owner: Any, ttl: Any) -> None:
        ok = isinstance(owner, str) and len(owner) <= 255 and isinstance(ttl, int) and 1000 <= ttl <= 3600000
        outs = self._run(None if ok else "45002", "dsreg_session_open", owner, ttl, out=2)
        if outs is not None:
            self.sessions.append((int(outs[0]), str(outs[1])))

    @rule(data=st.data(), path=PATHS, value=VALUES, put=st.booleans())
    def write(self, data: st.DataObject, path: Any, value: Any, put: bool) -> None:
        sid, token = self._pick(data, allow_none=put)
        # checked in this order: path and NULLs, session and token, ownership, then the size of a written value
        expected: str | None
        if not valid_path(path) or value is None or (sid is None and not put):
            expected = "45002"
        else:
            expected = self._session_error(sid, token) if sid is not None or not put else None
            if expected is None:
                exists, owner = self._owner(path)
                if exists and owner != sid:
                    expected = "45005"
                elif len(value.encode()) > MAX_VALUE and not (not put and self._holds(path, value)):
                    expected = "45002"
        self._run(expected, "dsreg_put" if put else "dsreg_heartbeat", sid, token, path, value)

    @rule(data=st.data(), path=PATHS)
    def delete(self, data: st.DataObject, path: Any) -> None:
        sid, token = self._pick(data)
        expected = "45002" if not valid_path(path) else (self._session_error(sid, token) if sid else None)
        if expected is None:
            exists, owner = self._owner(path)
            expected = "45003" if exists and owner is not None and owner != sid else None
        self._run(expected, "dsreg_delete", sid, token, path)

    @rule(data=st.data(), name=PATHS, release=st.booleans())
    def lock(self, data: st.DataObject, name: Any, release: bool) -> None:
        sid, token = self._pick(data, allow_none=False)
        expected = "45002" if not valid_path(name) else self._session_error(sid, token)
        if release:
            if expected is None:
                held = query(
                    self.conn, "SELECT COUNT(*) FROM dsreg_lock WHERE name = %s AND session_id = %s", name, sid
                )[0][0]
                expected = None if held else "45003"
            self._run(expected, "dsreg_lock_release", sid, token, name)
        else:
            self._run(expected, "dsreg_lock_acquire", sid, token, name, out=1)

    @rule(data=st.data(), reap=st.booleans())
    def end(self, data: st.DataObject, reap: bool) -> None:
        sid, token = self._pick(data, allow_none=False)
        if reap and sid is not None:
            expire(self.conn, sid)
            self._run(None, "dsreg_reap", out=1)
            assert not self._alive(sid)
        else:
            self._run(self._session_error(sid, token), "dsreg_session_close", sid, token)

    @rule(prefix=PATHS, after=st.integers(min_value=-2, max_value=50), limit=st.integers(min_value=-1, max_value=20))
    def read(self, prefix: Any, after: int, limit: int) -> None:
        ok = valid_path(prefix, allow_root=True)
        self._run(None if ok else "45002", "dsreg_children", prefix)
        self._run(None if ok and after >= 0 and limit >= 1 else "45002", "dsreg_watch", prefix, after, limit)

    # -- invariants -------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        COUNTS["steps"] += 1
        orphans = query(
            self.conn,
            """
            SELECT (SELECT COUNT(*) FROM dsreg_node n LEFT JOIN dsreg_session s ON s.id = n.session_id
                     WHERE n.session_id IS NOT NULL AND s.id IS NULL),
                   (SELECT COUNT(*) FROM dsreg_lock l LEFT JOIN dsreg_session s ON s.id = l.session_id
                     WHERE s.id IS NULL)""",
        )[0]
        assert orphans == (0, 0), orphans
        counter, compacted = (
            r[0]
            for r in query(
                self.conn,
                "SELECT value FROM dsreg_counter WHERE name IN ('revision', 'compacted') ORDER BY name = 'compacted'",
            )
        )
        revs = [r[0] for r in query(self.conn, "SELECT rev FROM dsreg_event ORDER BY rev")]
        assert revs == list(range(compacted + 1, counter + 1))
        assert query(self.conn, "SELECT COUNT(*) FROM dsreg_node WHERE mod_rev > %s OR version < 1", counter) == [(0,)]


def _run(server: ServerInfo, make_db: Callable[[], str], examples: int, steps: int) -> None:
    name = make_db()
    with server.connect(name) as conn:
        query(conn, "ALTER EVENT dsreg_reaper DISABLE")
        query(conn, "ALTER EVENT dsreg_compactor DISABLE")
        query(conn, "UPDATE dsreg_setting SET value = %s WHERE name = 'max_value_bytes'", MAX_VALUE)
        # reaps come only from the machine here; the stall grace (tested on its own) would delay them
        query(conn, "UPDATE dsreg_setting SET value = 1000000000 WHERE name = 'stall_after_ms'")
        Registry.conn = conn
        run_state_machine_as_test(
            Registry,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=not os.environ.get("DSREG_FUZZ_RANDOM"),  # reproducible by default; set it to explore
                suppress_health_check=list(HealthCheck),
            ),
        )
    print(f"fuzz: {examples} examples, {COUNTS['steps']} steps, {COUNTS['calls']} calls, {COUNTS['errors']} errors")


def test_fuzz_procedures(server: ServerInfo, make_db: Callable[[], str]) -> None:
    _run(server, make_db, examples=60, steps=30)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fuzz_procedures_long(server: ServerInfo, make_db: Callable[[], str]) -> None:
    _run(server, make_db, examples=800, steps=50)
