"""Real servers only. One server per test run, one fresh database per test.

Where the server comes from, first match wins:
1. ``DSREG_TEST_URL`` (an existing MySQL 8 / MariaDB 10.11+, root-like account);
2. testcontainers' MySQL 8 module, when a Docker engine answers;
3. a private mariadbd/mysqld from the local binaries (dsreg_db.testing.server).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.constants.CLIENT
import pytest
from sqlalchemy.engine import make_url

from dsreg_db.schema import migrate
from dsreg_db.testing.server import LocalServer
from tests.netproxy import Proxy

#: the revision fresh databases are migrated to: "head", or an older one to show that a test
#: fails there (e.g. DSREG_TEST_REVISION=0005 pytest tests/test_caller_proof.py)
REVISION = os.environ.get("DSREG_TEST_REVISION", "head")

#: the tests' private server trades durability against an OS crash (not a
#: mysqld crash: kill -9 keeps every commit) for speed
FAST: tuple[str, ...] = ("--innodb-flush-log-at-trx-commit=2",)


@dataclass(frozen=True)
class ServerInfo:
    host: str
    port: int
    user: str
    password: str
    local: LocalServer | None = None

    def url(self, database: str = "", *, port: int | None = None) -> str:
        """``port``: a relay on 127.0.0.1 in front of this server (tests/netproxy.py) instead."""
        auth = self.user + (f":{self.password}" if self.password else "")
        host = f"{self.host}:{self.port}" if port is None else f"127.0.0.1:{port}"
        return f"mysql+pymysql://{auth}@{host}/{database}"

    def connect(
        self, database: str | None = None, *, found_rows: bool = False, autocommit: bool = True, **kw: Any
    ) -> pymysql.Connection:
        flags = pymysql.constants.CLIENT.FOUND_ROWS if found_rows else 0
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=autocommit,
            client_flag=flags,
            **kw,
        )


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def server() -> Iterator[ServerInfo]:
    external = os.environ.get("DSREG_TEST_URL")
    if external:
        url = make_url(external)
        yield ServerInfo(url.host or "127.0.0.1", url.port or 3306, url.username or "root", url.password or "")
    elif _docker_engine():
        from testcontainers.mysql import MySqlContainer

        with MySqlContainer("mysql:8.0", username="root", password="dsreg").with_command(
            "--event-scheduler=ON"
        ) as container:
            yield ServerInfo(container.get_container_host_ip(), int(container.get_exposed_port(3306)), "root", "dsreg")
    else:
        with LocalServer(extra_args=FAST) as local:
            yield ServerInfo("127.0.0.1", local.port, "root", "", local)


@pytest.fixture
def make_db(server: ServerInfo) -> Iterator[Callable[..., str]]:
    """Factory of fresh databases, migrated to head unless ``migrated=False``; all dropped after the test."""
    made: list[str] = []

    def make(migrated: bool = True) -> str:
        name = f"dsreg_t_{uuid.uuid4().hex[:12]}"
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        made.append(name)
        if migrated:
            migrate.upgrade(server.url(name), REVISION)
        return name

    yield make
    with server.connect() as conn, conn.cursor() as cur:
        for name in made:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def dbname(make_db: Callable[[], str]) -> str:
    return make_db()


@pytest.fixture
def db_url(server: ServerInfo, dbname: str) -> str:
    return server.url(dbname)


@pytest.fixture
def proxy(server: ServerInfo) -> Iterator[Proxy]:
    """A TCP relay to the server that the test can pause (a partition) or make refuse (tests/netproxy.py)."""
    with Proxy(server.port, server.host) as relay:
        yield relay


@pytest.fixture
def conn(server: ServerInfo, dbname: str) -> Iterator[pymysql.Connection]:
    """A plain PyMySQL connection: autocommit, no CLIENT_FOUND_ROWS (like the mariadb CLI)."""
    with server.connect(dbname) as c:
        yield c


@pytest.fixture
def admin(server: ServerInfo, dbname: str) -> Iterator[pymysql.Connection]:
    """A second connection for inspecting and arranging state behind the API's back."""
    with server.connect(dbname) as c:
        yield c
