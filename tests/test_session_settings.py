"""The matrix: every public procedure, run under each session setting a driver or an attacker may
leave on a connection, gives the same answers and leaves the same table contents as on a plain
connection -- over PyMySQL with and without CLIENT_FOUND_ROWS.

The same scenario runs twice in one database, under its own path prefix: once on a plain
connection, once on a connection with the setting. Session ids, revisions and fences are
normalized (first session S1, revisions and fences counted from the scenario's start), so the two
transcripts must be equal, call by call.
"""

from __future__ import annotations

import uuid
from typing import Any

import pymysql
import pytest

from tests.conftest import ServerInfo
from tests.sqlcall import call, disable_reaper_event, expire, query, sqlstate

YEAR_S = 365 * 24 * 3600

#: id -> statements run on the caller's connection before the scenario
SETTINGS: dict[str, list[str]] = {
    "timestamp-a-year-ahead": [f"SET timestamp = UNIX_TIMESTAMP() + {YEAR_S}"],
    "timestamp-a-year-behind": [f"SET timestamp = UNIX_TIMESTAMP() - {YEAR_S}"],
    "time_zone": ["SET time_zone = '+13:00'"],
    "autocommit-0": ["SET autocommit = 0"],
    "read-uncommitted": ["SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"],
    "read-committed": ["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"],
    "repeatable-read": ["SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"],
    "serializable": ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE"],
    "serializable-autocommit-0": ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET autocommit = 0"],
    "read-only": ["SET SESSION TRANSACTION READ ONLY"],
    "completion-chain": ["SET completion_type = 'CHAIN'"],
    "completion-release": ["SET completion_type = 'RELEASE'"],
    "sql_mode-empty": ["SET sql_mode = ''"],
    "sql_mode-ansi": ["SET sql_mode = 'ANSI'"],
    "snapshot-isolation": ["SET innodb_snapshot_isolation = ON"],  # MariaDB >= 10.11.8 only
    "insert_id": ["SET insert_id = 9223372036854775807"],
    "max_sort_length": ["SET max_sort_length = 4"],  # clamped to the server's minimum (64 on MariaDB)
    "sql_select_limit": ["SET sql_select_limit = 1"],
    "auto_increment_increment": ["SET auto_increment_increment = 7, auto_increment_offset = 3"],
}

LONG = "a" * 70  # paths sharing more bytes than a small max_sort_length compares


