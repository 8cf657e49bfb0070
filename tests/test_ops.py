"""Operations that report: upgrade progress, the migration lock's holder, metrics over HTTP."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import pymysql
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dsreg_db.cli import main
from dsreg_db.schema import migrate, migration_lock, sqlobjects
from dsreg_db.testing.server import LocalServer, free_port
from tests.conftest import ServerInfo

FAKE_OWNER = "otherhost:4242:deadbeef"
Lines = queue.Queue[tuple[float, str]]


def run(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout, result.stderr


def _pump(stream: IO[str], into: Lines) -> None:
    for line in stream:
        into.put((time.monotonic(), line.rstrip("\n")))


@contextmanager
def dsreg(*args: str) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    """``dsreg ARGS`` in a subprocess; its stdout and stderr lines, stamped on arrival; killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsreg_db.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out: Lines = queue.Queue()
    err: Lines = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    for stream, into in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=_pump, args=(stream, into), daemon=True).start()
    try:
        yield proc, out, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def wait_line(lines: Lines, pattern: str, timeout: float, seen: list[str]) -> str:
    """The first line matching ``pattern`` within ``timeout``; every line read goes to ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got {seen}") from None
        seen.append(line)
        if re.search(pattern, line):
            return line


def drain(lines: Lines) -> list[tuple[float, str]]:
    got = []
    while True:
        try:
            got.append(lines.get_nowait())
        except queue.Empty:
            return got


# -- upgrade -------------------------------------------------------------------------
def test_upgrade_prints_each_revision_as_it_is_applied(server: ServerInfo, make_db: Callable[..., str]) -> None:
    url = server.url(make_db(migrated=False))
    with dsreg("upgrade", "--url", url) as (proc, out, err):
        assert proc.wait(120) == 0, drain(err)
        lines = drain(out)
    revisions = sqlobjects.revisions()
    landed = [(t, line) for t, line in lines if line.startswith("upgraded to ")]
    # one line per revision, in order, then the summary
    assert [line.split()[2] for _, line in landed] == revisions, lines
    assert lines[-1][1] == f"applied {', '.join(revisions)}; at revision {migrate.head()}", lines
    elapsed = [float(re.findall(r"\(\+([\d.]+) s\)", line)[0]) for _, line in landed]
    assert elapsed == sorted(elapsed)
    # printed as each revision landed, not all at the end: the first line arrived while the later
    # revisions were still being applied (they replace dozens of procedures: 130+ ms measured;
    # lines printed together at the end arrive within microseconds of each other)
    assert landed[-1][0] - landed[0][0] > 0.02, lines
    # nothing to do: no revision line
    stdout, _ = run("upgrade", "--url", url)
    assert stdout == f"applied nothing; at revision {migrate.head()}\n"


def test_a_held_migration_lock_names_its_holder_until_released(server: ServerInfo, make_db: Callable[..., str]) -> None:
    name = make_db(migrated=False)
    url = server.url(name)
    assert run("release-migration-lock", "--url", url)[0] == "no migration lock held\n"  # not even the table yet
    with server.connect(name) as c, c.cursor() as cur:
        cur.execute(migration_lock.CREATE)
        cur.execute(
            "INSERT INTO dsreg_migration_lock VALUES (1, %s, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)", (FAKE_OWNER,)
        )
        cur.execute("SELECT expires_at FROM dsreg_migration_lock")
        (expires_at,) = cur.fetchone()  # type: ignore[misc]
    until = f"{expires_at:%Y-%m-%d %H:%M:%S}"
    seen: list[str] = []
    with dsreg("upgrade", "--url", url) as (proc, out, err):
        line = wait_line(err, "waiting for the migration lock", 30, seen)
        assert f"held by {FAKE_OWNER} until {until} UTC" in line, line
        assert re.search(r"\((3[56]\d\d|3600) s left\)", line), line
        time.sleep(4)  # several polls (at most 2 s apart): the holder did not change, no second line
        assert proc.poll() is None and drain(out) == []
        assert [x for _, x in drain(err) if "waiting" in x] == []
        assert migrate.current(url) is None

        stdout, stderr = run("release-migration-lock", "--url", url)
        assert stdout.startswith(f"released the migration lock of {FAKE_OWNER} (lease until {until} UTC, "), stdout
        assert "has lost its lock" in stderr

        assert proc.wait(120) == 0, drain(err)
        lines = [x for _, x in drain(out)]
    assert [x.split()[2] for x in lines if x.startswith("upgraded to ")] == sqlobjects.revisions(), lines
    assert lines[-1].endswith(f"at revision {migrate.head()}")
    assert migrate.current(url) == migrate.head()
    assert run("release-migration-lock", "--url", url)[0] == "no migration lock held\n"  # the upgrade's own row went


# -- metrics -------------------------------------------------------------------------
def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(port: int, timeout: float = 15.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        return str(response.read().decode())


def wait_serving(port: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "dsreg metrics --listen exited"
        try:
            return scrape(port)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


AGE = ("dsreg_reaper_last_run_age_seconds", ())


def test_metrics_listen_serves_the_same_values_from_aggregates(
    server: ServerInfo, dbname: str, conn: pymysql.Connection
) -> None:
    url = server.url(dbname)
    with conn.cursor() as cur:
        for i, owner in enumerate(("a", "b")):
            cur.execute(f"CALL dsreg_session_open(%s, 60000, @s{i}, @t{i})", (owner,))
            cur.execute(f"CALL dsreg_heartbeat(@s{i}, @t{i}, %s, 'x')", (f"/nodes/{owner}",))
        for path in ("/cfg/1", "/cfg/2", "/cfg/3"):
            cur.execute("CALL dsreg_put(NULL, NULL, %s, 'v')", (path,))
        cur.execute("CALL dsreg_lock_acquire(@s0, @t0, '/locks/x', @f)")
        # one session overdue: its lease is over and nobody reaps it
        cur.execute("ALTER EVENT dsreg_reaper DISABLE")
        time.sleep(0.3)  # a reaper run already under way ends
        cur.execute("UPDATE dsreg_session SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE owner = 'b'")
    expected = {
        ("dsreg_up", ()): 1.0,
        ("dsreg_sessions_live", ()): 2.0,
        ("dsreg_sessions_overdue", ()): 1.0,
        ("dsreg_nodes", (("kind", "ephemeral"),)): 2.0,
        ("dsreg_nodes", (("kind", "persistent"),)): 3.0,
        ("dsreg_locks_held", ()): 1.0,
        ("dsreg_revision", ()): 5.0,
        ("dsreg_compacted_revision", ()): 0.0,
    }
    port = free_port()
    with dsreg("metrics", "--url", url, "--listen", f"127.0.0.1:{port}") as (proc, _, _):
        served = parse(wait_serving(port, proc))
        again = parse(scrape(port))
        assert proc.poll() is None
    printed = parse(run("metrics", "--url", url)[0])
    assert {k: served[k] for k in expected} == expected, served
    for metrics in (served, again, printed):
        assert metrics[AGE] >= 0
        del metrics[AGE]
    assert served == printed == again  # same names, same values, listening or not


def test_metrics_listen_survives_the_database_going_away() -> None:
    with LocalServer() as db_server:
        url = db_server.create_database("ops")
        migrate.upgrade(url)
        run("put", "--url", url, "/cfg/a", "1")
        port = free_port()
        with dsreg("metrics", "--url", url, "--listen", f"127.0.0.1:{port}") as (proc, _, err):
            before = parse(wait_serving(port, proc))
            assert before[("dsreg_up", ())] == 1.0 and before[("dsreg_nodes", (("kind", "persistent"),))] == 1.0

            db_server.kill()
            for _ in range(3):
                started = time.monotonic()
                down = parse(scrape(port))
                assert time.monotonic() - started < 5.0
                assert down == {("dsreg_up", ()): 0.0}, down
            assert proc.poll() is None
            warned = [x for _, x in drain(err) if "scrape failed" in x]
            assert len(warned) == 1, warned  # once per change, not once per scrape

            db_server.start()
            deadline = time.monotonic() + 30
            while (after := parse(scrape(port)))[("dsreg_up", ())] != 1.0:
                assert time.monotonic() < deadline, after
                time.sleep(0.2)
            assert after[("dsreg_nodes", (("kind", "persistent"),))] == 1.0
            assert proc.poll() is None
