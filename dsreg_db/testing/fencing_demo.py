"""``dsreg demo-fencing``: two masters fail over the same dead master; the first pauses past its lease.

DolphinScheduler #16825: two masters both failed over one dead master. Here master-1
takes the failover lock and writes failover rows with the lock's fence
(dsreg_db.testing.fencing_master, one process per master); it is paused with SIGSTOP
past its ttl (a GC pause, a frozen VM), is reaped, and master-2 takes the lock over
and writes; then master-1 resumes and writes as if it still held the lock. Run once
with the guard (``session.fenced``: dsreg_fence_check inside the write's transaction)
and once without (the control): the guarded write is refused and rolled back, the
unguarded one lands after master-2's rows -- a stale write.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pymysql

from dsreg_db.schema import migrate
from dsreg_db.testing.demo import throwaway_server
from dsreg_db.testing.fencing_master import TABLE
from dsreg_db.testing.target import Footprint, borrowed
from dsreg_db.urls import pymysql_params

FOOTPRINT = Footprint("demo-fencing", owners=("failover-master-%",), tables=(TABLE,))
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "writer VARCHAR(32) NOT NULL, fence BIGINT NOT NULL, guarded BOOLEAN NOT NULL) ENGINE = InnoDB"
)


@dataclass(frozen=True)
class Round:
    guarded: bool
    rows: list[tuple[int, str, int]]  # (seq, writer, fence) in commit order
    stale: int  # rows committed after a row with a greater fence
    woken_output: str  # what master-1 printed after it resumed


def _rows(url: str, guarded: bool) -> list[tuple[int, str, int]]:
    with pymysql.connect(autocommit=True, **pymysql_params(url)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT seq, writer, fence FROM {TABLE} WHERE guarded = %s ORDER BY seq", (guarded,))
        return [(int(s), str(w), int(f)) for s, w, f in cur.fetchall()]


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo-fencing: {what} did not happen within {seconds:.0f} s")
        time.sleep(0.05)


def stale_rows(fences: Iterable[int]) -> int:
    """Rows (fences in commit order) committed after a row with a greater fence: writes of a deposed holder."""
    stale, highest = 0, 0
    for fence in fences:
        stale += fence < highest
        highest = max(highest, fence)
    return stale


def _round(url: str, out: Callable[[str], None], ttl: float, guarded: bool) -> Round:
    label = "with the guard" if guarded else "without the guard (the control)"
    out(f"-- {label}")
    owner = "failover-master-1" if guarded else "failover-master-1b"
    rival = "failover-master-2" if guarded else "failover-master-2b"
    flag = "1" if guarded else "0"
    procs: list[subprocess.Popen[str]] = []

    def start(name: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dsreg_db.testing.fencing_master", url, name, str(ttl), flag],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    try:
        first = start(owner)
        _wait_for(lambda: sum(w == owner for _, w, _ in _rows(url, guarded)) >= 2, 60, f"{owner}'s first writes")
        first.send_signal(signal.SIGSTOP)  # between two writes: it sleeps 0.4 s after each
        paused_at = time.monotonic()
        out(f"{owner} holds the lock and wrote; paused with SIGSTOP (its session stops beating, ttl {ttl:.0f} s)")
        second = start(rival)
        _wait_for(lambda: any(w == rival for _, w, _ in _rows(url, guarded)), ttl + 30, f"{rival}'s takeover")
        out(f"{rival} took the lock over after {time.monotonic() - paused_at:.1f} s and wrote")
        first.send_signal(signal.SIGCONT)
        out(f"{owner} resumed with SIGCONT and writes as if it still held the lock")
        if guarded:
            first.wait(30)
        else:
            _wait_for(lambda: _rows(url, guarded)[-1][1] == owner, 30, f"{owner}'s stale write")
            first.terminate()
            first.wait(30)
        second.terminate()
        second.wait(30)
        woken = (first.stdout.read() if first.stdout else "").strip().splitlines()
        rows = _rows(url, guarded)
        for line in woken[1:]:
            out(f"  {line}")
        runs: list[list[object]] = []  # consecutive rows of one writer and fence
        for _, writer, fence in rows:
            if runs and runs[-1][:2] == [writer, fence]:
                runs[-1][2] = int(str(runs[-1][2])) + 1
            else:
                runs.append([writer, fence, 1])
        out("  rows in commit order: " + " -> ".join(f"{w} fence {f} x{n}" for w, f, n in runs))
        stale = stale_rows(fence for _, _, fence in rows)
        out(f"  stale rows (committed after a row with a greater fence): {stale}")
        return Round(guarded, rows, stale, "\n".join(woken[1:]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(url: str | None, out: Callable[[str], None], ttl: float = 2.0, *, force: bool = False) -> list[Round]:
    with borrowed(url, FOOTPRINT, force=force) if url else throwaway_server(out) as target:
        assert target is not None
        migrate.upgrade(target)
        with pymysql.connect(autocommit=True, **pymysql_params(target)) as conn, conn.cursor() as cur:
            cur.execute(CREATE)
        return [_round(target, out, ttl, guarded) for guarded in (True, False)]
