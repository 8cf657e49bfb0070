"""Any language: the Java client (plain JDBC) and a shell client (mariadb CLI) against the test server."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from dsreg_db import Registry
from tests.conftest import ServerInfo
from tests.netproxy import Proxy
from tests.sqlcall import query

#: the repository (the Java client and the shell example are not part of the Python package)
ROOT = Path(__file__).resolve().parent.parent
JAVA_SRC = ROOT / "clients" / "java" / "src"
JAVA_TEST = ROOT / "clients" / "java" / "test"
#: JUnit 5 with its console launcher, from Debian's junit5
JUNIT_JAR = "/usr/share/java/junit-platform-console-standalone.jar"
JDBC_JARS = ["/usr/share/java/mariadb-java-client.jar", "/usr/share/java/mysql-connector-java.jar"]


def _jdbc_jar() -> str:
    jar = next((j for j in JDBC_JARS if os.path.exists(j)), None)
    assert jar, f"a JDBC driver is needed (Debian: apt-get install libmariadb-java); looked for {JDBC_JARS}"
    return jar


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    assert shutil.which("javac"), "javac is needed (Debian: apt-get install default-jdk-headless)"
    assert os.path.exists(JUNIT_JAR), f"JUnit 5 is needed (Debian: apt-get install junit5); looked for {JUNIT_JAR}"
    out = tmp_path_factory.mktemp("java")
    sources = [str(p) for p in sorted((JAVA_SRC / "dsreg").glob("*.java")) + sorted(JAVA_TEST.rglob("*.java"))]
    subprocess.run(
        ["javac", "-Xlint:all", "-Werror", "-d", str(out), "-cp", f"{_jdbc_jar()}{os.pathsep}{JUNIT_JAR}", *sources],
        check=True,
        timeout=180,
    )
    return f"{out}{os.pathsep}{_jdbc_jar()}"


class Lines:
    """A child process's stdout, line by line, waitable."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line starting with {prefix!r}; saw {self.seen}"
            try:
                line = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line


