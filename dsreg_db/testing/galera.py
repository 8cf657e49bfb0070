"""A throwaway 3-node MariaDB Galera cluster on loopback, for the cluster tests.

Each node is a :class:`~dsreg_db.testing.server.LocalServer` with wsrep on: gcomm,
IST and SST ports on 127.0.0.1, rsync SST. The first node bootstraps
(``--wsrep-new-cluster``), the others join and receive a snapshot. Needs
Debian's ``galera-4`` and ``rsync``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pymysql

from dsreg_db.errors import ServerNotFound
from dsreg_db.testing.server import LocalServer, free_port

PROVIDERS = (
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/galera-4/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
)


# Flow control that outlasts an applier's short lock waits. With Galera's default (gcs.fc_limit=16) the
# 30-client torture froze the whole cluster for ~50 s in 3 of 3 runs (10-46 beats in 20 s): an applier
# waited for a row lock held by a local transaction whose write set was still queued to be sent, the
# receive queue passed 16, flow control paused sending, and that write set never went out to fail
# certification and release the lock. With 256: 0 of 3 (585-607 beats, no progress gap over 0.5 s).
FLOW_CONTROL = "gcs.fc_limit=256"


def provider() -> str:
    found = next((p for p in PROVIDERS if os.path.exists(p)), None)
    if found is None:
        raise ServerNotFound("no Galera provider (Debian/Ubuntu: apt-get install galera-4 rsync)")
    return found


def _status(port: int, name: str) -> str | None:
    """A node's wsrep status variable, or None while it does not answer."""
    try:
        with pymysql.connect(host="127.0.0.1", port=port, user="root") as c, c.cursor() as cur:
            cur.execute("SHOW STATUS LIKE %s", (name,))
            row = cur.fetchone()
            return None if row is None else str(row[1])
    except pymysql.err.MySQLError:
        return None


def _wait(ready: Callable[[], bool], timeout: float, failure: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(failure())
        time.sleep(0.2)


class GaleraCluster:
    def __init__(self, nodes: int = 3, provider_options: str = FLOW_CONTROL) -> None:
        self.basedir = Path(tempfile.mkdtemp(prefix="dsreg-galera-"))
        os.chmod(self.basedir, 0o755)  # the rsync SST daemon reads the datadirs as nobody
        gports = [free_port() for _ in range(nodes)]
        address = "gcomm://" + ",".join(f"127.0.0.1:{p}" for p in gports)
        self.nodes: list[LocalServer] = []
        for i, gport in enumerate(gports):
            ist, sst = free_port(), free_port()
            args = (
                "--wsrep-on=ON",
                f"--wsrep-provider={provider()}",
                f"--wsrep-cluster-address={address}",
                "--wsrep-cluster-name=dsreg-test",
                f"--wsrep-node-name=node{i}",
                f"--wsrep-node-address=127.0.0.1:{gport}",
                f"--wsrep-sst-receive-address=127.0.0.1:{sst}",
                f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{gport};ist.recv_addr=127.0.0.1:{ist};"
                f"gcache.size=64M;{provider_options}",
                "--wsrep-sst-method=rsync",
                "--binlog-format=ROW",
                "--innodb-autoinc-lock-mode=2",
                "--default-storage-engine=InnoDB",
                "--innodb-flush-log-at-trx-commit=2",
            )
            node = LocalServer(self.basedir / f"node{i}", extra_args=args)
            self.nodes.append(node)

    def start(self, timeout: float = 120.0) -> None:
        for i, node in enumerate(self.nodes):
            node.basedir.mkdir(parents=True, exist_ok=True)
            if i > 0 and not node.datadir.exists():
                node.initialize()
                # the rsync SST daemon on a joiner runs as nobody: give it this throwaway datadir
                for path in [node.datadir, *node.datadir.rglob("*")]:
                    shutil.chown(path, "nobody")
            os.chmod(node.basedir, 0o777)
            if i == 0:
                node.extra_args = (*node.extra_args, "--wsrep-new-cluster")
            node.start(timeout)
            if i == 0:
                node.extra_args = tuple(a for a in node.extra_args if a != "--wsrep-new-cluster")
            self.wait_synced(node, timeout)
        self.wait_size(len(self.nodes), timeout)

    def restart(self, i: int, timeout: float = 240.0) -> None:
        """Start node ``i`` again after a kill, on its datadir. As ``galera_recovery`` does under systemd,
        first recover the last committed position from InnoDB (``--wsrep-recover``), so that the node
        rejoins by IST from a peer's gcache instead of asking for a full SST."""
        node = self.nodes[i]
        assert not node.running, f"node {i} is running"
        assert node._daemon is not None
        recover_log = node.basedir / "recover.log"
        recover_log.unlink(missing_ok=True)
        args = [a for a in node.extra_args if not a.startswith("--wsrep-start-position=")]
        subprocess.run(
            [
                node._daemon,
                "--no-defaults",
                f"--datadir={node.datadir}",
                "--user=root",
                f"--log-error={recover_log}",
                f"--socket={node.basedir / 'recover.sock'}",
                "--skip-networking",
                "--innodb-buffer-pool-size=256M",
                *args,
                "--wsrep-recover",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
        text = recover_log.read_text(errors="replace") if recover_log.exists() else ""
        found = re.findall(r"Recovered position: (\S+)", text)
        position = (f"--wsrep-start-position={found[-1]}",) if found else ()
        node.extra_args = (*args, *position)
        # even an IST sends a marker file with rsync, written as nobody: as for a first join (start)
        for path in [node.datadir, *node.datadir.rglob("*")]:
            shutil.chown(path, "nobody")
        try:
            node.start(timeout)
        finally:
            node.extra_args = tuple(args)
        self.wait_synced(node, timeout)
        self.wait_size(len(self.nodes), timeout)

    def wait_synced(self, node: LocalServer, timeout: float = 120.0) -> None:
        _wait(
            lambda: _status(node.port, "wsrep_local_state_comment") == "Synced",
            timeout,
            lambda: f"node on {node.port} not synced: {node.error_log_tail()}",
        )

    def wait_size(self, size: int, timeout: float = 60.0) -> None:
        _wait(
            lambda: any(n.running and _status(n.port, "wsrep_cluster_size") == str(size) for n in self.nodes),
            timeout,
            lambda: f"cluster size never reached {size}",
        )

    def url(self, database: str, nodes: list[int] | None = None) -> str:
        """One URL naming several nodes (host:port,host:port): the Python client fails over between them."""
        chosen = nodes if nodes is not None else list(range(len(self.nodes)))
        hosts = ",".join(f"127.0.0.1:{self.nodes[i].port}" for i in chosen)
        return f"mysql+pymysql://root@{hosts}/{database}"

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> GaleraCluster:
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


def enable_events_locally(host: str, port: int, user: str, password: str, database: str) -> None:
    """Galera creates replicated events as SLAVESIDE_DISABLED: only the node that ran the migration would
    reap. Enable them on one node without replicating the change (wsrep_on=OFF for this statement's session);
    run it on every node. Reapers on several nodes are safe: reaping is idempotent, and a run that loses a
    certification race is rolled back and repeated a second later."""
    with (
        pymysql.connect(host=host, port=port, user=user, password=password, database=database) as c,
        c.cursor() as cur,
    ):
        cur.execute("SET SESSION wsrep_on = OFF")
        cur.execute("ALTER EVENT dsreg_reaper ENABLE")
        cur.execute("ALTER EVENT dsreg_compactor ENABLE")
        cur.execute("SET SESSION wsrep_on = ON")
