"""Operator views: read the registry's tables for ``status``, ``metrics`` and ``doctor``.

Applications never read the tables (they get EXECUTE only); these helpers
are for an operator account with SELECT on the dsreg schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class SessionRow:
    id: int
    owner: str
    ttl_ms: int
    remaining_ms: float  # negative: lease over, not reaped yet


@dataclass(frozen=True)
class NodeRow:
    path: str
    value: str
    session_id: int | None
    version: int
    mod_rev: int


@dataclass(frozen=True)
class ReaperRow:
    seconds_since_run: float
    runs: int
    expired: int
    stalls: int
    last_stall_ms: int
    stall_after_ms: int


@dataclass(frozen=True)
class Status:
    sessions: list[SessionRow]
    nodes: list[NodeRow]
    reaper: ReaperRow
    revision: int
    compacted: int
    locks: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reaper(conn: Connection) -> ReaperRow:
    r = conn.execute(
        text(
            "SELECT TIMESTAMPDIFF(MICROSECOND, last_run_at, UTC_TIMESTAMP(6)), "
            "runs, expired, stalls, last_stall_ms, "
            "(SELECT value FROM dsreg_setting WHERE name = 'stall_after_ms') FROM dsreg_reaper WHERE id = 1"
        )
    ).one()
    return ReaperRow(float(r[0]) / 1e6, int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))


def status(engine: Engine) -> Status:
    with engine.connect() as conn:
        sessions = [
            SessionRow(int(r[0]), r[1], int(r[2]), float(r[3]) / 1000)
            for r in conn.execute(
                text(
                    "SELECT id, owner, ttl_ms, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) "
                    "FROM dsreg_session ORDER BY id"
                )
            )
        ]
        nodes = [
            NodeRow(r[0].decode(), r[1].decode("utf-8", "replace"), r[2], int(r[3]), int(r[4]))
            for r in conn.execute(
                text("SELECT path, value, session_id, version, mod_rev FROM dsreg_node ORDER BY path")
            )
        ]
        reaper = _reaper(conn)
        counters = {str(r[0]): int(r[1]) for r in conn.execute(text("SELECT name, value FROM dsreg_counter"))}
        (locks,) = conn.execute(text("SELECT COUNT(*) FROM dsreg_lock")).one()
    return Status(sessions, nodes, reaper, int(counters["revision"]), int(counters["compacted"]), int(locks))


@dataclass(frozen=True)
class Summary:
    """What ``dsreg metrics`` exposes: counts, never rows (a scrape stays cheap with 100k sessions)."""

    sessions: int
    sessions_overdue: int  # lease over, not reaped yet
    nodes_ephemeral: int
    nodes_persistent: int
    locks: int
    reaper: ReaperRow
    revision: int
    compacted: int


def summary(engine: Engine) -> Summary:
    """Aggregate queries only: COUNT over the indexes instead of reading every session and node."""
    with engine.connect() as conn:
        sessions, overdue = conn.execute(
            text(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM dsreg_session WHERE expires_at < UTC_TIMESTAMP(6)) "
                "FROM dsreg_session"
            )
        ).one()
        nodes, ephemeral = conn.execute(text("SELECT COUNT(*), COUNT(session_id) FROM dsreg_node")).one()
        (locks,) = conn.execute(text("SELECT COUNT(*) FROM dsreg_lock")).one()
        reaper = _reaper(conn)
        counters = {
            str(r[0]): int(r[1])
            for r in conn.execute(text("SELECT name, value FROM dsreg_counter WHERE name IN ('revision', 'compacted')"))
        }
    return Summary(
        int(sessions),
        int(overdue),
        int(ephemeral),
        int(nodes) - int(ephemeral),
        int(locks),
        reaper,
        counters["revision"],
        counters["compacted"],
    )


def server_variables(engine: Engine, names: list[str]) -> dict[str, str | None]:
    """Global variables by name; None for one this server does not have."""
    with engine.connect() as conn:
        found = {str(r[0]).lower(): str(r[1]) for r in conn.execute(text("SHOW GLOBAL VARIABLES"))}
    return {name: found.get(name.lower()) for name in names}
