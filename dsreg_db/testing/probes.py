"""Probe procedures loaded next to the schema, so ``dsreg bench --peers --probes FILE`` measures them in the same run.

A probe is a variant of a hot call written to find out what bounds it (for example
docs/probes/revision_probes.sql: the value-changing heartbeat flattened, with and
without the revision counter row). Measured in the same run as dsreg's own calls,
etcd and ZooKeeper, a probe's ratio says what a design would reach before anyone
builds it, and a probe that keeps the contract's work yet stays below a target
is the proof that the target is out of reach for that design.

The file is a script for the ``mariadb`` client (``DELIMITER`` lines allowed), run
statement by statement in the bench's database after it is migrated; what it
creates (procedures, tables, anything) is dropped again at the end of the run,
and a script that names an object the database already has is refused. Every
procedure it creates becomes a workload named after it, called by each client
with its own session: ``(session_id, token, path, value)`` like
``dsreg_heartbeat`` (a ~300-byte JSON value new every call), or
``(session_id, token)`` like ``dsreg_session_keepalive``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql

from dsreg_db import driver
from dsreg_db.urls import pymysql_params

_DELIMITER = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.IGNORECASE)
#: the names a script says it creates, in its order (the objects themselves are found in the schema)
_CREATED = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
    r"(?:PROCEDURE|FUNCTION|TABLE|EVENT)\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?",
    re.IGNORECASE | re.MULTILINE,
)
#: the argument lists a probe may take, by count: what a client passes
SHAPES = {4: "heartbeat", 2: "keepalive"}
#: every object of the database, by kind: what a script created is the difference, dropped afterwards
_OBJECTS = (
    "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"
    " UNION ALL SELECT 'TABLE', TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    " UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()"
)

log = logging.getLogger(__name__)


def statements(script: str) -> list[str]:
    """The statements of a ``mariadb`` client script, split at its current delimiter (``;`` until a
    ``DELIMITER`` line changes it) where it ends a line; comments stay with the statement they precede.
    Text after the last delimiter is a ValueError (the client would run it; a probe file should not
    depend on that)."""
    out: list[str] = []
    delimiter, current = ";", []
    for line in script.splitlines():
        switch = _DELIMITER.match(line)
        if switch:
            delimiter = switch.group(1)
            continue
        current.append(line)
        if not line.lstrip().startswith("--") and line.rstrip().endswith(delimiter):
            text = "\n".join(current).rstrip()[: -len(delimiter)].strip()
            current = []
            if _code(text):
                out.append(text)
    if _code("\n".join(current)):
        raise ValueError(f"the script ends without its delimiter {delimiter!r} after: {current[-1].strip()[:80]}")
    return out


def _code(text: str) -> bool:
    """True unless ``text`` is blank lines and ``--`` comments only."""
    return any(not line.strip().startswith("--") for line in text.splitlines() if line.strip())


@contextmanager
def loaded(url: str, script: str) -> Iterator[dict[str, str]]:
    """Run ``script`` in ``url``'s database for the block: {each procedure it created: its shape
    (:data:`SHAPES`)}, in the script's order. What it created (routines, tables, events: whatever
    the schema holds afterwards that it did not before) is dropped again however the block ends.
    ValueError, before anything runs, when the script names an object the database already has (it
    would replace or drop it); ValueError when a procedure has neither shape (nothing could call it)."""
    with driver.connect(autocommit=True, **pymysql_params(url)) as conn, conn.cursor() as cur:
        before = _objects(cur)
        named = list(dict.fromkeys(_CREATED.findall(script)))
        taken = sorted({name for name in named if name.lower() in {n.lower() for _, n in before}})
        if taken:
            raise ValueError(f"the probe script would replace what the database has: {', '.join(taken)}")
        try:
            for sql in statements(script):
                cur.execute(sql)
            created = [(kind, name) for kind, name in _objects(cur) if (kind, name) not in before]
            order = {name: i for i, name in enumerate(named)}
            procedures = sorted((n for k, n in created if k == "PROCEDURE"), key=lambda n: order.get(n, len(order)))
            shapes = {name: SHAPES.get(_arguments(cur, name), "") for name in procedures}
            odd = [name for name, shape in shapes.items() if not shape]
            if odd:
                raise ValueError(
                    f"probe {odd[0]} takes neither (session_id, token, path, value) nor (session_id, token)"
                )
            yield shapes
        finally:
            _drop(cur, [(kind, name) for kind, name in _objects(cur) if (kind, name) not in before])


def _objects(cur: pymysql.cursors.Cursor) -> list[tuple[str, str]]:
    cur.execute(_OBJECTS)
    return [(str(kind), str(name)) for kind, name in cur.fetchall()]


def _drop(cur: pymysql.cursors.Cursor, objects: list[tuple[str, str]]) -> None:
    """Drop each of ``objects``; one that cannot be dropped is logged and the others are still tried
    (an exception here would hide the one that ended the block)."""
    for kind, name in objects:
        try:
            cur.execute(f"DROP {kind} IF EXISTS `{name}`")
        except pymysql.MySQLError as exc:
            log.warning("probe %s %s not dropped: %s", kind.lower(), name, exc)


def _arguments(cur: pymysql.cursors.Cursor, name: str) -> int:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.PARAMETERS"
        " WHERE SPECIFIC_SCHEMA = DATABASE() AND SPECIFIC_NAME = %s AND ORDINAL_POSITION > 0",
        (name,),
    )
    (count,) = cur.fetchone()  # type: ignore[misc]
    return int(count)
