"""A/B of versions of one procedure on one throwaway server, rounds interleaved.

    python docs/probes/ab.py PROCEDURE ROUNDS SECONDS [--same] [--tick=MS] [--cpu] FILE [FILE ...]

Starts a private MariaDB (dsreg_db.testing.server.LocalServer), migrates it to
head, loads each FILE -- one ``CREATE PROCEDURE PROCEDURE`` definition, e.g. a
frozen copy from migrations/frozen/ or the working copy in sql/ -- renamed
``v1``, ``v2``, ... next to the schema's helpers, and runs probes/load.py over
the raw UPDATE and every version, ROUNDS times in turn (16 clients, SECONDS
each). A heartbeat-shaped procedure gets a ~300-byte value, new every call, or
the same every call with ``--same``; ``--tick=MS`` sets 'lease_tick_ms' (0: every
call writes the lease); ``--cpu`` measures the server CPU per call on one connection
(probes/cpu.py, ROUNDS and SECONDS unused) instead of throughput. Revision 0013's A/B in
docs/performance-notes.md:

    python docs/probes/ab.py dsreg_heartbeat 4 4 \\
        migrations/frozen/dsreg_0011/procedures/dsreg_heartbeat.sql sql/procedures/dsreg_heartbeat.sql
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from dsreg_db import driver
from dsreg_db.schema import migrate
from dsreg_db.testing import probes
from dsreg_db.testing.server import LocalServer
from dsreg_db.urls import pymysql_params

HERE = Path(__file__).resolve().parent


def main(procedure: str, rounds: int, seconds: str, same: bool, tick: int | None, cpu: bool, files: list[str]) -> None:
    names = [f"v{i}" for i in range(1, len(files) + 1)]
    script = "DELIMITER $$\n"
    for name, file in zip(names, files, strict=True):
        text = Path(file).read_text()
        renamed = re.sub(rf"^CREATE PROCEDURE {procedure}\b", f"CREATE PROCEDURE {name}", text, flags=re.M)
        if renamed == text:
            raise SystemExit(f"{file}: no CREATE PROCEDURE {procedure}")
        script += renamed + "\n$$\n"
        sys.stdout.write(f"{name} = {file}\n")
    value = "'0'" if same else "'{n}'"
    with LocalServer() as server:
        url = server.create_database("ab")
        migrate.upgrade(url)
        if tick is not None:
            with driver.connect(autocommit=True, **pymysql_params(url)) as conn, conn.cursor() as cur:
                cur.execute("UPDATE dsreg_setting SET value = %s WHERE name = 'lease_tick_ms'", (tick,))
        with probes.loaded(url, script) as shapes:
            statements = ["UPDATE dsreg_bench_raw SET n = n + 1 WHERE id = {i}"]
            for name in names:
                if shapes[name] == "heartbeat":
                    statements.append(f"CALL {name}({{sid}}, '{{tok}}', '{{path}}', CONCAT(REPEAT('x', 290), {value}))")
                else:
                    statements.append(f"CALL {name}({{sid}}, '{{tok}}')")
            if cpu:
                subprocess.run([sys.executable, str(HERE / "cpu.py"), url, *statements], check=True)
                return
            for _ in range(rounds):
                subprocess.run([sys.executable, str(HERE / "load.py"), url, "16", seconds, *statements], check=True)


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ticks = [int(f.split("=", 1)[1]) for f in flags if f.startswith("--tick=")]
    main(args[0], int(args[1]), args[2], "--same" in flags, ticks[-1] if ticks else None, "--cpu" in flags, args[3:])