@pytest.fixture
def java_worker(java_classes: str, server: ServerInfo, dbname: str) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    jdbc = f"jdbc:mariadb://{server.host}:{server.port}/{dbname}"
    proc = subprocess.Popen(
        [
            "java",
            "-cp",
            java_classes,
            "dsreg.Example",
            jdbc,
            server.user,
            server.password or "",
            "/nodes/worker/java-1",
            "3000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield proc, Lines(proc)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_java_client_registers_locks_subscribes_and_dies(
    java_worker: tuple[subprocess.Popen[str], Lines], db_url: str
) -> None:
    proc, lines = java_worker
    lines.wait_for("READY")
    lines.wait_for("LOCKED /locks/java")
    with Registry(db_url) as registry:
        node = registry.get("/nodes/worker/java-1")
        assert node is not None and node.ephemeral and node.value == '{"lang":"java"}'
        with registry.session("python", ttl=5) as session:
            # the lock held by Java blocks a Python acquirer
            assert session.acquire_lock("/locks/java", timeout=1.0) is None
            # a Python write reaches the Java subscriber
            registry.put("/config/greeting", "hello from python")
            assert lines.wait_for("EVENT ADD /config/greeting") == "EVENT ADD /config/greeting hello from python"
            registry.put("/config/greeting", "again")
            assert lines.wait_for("EVENT UPDATE") == "EVENT UPDATE /config/greeting again"
            # SIGKILL: the node goes within ttl + reaper interval, and the lock passes
            time.sleep(1.5)  # past one Java heartbeat after the writes
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            while registry.exists("/nodes/worker/java-1"):
                assert time.monotonic() - killed < 3.0 + 1.0 + 1.0, "the killed Java worker's node stayed"
                time.sleep(0.05)
            gone_after = time.monotonic() - killed
            assert session.acquire_lock("/locks/java", timeout=2.0) is not None
    print(f"java worker SIGKILLed: node removed after {gone_after:.2f} s (ttl 3 s, reaper 1 s)")


def test_shell_client(server: ServerInfo, dbname: str, db_url: str) -> None:
    script = ROOT / "examples" / "shell" / "worker.sh"
    env = {
        **os.environ,
        "DSREG_HOST": server.host,
        "DSREG_PORT": str(server.port),
        "DSREG_USER": server.user,
        "DSREG_PASSWORD": server.password,
        "DSREG_DB": dbname,
        "BEATS": "3",
    }
    proc = subprocess.run(
        ["bash", str(script), "/nodes/worker/shell-1", '{"lang":"sh"}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("session ") and "children: shell-1" in out
    assert out.count("heartbeat ok") == 3
    assert out[-1] == "closed"
    with Registry(db_url) as registry:
        assert not registry.exists("/nodes/worker/shell-1")  # closed: the ephemeral node went with it
        events = registry.watch("/nodes/worker/shell-1", 0)
        assert [e.kind for e in events] == ["ADD", "DELETE"]


def test_java_fenced_write(java_classes: str, server: ServerInfo, dbname: str, admin: pymysql.Connection) -> None:
    """FencedWrite (plain JDBC): the guard and the work are one transaction on the application's
    connection. A write commits while the lock is held with that fence (and a release waits for it);
    a write whose work fails is rolled back whole; after the lock was released behind the writer's
    back, with a stale fence, or after the session closed, the write fails with 45003 / 45001 and its
    row is absent. Autocommit is restored after every write."""
    jdbc = f"jdbc:mariadb://{server.host}:{server.port}/{dbname}"
    lock = "/locks/failover/master-3"
    proc = subprocess.run(
        ["java", "-cp", java_classes, "dsreg.FencedWrite", jdbc, server.user, server.password or "", lock],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("OPEN ") and out[1].startswith("LOCKED "), out
    sid, first = int(out[0].split()[1]), int(out[1].split()[1])
    assert out[2:] == [
        "HELD 1205",  # a release from another connection waited on the guarded transaction (1 s lock wait)
        "WROTE 1",
        "FAILED 2 23000",  # the work's own error: rolled back, its first insert too
        "RELEASED behind its back",
        "FAILED 3 45003",
        "LOCKED again, greater fence",
        "WROTE 4",
        "FAILED 5 45003",  # the old fence after the lock was re-issued
        "CLOSED",
        "FAILED 6 45001",
        "DONE",
    ], proc.stdout + proc.stderr
    rows = query(admin, "SELECT seq, fence FROM app_fenced ORDER BY seq")
    assert [seq for seq, _ in rows] == [1, 4], rows
    assert rows[0][1] == first and rows[1][1] > first
    assert query(admin, "SELECT COUNT(*) FROM dsreg_session WHERE id = %s", sid) == [(0,)]
    assert query(admin, "SELECT COUNT(*) FROM dsreg_lock WHERE name = %s", lock) == [(0,)]


@pytest.mark.timeout(600)
def test_java_registry_passes_its_junit_case(java_classes: str, server: ServerInfo, dbname: str) -> None:
    """clients/java/test: DolphinScheduler's registry test case and more (kill -9 of a worker JVM,
    restart on the same key, a listener blocking 2 x ttl), run by JUnit 5's console launcher."""
    env = {
        **os.environ,
        "DSREG_JDBC_URL": f"jdbc:mariadb://{server.host}:{server.port}/{dbname}",
        "DSREG_JDBC_USER": server.user,
        "DSREG_JDBC_PASSWORD": server.password or "",
        "DSREG_JAVA_CLASSPATH": java_classes,
    }
    proc = subprocess.run(
        [
            "java",
            "-jar",
            JUNIT_JAR,
            "--class-path",
            java_classes,
            "--select-package",
            "dsreg",
            "--disable-banner",
            "--details=tree",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    out = proc.stdout
    for line in out.splitlines():
        if "MEASURED" in line:
            print(line.strip())
    assert proc.returncode == 0, out + proc.stderr
    found = re.search(r"(\d+) tests found", out)
    succeeded = re.search(r"(\d+) tests successful", out)
    assert found and succeeded and int(found.group(1)) >= 10 and succeeded.group(1) == found.group(1), out


def test_java_worker_rides_out_a_network_cut_shorter_than_its_ttl(
    java_classes: str, server: ServerInfo, dbname: str, db_url: str, proxy: Proxy
) -> None:
    """The Java worker's connections cut and refused for 2.5 s (ttl 6 s, beats every 2 s) through a TCP
    relay: SUSPENDED at the first failed beat, then RECONNECTED on the same session; its node never
    left (no DELETE in the change log) and DISCONNECTED was never told."""
    jdbc = f"jdbc:mariadb://127.0.0.1:{proxy.port}/{dbname}"
    argv = ["java", "-cp", java_classes, "dsreg.Example", jdbc, server.user, server.password or "", "/nodes/worker/j"]
    proc = subprocess.Popen([*argv, "6000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = Lines(proc)
        session = lines.wait_for("READY").split()[2]
        with Registry(db_url) as registry:
            rev, _ = registry.list_nodes("/nodes/worker")
            proxy.refuse()
            cut = time.monotonic()
            suspended = lines.wait_for("STATE SUSPENDED", timeout=5)
            suspended_after = time.monotonic() - cut
            time.sleep(max(0.0, 2.5 - suspended_after))
            proxy.resume()
            resumed = time.monotonic()
            reconnected = lines.wait_for("STATE RECONNECTED", timeout=10)
            reconnected_after = time.monotonic() - resumed
            node = registry.get("/nodes/worker/j")
            events = [e.kind for e in registry.watch("/nodes/worker", rev)]
    finally:
        proc.kill()
        proc.wait()
    print(
        f"java network cut 2.5 s: SUSPENDED {suspended_after:.2f} s after the cut, "
        f"RECONNECTED {reconnected_after:.2f} s after it ended"
    )
    assert suspended == f"STATE SUSPENDED session {session}"
    assert reconnected == f"STATE RECONNECTED session {session}"
    assert node is not None and str(node.session_id) == session
    assert "DELETE" not in events
    assert not any(line.startswith("STATE DISCONNECTED") for line in lines.seen)


def test_the_dolphinscheduler_adapter_compiles_against_their_registry_api(java_classes: str, tmp_path: Path) -> None:
    """clients/java/dolphinscheduler: the plugin class a DolphinScheduler module needs, compiled with
    -Werror against the shape of their Registry API (every method implemented, types translated)."""
    sources = sorted(str(p) for p in (ROOT / "clients" / "java" / "dolphinscheduler").rglob("*.java"))
    subprocess.run(
        ["javac", "-Xlint:all", "-Werror", "-d", str(tmp_path), "-cp", java_classes, *sources], check=True, timeout=180
    )
    assert (tmp_path / "dsreg" / "dolphinscheduler" / "DsregDolphinSchedulerRegistry.class").exists()
