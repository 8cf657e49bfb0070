"""Throughput of arbitrary statements from N client processes, as ratios to the first one.

    python docs/probes/load.py URL CLIENTS SECONDS "SQL" ["SQL" ...]

Each process opens a session and heartbeats its node once; in the SQL,
{sid} {tok} {path} {i} {n} are its session id, token, node path, index and
call number. Used with revision_probes.sql for the README's analysis of the
value-changing heartbeat, e.g. (numbers in the README):

    python docs/probes/load.py URL 16 4 "UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = {i}" \\
        "CALL p_chg({sid}, '{tok}', '{path}', '{n}')" "CALL p_chg_noctr({sid}, '{tok}', '{path}', '{n}')" \\
        "CALL p_chg_ai({sid}, '{tok}', '{path}', '{n}')"
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from typing import Any

import pymysql

from dsreg_db.urls import pymysql_params


def worker(params: dict[str, Any], sql: str, i: int, seconds: float, start_at: float, out: Any) -> None:
    conn = pymysql.connect(autocommit=True, **params)
    cur = conn.cursor()
    cur.execute("CALL dsreg_session_open(%s, 60000, @s, @t)", (f"probe-{i}",))
    cur.execute("SELECT @s, @t")
    sid, tok = cur.fetchone()  # type: ignore[misc]
    path = f"/probe/{sid}"
    cur.execute("CALL dsreg_heartbeat(%s, %s, %s, '0')", (sid, tok, path))
    while time.time() < start_at:
        time.sleep(0.001)
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        cur.execute(sql.format(sid=sid, tok=tok, i=i, n=n, path=path))
        n += 1
    cur.execute("CALL dsreg_session_close(%s, %s)", (sid, tok))
    out.put(n)


def main(url: str, clients: int, seconds: float, statements: list[str]) -> None:
    params = pymysql_params(url)
    with pymysql.connect(autocommit=True, **params) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS dsreg_bench_raw (id INT PRIMARY KEY, n BIGINT NOT NULL)")
        cur.executemany("REPLACE INTO dsreg_bench_raw VALUES (%s, 0)", [(i,) for i in range(clients)])
    base = None
    for sql in statements:
        out = mp.Queue()
        start_at = time.time() + 1 + 0.05 * clients
        procs = [mp.Process(target=worker, args=(params, sql, i, seconds, start_at, out)) for i in range(clients)]
        for p in procs:
            p.start()
        total = sum(out.get() for _ in procs)
        for p in procs:
            p.join()
        rate = total / seconds
        base = base or rate
        sys.stdout.write(f"{rate:8.0f} calls/s  {rate / base:5.2f}  {sql}\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