class Transcript:
    """Runs calls on ``conn`` and records their answers, normalized."""

    def __init__(self, conn: pymysql.Connection, admin: pymysql.Connection, prefix: str) -> None:
        self.conn, self.admin, self.prefix = conn, admin, prefix
        counters = dict(query(admin, "SELECT name, value FROM dsreg_counter"))
        self.base_rev, self.base_fence = int(counters["revision"]), int(counters["fence"])
        self.sessions: dict[int, str] = {}
        self.lines: list[tuple[Any, ...]] = []

    def sid(self, value: Any) -> Any:
        return None if value is None else self.sessions.setdefault(int(value), f"S{len(self.sessions) + 1}")

    def path(self, value: str) -> str:
        return value.replace(self.prefix, "P", 1)

    def node(self, r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self.path(r[0]), r[1], r[2], self.sid(r[3]), r[4], r[5] - self.base_rev, r[6] - self.base_rev)

    def event(self, r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (r[0] - self.base_rev, r[1], self.path(r[2]), r[3], self.sid(r[4]))

    def run(self, procedure: str, *args: Any, out: int = 0) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
        try:
            rows, outs = call(self.conn, procedure, *args, out=out)
        except pymysql.err.MySQLError as exc:
            self.lines.append((procedure, "error", sqlstate(exc) or exc.args[0]))
            return [], ()
        if procedure == "dsreg_session_open":
            self.lines.append((procedure, self.sid(outs[0])))
        elif procedure in ("dsreg_get", "dsreg_list"):
            rev = () if not outs else (outs[0] - self.base_rev,)
            self.lines.append((procedure, [self.node(r) for r in rows], rev))
        elif procedure == "dsreg_watch":
            self.lines.append((procedure, [self.event(r) for r in rows]))
        elif procedure == "dsreg_lock_acquire":
            self.lines.append((procedure, None if outs[0] is None else outs[0] - self.base_fence))
        else:
            self.lines.append((procedure, rows, outs))
        return rows, outs

    def lease_ok(self, session_id: int, ttl_ms: int) -> None:
        """The lease the call granted, judged by the server's real clock on the admin connection."""
        ((left_us, tick),) = query(
            self.admin,
            "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at), "
            "(SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms') FROM dsreg_session WHERE id = %s",
            session_id,
        )
        self.lines.append(("lease within ttl", ttl_ms - 2000 < left_us / 1000 <= ttl_ms + tick))

    def tables(self) -> None:
        lo, hi = self.prefix + "/", self.prefix + "0"
        nodes = query(
            self.admin,
            "SELECT CONVERT(path USING utf8mb4), CONVERT(value USING utf8mb4), session_id IS NOT NULL, session_id, "
            "version, create_rev, mod_rev FROM dsreg_node WHERE path > %s AND path < %s ORDER BY path",
            lo,
            hi,
        )
        events = query(
            self.admin,
            "SELECT rev, kind, CONVERT(path USING utf8mb4), CONVERT(value USING utf8mb4), session_id FROM dsreg_event "
            "WHERE rev > %s AND path > %s AND path < %s ORDER BY rev",
            self.base_rev,
            lo,
            hi,
        )
        locks = query(
            self.admin,
            "SELECT CONVERT(name USING utf8mb4), session_id, fence FROM dsreg_lock WHERE name > %s AND name < %s",
            lo,
            hi,
        )
        sessions = query(
            self.admin, "SELECT id, owner, ttl_ms FROM dsreg_session WHERE owner LIKE %s ORDER BY id", self.prefix + "%"
        )
        self.lines += [
            ("nodes", [self.node(r) for r in nodes]),
            ("events", [self.event(r) for r in events]),
            ("locks", [(self.path(n), self.sid(s), f - self.base_fence) for n, s, f in locks]),
            ("sessions", [(self.sid(i), self.path(o), t) for i, o, t in sessions]),
        ]


def scenario(t: Transcript) -> list[tuple[Any, ...]]:
    p = t.prefix
    _, (s1, k1) = t.run("dsreg_session_open", p + "/one", 60_000, out=2)
    _, (s2, k2) = t.run("dsreg_session_open", p + "/two", 60_000, out=2)
    for value in ("v1", "v1", "v2", "vé☃😀"):
        t.run("dsreg_heartbeat", s1, k1, p + "/w", value)
    t.lease_ok(s1, 60_000)
    t.run("dsreg_session_keepalive", s2, k2)
    t.lease_ok(s2, 60_000)
    t.run("dsreg_put", None, None, p + "/p", "persistent")
    t.run("dsreg_put", s1, k1, p + "/e", "eph")
    for suffix in ("/o/b", "/o/A", "/o/a", "/o/C", f"/{LONG}1", f"/{LONG}0/z"):
        t.run("dsreg_heartbeat", s1, k1, p + suffix, "x")
    t.run("dsreg_get", p + "/w")
    t.run("dsreg_get", p + "/missing")
    t.run("dsreg_children", p)
    t.run("dsreg_children", p + "/o")
    listed, _ = t.run("dsreg_list", p, out=1)
    paths = [r[0] for r in listed]
    t.lines.append(("list in byte order", paths == sorted(paths, key=str.encode)))
    t.run("dsreg_lock_acquire", s1, k1, p + "/l", out=1)
    t.run("dsreg_lock_acquire", s2, k2, p + "/l", out=1)
    t.run("dsreg_lock_acquire", s1, k1, p + "/l", out=1)
    t.run("dsreg_watch", p, t.base_rev, 1000)
    t.run("dsreg_heartbeat", s1, "0" * 32, p + "/w", "v3")
    t.run("dsreg_heartbeat", s2, k2, p + "/w", "v3")
    t.run("dsreg_put", None, None, "no-slash", "v")
    t.run("dsreg_put", s2, None, p + "/q", "v")
    t.run("dsreg_session_keepalive", 0, k1)
    t.run("dsreg_delete", None, None, p + "/p")
    t.run("dsreg_delete", s2, k2, p + "/e")
    t.run("dsreg_lock_release", s1, k1, p + "/l")
    t.run("dsreg_lock_release", s1, k1, p + "/l")
    t.run("dsreg_lock_acquire", s1, k1, p + "/l", out=1)
    t.run("dsreg_session_close", s1, k1)
    t.run("dsreg_session_keepalive", s1, k1)
    t.run("dsreg_lock_acquire", s2, k2, p + "/l", out=1)
    _, (s3, k3) = t.run("dsreg_session_open", p + "/three", 60_000, out=2)
    t.run("dsreg_heartbeat", s3, k3, p + "/x", "x")
    expire(t.admin, s3)
    t.run("dsreg_reap", out=1)
    t.run("dsreg_compact", out=1)
    events, _ = t.run("dsreg_watch", p, t.base_rev, 1000)
    deletes = [e[2] for e in events if e[1] == "DELETE" and e[4] == s1]
    t.lines.append(("close's DELETE events in byte order", deletes == sorted(deletes, key=str.encode)))
    t.tables()
    t.run("dsreg_session_close", s2, k2)
    return t.lines


def run_scenario(
    server: ServerInfo, dbname: str, admin: pymysql.Connection, found_rows: bool, setup: list[str]
) -> list[tuple[Any, ...]]:
    prefix = f"/m{uuid.uuid4().hex[:8]}"
    with server.connect(dbname, found_rows=found_rows) as c:
        for statement in setup:
            query(c, statement)
        return scenario(Transcript(c, admin, prefix))


def has_variable(admin: pymysql.Connection, name: str) -> bool:
    return bool(query(admin, "SHOW SESSION VARIABLES LIKE %s", name))


@pytest.mark.parametrize("found_rows", [False, True], ids=["plain", "found-rows"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_same_answers_and_tables_as_a_plain_connection(
    server: ServerInfo, dbname: str, admin: pymysql.Connection, setting: str, found_rows: bool
) -> None:
    disable_reaper_event(admin)
    setup = SETTINGS[setting]
    if setting == "snapshot-isolation" and not has_variable(admin, "innodb_snapshot_isolation"):
        setup = []  # MySQL and MariaDB before 10.11.8: the mode does not exist, a plain run
    expected = run_scenario(server, dbname, admin, found_rows, [])
    # the baseline itself must be right, or equal transcripts prove nothing
    assert ("list in byte order", True) in expected and ("close's DELETE events in byte order", True) in expected
    assert all(line[1] for line in expected if line[0] == "lease within ttl")
    got = run_scenario(server, dbname, admin, found_rows, setup)
    for want, have in zip(expected, got, strict=True):
        assert have == want, f"under {setup}"
