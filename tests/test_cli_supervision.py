"""``dsreg lock`` and ``dsreg watch`` as real processes: signals, a lost session, an unreachable server."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from dsreg_db import Registry
from tests.conftest import ServerInfo
from tests.netproxy import Proxy

DSREG = [sys.executable, "-m", "dsreg_db.cli"]


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The stream's lines, read on a thread (so a test can wait for one with a timeout)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next(lines: queue.Queue[str], prefix: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if line.startswith(prefix):
            return line


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: its parent only has to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):  # gone before or while /proc was read
        return False
    return state != "Z"


_spawned: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Whatever a failing test left running (dsreg and its command share a process group) is killed."""
    yield
    while _spawned:
        proc = _spawned.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _spawn(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*DSREG, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    _spawned.append(proc)
    return proc


def _reap(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    proc.wait(timeout)
    assert proc.stderr is not None
    return proc.returncode, proc.stderr.read()


CHILD = 'trap "echo got-term; exit 7" TERM; echo ready $$; while :; do sleep 0.05; done'
STUBBORN = 'trap "echo ignoring-term" TERM; echo ready $$; while :; do sleep 0.05; done'


def test_cli_lock_passes_sigterm_to_its_command_and_releases(db_url: str) -> None:
    proc = _spawn("lock", "--url", db_url, "/locks/job", "--", "sh", "-c", CHILD)
    assert proc.stdout is not None
    out = _lines(proc.stdout)
    assert _next(out, "fence ")
    pid = int(_next(out, "ready ").split()[1])
    proc.send_signal(signal.SIGTERM)
    status, err = _reap(proc)
    assert _next(out, "got-term", 10) == "got-term"  # the command had the signal and ended itself
    assert status == 7, err
    assert not _alive(pid)
    with Registry(db_url) as registry, registry.session("after", ttl=5) as s:
        assert s.acquire_lock("/locks/job", timeout=0) is not None  # released


@pytest.mark.parametrize("child", ["obeys-sigterm", "ignores-sigterm"])
def test_cli_lock_stops_its_command_when_the_session_is_lost(
    server: ServerInfo, proxy: Proxy, dbname: str, db_url: str, child: str
) -> None:
    """Cut dsreg's traffic: its session's local deadline passes and the command gets SIGTERM before
    another client can take the lock (one that ignores it, SIGKILL after the grace); exit 75."""
    url = server.url(dbname, port=proxy.port)
    script = CHILD if child == "obeys-sigterm" else STUBBORN
    proc = _spawn("lock", "--url", url, "--ttl", "2", "--grace", "1", "/locks/job", "--", "sh", "-c", script)
    assert proc.stdout is not None
    out = _lines(proc.stdout)
    fence = int(_next(out, "fence ").split()[1])
    pid = int(_next(out, "ready ").split()[1])
    with Registry(db_url) as registry, registry.session("taker", ttl=5) as taker:
        got: dict[str, Any] = {}

        def take() -> None:
            got["fence"] = taker.acquire_lock("/locks/job", timeout=30)
            got["at"] = time.monotonic()
            got["alive"] = _alive(pid)

        thread = threading.Thread(target=take)
        thread.start()
        proxy.pause()
        cut = time.monotonic()
        told = _next(out, "got-term" if child == "obeys-sigterm" else "ignoring-term", 15)
        termed = time.monotonic() - cut
        while _alive(pid):
            assert time.monotonic() - cut < 15, "the command outlived its lock"
            time.sleep(0.02)
        stopped = time.monotonic() - cut
        thread.join(40)
        print(
            f"\nlost lock ({child}): SIGTERM seen {termed:.2f} s after the cut, command gone after {stopped:.2f} s,"
            f" the other client's acquire after {got['at'] - cut:.2f} s (ttl 2 s, grace 1 s)"
        )
        assert told and termed < got["at"] - cut  # told to stop before the lock could move
        assert got["fence"] is not None and got["fence"] > fence
        if child == "obeys-sigterm":
            assert got["alive"] is False  # gone before the other client had the lock
        proxy.resume()
        status, err = _reap(proc)
    assert status == 75, err
    assert "lost" in err


def test_cli_watch_resumes_across_an_outage_and_prints_where_to_resume(
    server: ServerInfo, proxy: Proxy, dbname: str, db_url: str
) -> None:
    with Registry(db_url) as registry:
        start, _ = registry.list_nodes("/jobs")  # --from: no race with the watcher's start-up (1 s under load)
        url = server.url(dbname, port=proxy.port)
        proc = _spawn("watch", "--url", url, "/jobs", "--interval", "0.05", "--from", str(start))
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        registry.put("/jobs/a", "1")
        first = _next(out, "")
        proxy.refuse()  # the server "gone" for 2 s: connections refused, the one in use reset
        registry.put("/jobs/b", "2")
        time.sleep(2.0)
        registry.put("/jobs/c", "3")
        proxy.resume()
        rest = [_next(out, ""), _next(out, "")]
    proc.send_signal(signal.SIGTERM)
    status, err = _reap(proc)
    events = [first, *rest]
    expected = [["ADD", "/jobs/a", "1"], ["ADD", "/jobs/b", "2"], ["ADD", "/jobs/c", "3"]]
    assert [e.split()[1:] for e in events] == expected
    revs = [int(e.split()[0]) for e in events]
    assert revs == sorted(revs)
    assert status == 0, err
    assert err.strip().splitlines()[-1] == f"dsreg watch: resume with --from {revs[-1]}", err
