"""Server CPU per call, one connection, for the README's analysis of what a call costs.

    python docs/probes/cpu.py URL "SQL" ["SQL" ...]

Runs each statement 4000 times back to back (three rounds, the best kept) and
divides the server process's CPU time (utime + stime from /proc, so the server
must run on this machine) by the calls. The clock tick makes the resolution
about 2.5 us. In the SQL, {sid} {tok} {path} {n} {i} are a session id, its token,
a node path of that session and the call number, e.g.:

    python docs/probes/cpu.py URL "UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = 0" \\
        "CALL dsreg_heartbeat({sid}, '{tok}', '{path}', '{n}')" "CALL dsreg_heartbeat({sid}, '{tok}', '{path}', '0')"
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pymysql

from dsreg_db.urls import pymysql_params

CALLS = 4000


def server_cpu_seconds(pid: str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(url: str, statements: list[str]) -> None:
    params = pymysql_params(url)
    pid = subprocess.run(["pgrep", "-f", f"port={params['port']}"], capture_output=True, text=True).stdout.split()[0]
    with pymysql.connect(autocommit=True, **params) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS dsreg_bench_raw (id INT PRIMARY KEY, n BIGINT NOT NULL)")
        cur.execute("REPLACE INTO dsreg_bench_raw VALUES (0, 0)")
        cur.execute("CALL dsreg_session_open('cpu-probe', 600000, @s, @t)")
        cur.execute("SELECT @s, @t")
        sid, tok = cur.fetchone()  # type: ignore[misc]
        path = f"/probe/cpu-{sid}"
        cur.execute("CALL dsreg_heartbeat(%s, %s, %s, '0')", (sid, tok, path))
        for sql in statements:
            rounds = []
            for r in range(3):
                before = server_cpu_seconds(pid)
                for n in range(CALLS):
                    cur.execute(sql.format(sid=sid, tok=tok, path=path, n=n + r * CALLS, i=0))
                rounds.append((server_cpu_seconds(pid) - before) / CALLS * 1e6)
            print(f"{min(rounds):7.1f} us server CPU per call  {sql}")
        cur.execute("CALL dsreg_session_close(%s, %s)", (sid, tok))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
