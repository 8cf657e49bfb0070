"""``dsreg demo``: a simulated DolphinScheduler cluster on a registry, one worker killed.

With no URL it runs on a throwaway local server (dsreg_db.testing.server) that it
starts, migrates and removes again. 2 masters and 4 workers run as separate
processes (dsreg_db.testing.demo_node); one worker is killed with SIGKILL, and the
demo measures how long the registry takes to drop it. With a URL it refuses a
database that is not disposable (dsreg_db.testing.target) and ends its nodes'
sessions afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dsreg_db.client import Client, Node
from dsreg_db.ops.tree import render
from dsreg_db.schema import migrate
from dsreg_db.testing.server import LocalServer
from dsreg_db.testing.target import Footprint, borrowed

MASTERS = ["10.0.0.1:5678", "10.0.0.2:5678"]
WORKERS = ["10.0.1.1:1234", "10.0.1.2:1234", "10.0.1.3:1234", "10.0.1.4:1234"]
#: what a run leaves in a user's database, removed again afterwards: the sessions of the node processes
FOOTPRINT = Footprint("demo", owners=tuple(f"master@{a}" for a in MASTERS) + tuple(f"worker@{a}" for a in WORKERS))


@dataclass(frozen=True)
class DemoResult:
    killed: str
    detection_seconds: float
    ttl_seconds: float


def _nodes(client: Client) -> dict[str, Node]:
    found = {}
    for role in ("master", "worker"):
        for name in client.children(f"/nodes/{role}"):
            node = client.get(f"/nodes/{role}/{name}")
            if node is not None:
                found[name] = node
    return found


def _show(nodes: dict[str, Node], out: Callable[[str], None]) -> None:
    for line in render((n.path, f"{n.value}  (session {n.session_id})") for n in nodes.values()):
        out("  " + line)


@contextmanager
def throwaway_server(out: Callable[[str], None]) -> Iterator[str]:
    server = LocalServer()
    out(f"starting a throwaway server in {server.basedir} ...")
    try:
        server.start()
        yield server.create_database("dsreg_demo")
    finally:
        server.cleanup()
        out("throwaway server stopped and removed")


def run(url: str | None, out: Callable[[str], None], ttl: float = 3.0, *, force: bool = False) -> DemoResult:
    """With ``url``: refused unless the database is disposable or ``force`` (dsreg_db.testing.target);
    the nodes' sessions are ended afterwards, also after an error."""
    with borrowed(url, FOOTPRINT, force=force) if url else throwaway_server(out) as target:
        assert target is not None
        migrate.upgrade(target)
        out(f"schema at revision {migrate.current(target)}")
        client = Client(target)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        # the node processes import dsreg_db from wherever this one did
        try:
            for role, addresses in (("master", MASTERS), ("worker", WORKERS)):
                for address in addresses:
                    procs[address] = subprocess.Popen(
                        [sys.executable, "-m", "dsreg_db.testing.demo_node", target, role, address, str(ttl)]
                    )
            deadline = time.monotonic() + 60
            while len(client.children("/nodes/master")) + len(client.children("/nodes/worker")) < len(procs):
                if time.monotonic() > deadline:
                    raise RuntimeError("demo nodes did not register within 60 s")
                time.sleep(0.1)
            time.sleep(1.5)  # let a round of load updates land
            out(f"registry with 2 masters and 4 workers heartbeating (ttl {ttl:.1f} s):")
            before = _nodes(client)
            _show(before, out)

            victim = WORKERS[2]
            procs[victim].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            procs[victim].wait()
            out(f"killed worker {victim} with SIGKILL (no goodbye, its session just stops beating)")
            while victim in client.children("/nodes/worker"):
                if time.monotonic() - killed_at > ttl + 30:
                    raise RuntimeError("the registry did not drop the killed worker")
                time.sleep(0.02)
            detected = time.monotonic() - killed_at
            after = _nodes(client)
            kept = sum(1 for name, node in after.items() if before[name].session_id == node.session_id)
            out(
                f"registry dropped {victim} after {detected:.2f} s (lease {ttl:.1f} s + reaper every 1 s); "
                f"{kept} of the other {len(before) - 1} nodes kept their sessions throughout"
            )
            _show(after, out)
            return DemoResult(victim, detected, ttl)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            client.dispose()
