"""Where one call's time goes, statement by statement, from performance_schema.

    python docs/probes/breakdown.py "SQL" [CALLS] ["SETUP SQL"]

Starts a private server with performance_schema on (dsreg_db.testing.server),
migrates it, opens one session with one node, runs the SQL CALLS times (2000 by
default) on one connection after a warm-up, and prints every statement the
server ran for it -- the nested ones inside procedures included -- with how
many times per call it ran and its mean wall time per call. A nested CALL's
time includes its children's, so a helper's own cost is its CALL minus the
statements inside it. performance_schema's timers add about 1-2 us to each
statement, so the figures are relative, not absolute (docs/probes/cpu.py gives
the absolute server CPU). In the SQL, {sid} {tok} {path} {n} are the session
id, its token, its node's path and the call number, e.g.

    python docs/probes/breakdown.py "CALL dsreg_heartbeat({sid}, '{tok}', '{path}', '{n}')"
"""

from __future__ import annotations

import sys

import pymysql

from dsreg_db.schema import migrate
from dsreg_db.testing.server import LocalServer
from dsreg_db.urls import pymysql_params

PS_ARGS = (
    "--performance-schema=ON",
    "--performance-schema-consumer-events-statements-history-long=ON",
    "--performance-schema-events-statements-history-long-size=1000000",
)

INSTRUMENTS = (
    "UPDATE performance_schema.setup_instruments SET ENABLED = 'YES', TIMED = 'YES' WHERE NAME LIKE 'statement/%'"
)
CONSUMERS = "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME LIKE 'events_statements%'"

BREAKDOWN = """
    SELECT COUNT(*) / %s, SUM(TIMER_WAIT) / 1e6 / %s, EVENT_NAME,
           IF(NESTING_EVENT_ID IS NULL, '(the whole call)',
              LEFT(REPLACE(COALESCE(SQL_TEXT, ''), '\\n', ' '), 100)) AS what
    FROM performance_schema.events_statements_history_long
    WHERE THREAD_ID = (SELECT THREAD_ID FROM performance_schema.threads WHERE PROCESSLIST_ID = CONNECTION_ID())
      AND EVENT_NAME <> 'statement/sql/truncate'
    GROUP BY EVENT_NAME, what ORDER BY 2 DESC LIMIT 40
"""


def main(sql: str, calls: int, setup: str | None) -> None:
    with LocalServer(extra_args=PS_ARGS) as server:
        url = server.create_database("probe")
        migrate.upgrade(url)
        conn = pymysql.connect(autocommit=True, **pymysql_params(url))
        cur = conn.cursor()
        cur.execute("CALL dsreg_session_open('probe', 60000, @s, @t)")
        cur.execute("SELECT @s, @t")
        sid, tok = cur.fetchone()  # type: ignore[misc]
        path = f"/probe/{sid}"
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, '0')", (sid, tok, path))
        if setup:
            cur.execute(setup)
        cur.execute(INSTRUMENTS)
        cur.execute(CONSUMERS)
        for n in range(300):
            cur.execute(sql.format(sid=sid, tok=tok, path=path, n=-n))
        cur.execute("TRUNCATE performance_schema.events_statements_history_long")
        for n in range(calls):
            cur.execute(sql.format(sid=sid, tok=tok, path=path, n=n))
        cur.execute(BREAKDOWN, (calls, calls))
        for per_call, us, event, text in cur.fetchall():
            sys.stdout.write(f"{per_call:5.2f}x {us:8.1f} us  {event:<28} {text}\n")
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000, sys.argv[3] if len(sys.argv) > 3 else None)
