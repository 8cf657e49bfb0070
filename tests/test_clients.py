"""Any language: the Java client (plain JDBC) and a shell client (mariadb CLI) against the test server."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from dsreg_db import Registry
from dsreg_db.sqlobjects import ROOT
from tests.conftest import ServerInfo

JAVA_SRC = ROOT / "clients" / "java" / "src"
JDBC_JARS = ["/usr/share/java/mariadb-java-client.jar", "/usr/share/java/mysql-connector-java.jar"]


def _jdbc_jar() -> str:
    jar = next((j for j in JDBC_JARS if os.path.exists(j)), None)
    assert jar, f"a JDBC driver is needed (Debian: apt-get install libmariadb-java); looked for {JDBC_JARS}"
    return jar


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    assert shutil.which("javac"), "javac is needed (Debian: apt-get install default-jdk-headless)"
    out = tmp_path_factory.mktemp("java")
    sources = [str(p) for p in (JAVA_SRC / "dsreg").glob("*.java")]
    subprocess.run(
        ["javac", "-Xlint:all", "-Werror", "-d", str(out), "-cp", _jdbc_jar(), *sources], check=True, timeout=180
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
