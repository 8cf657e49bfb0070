"""Throwaway etcd and ZooKeeper servers from Debian's packages, for ``dsreg bench --peers``.

The systems DolphinScheduler's registry otherwise runs on, started privately so
that the bench can measure them on the same machine, in the same run, with the
same client processes as dsreg (dsreg_db.testing.peer_workloads). Like
dsreg_db.testing.server.LocalServer for MariaDB: a private data dir in a temp
directory, free loopback ports (127.0.0.1 only), :meth:`start` returns once
the server answers, :meth:`stop` is SIGTERM (then SIGKILL), :meth:`cleanup`
also removes the temp dir; used as a context manager, the server is gone again
however the block ends (an exception, KeyboardInterrupt, a failed start).
Nothing is installed: a missing binary is :class:`ServerNotFound` with the
apt package to install (``scripts/setup.sh --test`` installs both).

* :class:`EtcdServer` -- ``etcd`` (Debian ``etcd-server``, 3.4): one member,
  clients through its JSON gRPC gateway on ``http://127.0.0.1:port``;
* :class:`ZooKeeperServer` -- ``java`` with ``/usr/share/java/zookeeper.jar``
  (Debian ``zookeeper``, 3.8) standalone, admin server off.

Both keep their default durability (every write is fsynced before it is
acknowledged, as the bench's private MariaDB does).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from dsreg_db.errors import ServerFailed, ServerNotFound
from dsreg_db.testing.server import free_port, terminate

log = logging.getLogger(__name__)

#: ZooKeeper's jar (its manifest names the jars it needs) and a logger for its log file
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")


class _PeerServer:
    """One private server process: temp dir, log file, start/stop/cleanup, context manager."""

    #: what the messages call it, and the prefix of its temp dir
    name = "peer"

    def __init__(self) -> None:
        self.basedir = Path(tempfile.mkdtemp(prefix=f"dsreg-{self.name}-"))
        self.datadir = self.basedir / "data"
        self.log_path = self.basedir / "server.log"
        self.port = free_port()
        self.version = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- what a subclass defines --------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server serves requests (sets :attr:`version`); False: not yet."""
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        args = self._command()
        self._log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}  # etcd reads these as flags
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.basedir, env=env
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise ServerFailed(f"{self.name} exited with {code}: {self.log_tail()}")
            try:
                if self._ready():
                    break
            except (OSError, http.client.HTTPException, ValueError):
                pass  # not listening yet, or not answering yet
            if time.monotonic() > deadline:
                self.kill()
                raise ServerFailed(f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.05)
        log.info("%s %s up on 127.0.0.1:%d (data %s)", self.name, self.version, self.port, self.datadir)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM), waiting for the process to exit (SIGKILL after ``timeout``)."""
        if self._proc is not None:
            terminate(self._proc, timeout)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the server."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self.stop()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


class EtcdServer(_PeerServer):
    """A one-member etcd on 127.0.0.1: clients on :attr:`port` (gRPC and its JSON gateway), peers on another."""

    name = "etcd"

    def __init__(self) -> None:
        self._etcd = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
        if self._etcd is None:
            raise ServerNotFound("no etcd binary found; install one (Debian/Ubuntu: apt-get install etcd-server)")
        self.peer_port = free_port()
        super().__init__()

    def _command(self) -> list[str]:
        assert self._etcd is not None
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self._etcd,
            "--name=bench",
            f"--data-dir={self.datadir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=bench={peer}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-outputs=stderr",
        ]

    def _get(self, path: str) -> dict[str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            return {}
        data: dict[str, str] = json.loads(body)
        return data

    def _ready(self) -> bool:
        # /health answers true once the member is leader and serves requests
        if self._get("/health").get("health") != "true":
            return False
        self.version = self._get("/version").get("etcdserver", "")
        return True

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, port) of the JSON gRPC gateway (and gRPC)."""
        return "127.0.0.1", self.port


class ZooKeeperServer(_PeerServer):
    """A standalone ZooKeeper on 127.0.0.1:port: private zoo.cfg and dataDir, admin server off."""

    name = "zookeeper"

    def __init__(self) -> None:
        self._java = shutil.which("java")
        if self._java is None or not ZOOKEEPER_JAR.exists():
            raise ServerNotFound(
                f"no java or no {ZOOKEEPER_JAR} found; install them (Debian/Ubuntu: apt-get install zookeeper)"
            )
        super().__init__()
        self.config = self.basedir / "zoo.cfg"

    def _command(self) -> list[str]:
        assert self._java is not None
        self.config.write_text(
            "\n".join(
                (
                    "tickTime=2000",
                    f"dataDir={self.datadir}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "maxClientCnxns=0",
                    "maxSessionTimeout=60000",  # the bench's leases and sessions have 60 s
                    # the one four-letter word: start() asks 'srvr' whether it serves yet
                    "4lw.commands.whitelist=srvr",
                    "",
                )
            )
        )
        classpath = [str(ZOOKEEPER_JAR)]
        if SLF4J_SIMPLE_JAR.exists():  # its log lines go to the log file, not nowhere
            classpath.append(str(SLF4J_SIMPLE_JAR))
        return [
            self._java,
            "-Xmx512m",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            ":".join(classpath),
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(self.config),
        ]

    def _ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"srvr")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        answer = b"".join(chunks).decode(errors="replace")
        if "Mode:" not in answer:  # "This ZooKeeper instance is not currently serving requests"
            return False
        first = answer.splitlines()[0]  # Zookeeper version: 3.8.0-..., built on ...
        self.version = first.split(":", 1)[1].split("-", 1)[0].split(",", 1)[0].strip()
        return True

    @property
    def hosts(self) -> str:
        """The connection string for a ZooKeeper client."""
        return f"127.0.0.1:{self.port}"
