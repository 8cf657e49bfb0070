"""A throwaway MariaDB/MySQL server from the local binaries.

Powers both ``dsreg demo`` and the test suite: a private datadir in a temp
directory, a free loopback port, ``--event-scheduler=ON``. Nothing is
installed; if no server binary exists the caller gets :class:`ServerNotFound`
with a one-line hint. The server can be stopped, killed with SIGKILL and
restarted on the same datadir and port, which is what the fault tests need.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pymysql

from dsreg_db.errors import ServerFailed, ServerNotFound

log = logging.getLogger(__name__)

_SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin")


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for folder in _SEARCH:
            candidate = Path(folder) / name
            if candidate.exists():
                return str(candidate)
    return None


_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range is 32768-60999


def free_port() -> int:
    """A loopback port nothing listens on, from *below* the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range it picks
    the local ports of outgoing connections from. A server killed and restarted on its port (the fault
    tests, a Galera node's gcomm port) then finds it taken by some client's or peer's connection
    (measured in CI: a restarted Galera node aborted with "bind: Address already in use"). Ports below
    the range are never picked for outgoing connections. Each port is handed out once per process."""
    low = _ephemeral_low()
    first = 10000 if low > 12000 else 1024
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(first, low) if low > first else rnd.randrange(1024, 65536)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise ServerFailed(f"no free loopback port found in {first}-{low - 1}")


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s; returns once the process has exited and been waited for."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LocalServer:
    """A private mysqld/mariadbd on 127.0.0.1 with its own datadir."""

    def __init__(
        self,
        basedir: Path | None = None,
        *,
        port: int | None = None,
        event_scheduler: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._own_basedir = basedir is None
        self.basedir = Path(tempfile.mkdtemp(prefix="dsreg-")) if basedir is None else basedir
        self.datadir = self.basedir / "data"
        self.socket = str(self.basedir / "mysqld.sock")
        self.port = port or free_port()
        self.event_scheduler = event_scheduler
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._daemon = _which("mariadbd", "mysqld")
        if self._daemon is None:
            raise ServerNotFound(
                "no mariadbd or mysqld binary found; install one "
                "(Debian/Ubuntu: apt-get install mariadb-server) or set DSREG_URL"
            )
        self._mariadb = (
            "mariadb"
            in subprocess.run([self._daemon, "--version"], capture_output=True, text=True, check=False).stdout.lower()
        )

    # -- lifecycle -----------------------------------------------------
    def initialize(self) -> None:
        self.datadir.mkdir(parents=True)
        assert self._daemon is not None
        if self._mariadb:
            installer = _which("mariadb-install-db", "mysql_install_db")
            if installer is None:
                raise ServerNotFound("mariadb-install-db not found next to mariadbd")
            cmd = [
                installer,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
        else:  # MySQL 8
            cmd = [self._daemon, "--no-defaults", "--initialize-insecure", f"--datadir={self.datadir}", "--user=root"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServerFailed(f"{' '.join(cmd)} failed: {result.stderr.strip()[-2000:]}")

    def start(self, timeout: float = 60.0) -> None:
        if not self.datadir.exists():
            self.initialize()
        assert self._daemon is not None
        args = [
            self._daemon,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={self.basedir / 'mysqld.pid'}",
            f"--log-error={self.basedir / 'error.log'}",
            f"--event-scheduler={'ON' if self.event_scheduler else 'OFF'}",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=1000",
            "--skip-name-resolve",
            *self.extra_args,
        ]
        if not self._mariadb:
            args.append("--mysqlx=OFF")
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise ServerFailed(f"server exited with {self._proc.returncode}: {self.error_log_tail()}")
            try:
                conn = pymysql.connect(unix_socket=self.socket, user="root", connect_timeout=2)
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise ServerFailed(f"server not ready after {timeout:.0f} s: {self.error_log_tail()}") from None
                time.sleep(0.05)
        with conn:
            while True:
                try:
                    with conn.cursor() as cur:
                        # root over TCP: skip-name-resolve means 127.0.0.1 is not 'localhost'
                        cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
                        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                    break
                except pymysql.err.OperationalError as exc:
                    # a Galera node that is still joining answers 1047 until it is synced
                    if exc.args[0] != 1047 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        log.info("local server up on 127.0.0.1:%d (datadir %s)", self.port, self.datadir)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM), waiting for the process to exit."""
        if self._proc is None:
            return
        terminate(self._proc, timeout)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server: a crash, as far as InnoDB can tell."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def error_log_tail(self, lines: int = 20) -> str:
        path = self.basedir / "error.log"
        if not path.exists():
            return "(no error log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- addressing ----------------------------------------------------
    def url(self, database: str = "") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with pymysql.connect(host="127.0.0.1", port=self.port, user="root") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        return self.url(name)

    def __enter__(self) -> LocalServer:
        try:
            self.start()
        except BaseException:  # __exit__ is not called when __enter__ raises: stop what did start
            self.cleanup()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
