"""Probe procedures loaded next to the schema, so ``dsreg bench --peers --probes FILE`` measures them in the same run.

A probe is a variant of a hot call written to find out what bounds it (for example
docs/probes/revision_probes.sql: the value-changing heartbeat flattened, with and
without the revision counter row). Measured in the same run as dsreg's own calls,
etcd and ZooKeeper, a probe's ratio says what a design would reach before anyone
builds it, and a probe that keeps the contract's work yet stays below a target
is the proof that the target is out of reach for that design.

The file is a script for the ``mariadb`` client (``DELIMITER`` lines allowed), run
statement by statement in the bench's database after it is migrated; what it
creates (procedures, tables) is dropped again at the end of the run. Every
procedure it creates becomes a workload named after it, called by each client
with its own session: ``(session_id, token, path, value)`` like
``dsreg_heartbeat`` (a ~300-byte JSON value new every call), or
``(session_id, token)`` like ``dsreg_session_keepalive``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql

from dsreg_db import driver
from dsreg_db.urls import pymysql_params

_DELIMITER = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.IGNORECASE)
#: what a statement creates: dropped again after the run
_CREATED = re.compile(
    r"^\s*CREATE\s+(PROCEDURE|TABLE)\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.IGNORECASE | re.MULTILINE
)
#: the argument lists a probe may take, by count: what a client passes
SHAPES = {4: "heartbeat", 2: "keepalive"}


def statements(script: str) -> list[str]:
    """The statements of a ``mariadb`` client script, split at its current delimiter (``;`` until a
    ``DELIMITER`` line changes it); comments stay with the statement they precede."""
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
            if any(not part.strip().startswith("--") for part in text.splitlines() if part.strip()):
                out.append(text)
    return out


@contextmanager
def loaded(url: str, script: str) -> Iterator[dict[str, str]]:
    """Run ``script`` in ``url``'s database for the block: {each procedure it created: its shape
    (:data:`SHAPES`)}, in the script's order. The procedures and tables it created are dropped again
    afterwards, however the block ends. A procedure of another argument list is a ValueError (nothing
    could call it)."""
    created: dict[str, list[str]] = {"PROCEDURE": [], "TABLE": []}
    with driver.connect(autocommit=True, **pymysql_params(url)) as conn, conn.cursor() as cur:
        try:
            for sql in statements(script):
                cur.execute(sql)
                for kind, name in _CREATED.findall(sql):
                    created[kind.upper()].append(name)
            shapes = {name: SHAPES.get(_arguments(cur, name), "") for name in created["PROCEDURE"]}
            odd = [name for name, shape in shapes.items() if not shape]
            if odd:
                raise ValueError(
                    f"probe {odd[0]} takes neither (session_id, token, path, value) nor (session_id, token)"
                )
            yield shapes
        finally:
            for kind, names in created.items():
                for name in dict.fromkeys(names):
                    cur.execute(f"DROP {kind} IF EXISTS `{name}`")


def _arguments(cur: pymysql.cursors.Cursor, name: str) -> int:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.PARAMETERS"
        " WHERE SPECIFIC_SCHEMA = DATABASE() AND SPECIFIC_NAME = %s AND ORDINAL_POSITION > 0",
        (name,),
    )
    (count,) = cur.fetchone()  # type: ignore[misc]
    return int(count)
