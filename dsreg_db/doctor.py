"""``dsreg doctor``: the server settings dsreg depends on, each with a verdict and a fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dsreg_db import admin, migrate


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok, info, warn, FAIL
    detail: str


def _version(raw: str) -> tuple[str, tuple[int, int]]:
    kind = "MariaDB" if "mariadb" in raw.lower() else "MySQL"
    m = re.match(r"(\d+)\.(\d+)", raw)
    return kind, (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def run(engine: Engine) -> list[Check]:
    checks: list[Check] = []
    v = admin.server_variables(
        engine,
        [
            "version",
            "event_scheduler",
            "time_zone",
            "system_time_zone",
            "log_bin",
            "binlog_format",
            "log_bin_trust_function_creators",
            "wsrep_on",
            "transaction_isolation",
            "tx_isolation",
        ],
    )
    raw = v["version"] or ""
    kind, version = _version(raw)
    minimum = (10, 11) if kind == "MariaDB" else (8, 0)
    checks.append(
        Check(
            "server version", "ok" if version >= minimum else "FAIL", f"{kind} {raw} (needs {minimum[0]}.{minimum[1]}+)"
        )
    )

    scheduler = (v["event_scheduler"] or "").upper()
    checks.append(
        Check(
            "event scheduler",
            "ok" if scheduler == "ON" else "FAIL",
            "ON: the reaper event runs every second"
            if scheduler == "ON"
            else f"{scheduler or 'unknown'}: sessions never expire unless clients call dsreg_reap; "
            "run SET GLOBAL event_scheduler = ON and put event_scheduler=ON in the server config",
        )
    )

    with engine.connect() as conn:
        offset = conn.execute(text("SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())")).scalar_one()
        grants = [str(r[0]) for r in conn.execute(text("SHOW GRANTS"))]
    checks.append(
        Check(
            "time zone",
            "ok",
            f"time_zone={v['time_zone']} system={v['system_time_zone']} (UTC{offset / 60:+.1f} h); "
            "leases use UTC_TIMESTAMP only, so any zone is fine",
        )
    )

    if (v["log_bin"] or "OFF").upper() == "ON":
        fmt = (v["binlog_format"] or "").upper()
        checks.append(
            Check(
                "binary log",
                "warn" if fmt == "STATEMENT" else "ok",
                f"log_bin=ON binlog_format={fmt}"
                + (
                    ": use ROW or MIXED (the procedures use RANDOM_BYTES and UTC_TIMESTAMP)"
                    if fmt == "STATEMENT"
                    else ""
                ),
            )
        )
        trust = (v["log_bin_trust_function_creators"] or "OFF").upper()
        checks.append(
            Check(
                "routine creation",
                "info",
                f"log_bin_trust_function_creators={trust}; dsreg creates procedures and events only, "
                "which need CREATE ROUTINE, ALTER ROUTINE and EVENT on the schema",
            )
        )
    else:
        checks.append(Check("binary log", "ok", "log_bin=OFF"))

    isolation = v["transaction_isolation"] or v["tx_isolation"]
    checks.append(
        Check(
            "isolation",
            "info",
            f"{isolation}; every procedure runs its own transactions in REPEATABLE READ "
            "and decides with locking reads, so any level works",
        )
    )
    if (v["wsrep_on"] or "OFF").upper() == "ON":
        checks.append(
            Check(
                "galera",
                "info",
                "wsrep_on=ON: certification conflicts surface as error 1213 and the Python client retries them",
            )
        )

    checks.append(Check("privileges", "info", " | ".join(grants)))

    current = migrate.current(engine.url)
    head = migrate.head()
    checks.append(
        Check(
            "schema",
            "ok" if current == head else "FAIL",
            f"revision {current or 'none'}, head {head}" + ("" if current == head else ": run dsreg upgrade"),
        )
    )
    if current is not None:
        r = admin.status(engine).reaper
        healthy = r.seconds_since_run * 1000 < r.stall_after_ms
        checks.append(
            Check(
                "reaper",
                "ok" if healthy else "warn",
                f"last run {r.seconds_since_run:.1f} s ago, {r.runs} runs, {r.expired} expired, {r.stalls} stalls",
            )
        )
    return checks
