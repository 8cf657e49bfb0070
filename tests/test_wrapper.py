"""The Python wrapper against a real server: sessions, states, re-registration, errors."""

from __future__ import annotations

import subprocess
import threading
import time

import pymysql
import pytest

from dsreg_db import (
    Conflict,
    InvalidArgument,
    NotOwner,
    Registry,
    SessionExpired,
    SessionState,
    Unavailable,
)
from dsreg_db.testing.server import LocalServer
from tests.conftest import ServerInfo
from tests.sqlcall import query
from tests.test_clients import Lines, java_classes  # noqa: F401 (java_classes: the fixture)


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_register_get_children_delete(db_url: str) -> None:
    with Registry(db_url) as registry:
        with registry.session("worker-1", ttl=3) as session:
            session.register("/nodes/worker/w1", '{"load": 1}')
            registry.put("/config/cluster", "prod")
            node = registry.get("/nodes/worker/w1")
            assert node is not None and node.ephemeral and node.session_id == session.id
            assert node.value == '{"load": 1}' and node.version == 1
            assert session.exists("/config/cluster") and not registry.exists("/nope")
            assert registry.children("/nodes/worker") == ["w1"]
            assert registry.children("/") == ["config", "nodes"]
            session.unregister("/nodes/worker/w1")
            assert registry.get("/nodes/worker/w1") is None
            registry.delete("/config/cluster")
            assert registry.get("/config/cluster") is None
            session.register("/nodes/worker/w1", "x")
        # closing the session removed its ephemeral node at once
        assert registry.get("/nodes/worker/w1") is None


def test_keepalive_thread_keeps_the_lease(db_url: str) -> None:
    with Registry(db_url) as registry, registry.session("w", ttl=1.0) as session:
        session.register("/nodes/w", "v")
        time.sleep(3.0)  # three ttls, with the reaper event running every second
        assert registry.get("/nodes/w") is not None
        assert session.state is SessionState.CONNECTED


def test_lost_then_reregistered_after_a_stall(db_url: str) -> None:
    """Stall the keepalive thread past the ttl (like a long GC pause): LOST, then a new session re-registers."""
    states: list[SessionState] = []
    with Registry(db_url) as registry:
        session = registry.session("stalled", ttl=1.0)
        session.add_listener(states.append)
        session.register("/nodes/worker/stalled", "v1")
        old_id = session.id
        with session._lock:  # the keepalive thread blocks here: no heartbeat goes out
            _wait_for(lambda: registry.get("/nodes/worker/stalled") is None, 10, "the reaper to drop the node")
        _wait_for(lambda: SessionState.RECONNECTED in states, 10, "re-registration")
        assert states == [SessionState.LOST, SessionState.RECONNECTED]
        node = registry.get("/nodes/worker/stalled")
        assert node is not None and node.session_id == session.id != old_id
        assert node.value == "v1"
        with pytest.raises(SessionExpired):
            registry.client.session_keepalive(old_id, "0" * 32)


def test_peer_delete_is_repaired_by_the_next_heartbeat(db_url: str, admin: object) -> None:
    with Registry(db_url) as registry, registry.session("w", ttl=1.5) as session:
        session.register("/nodes/master/m1", "v")
        query(admin, "DELETE FROM dsreg_node WHERE path = '/nodes/master/m1'")  # type: ignore[arg-type]
        _wait_for(lambda: registry.get("/nodes/master/m1") is not None, 3, "the heartbeat to re-create the node")


def test_errors_map_to_exception_classes(db_url: str) -> None:
    with Registry(db_url) as registry, registry.session("a", ttl=5) as a, registry.session("b", ttl=5) as b:
        a.register("/nodes/a", "mine")
        with pytest.raises(InvalidArgument) as bad:
            registry.get("no-slash")
        assert bad.value.argument == "p_path" and bad.value.sqlstate == "45002"
        with pytest.raises(InvalidArgument) as bad:
            registry.session("x", ttl=0.01)
        assert bad.value.argument == "p_ttl_ms"
        with pytest.raises(Conflict):
            b.register("/nodes/a", "stolen")
        with pytest.raises(NotOwner):
            b.delete("/nodes/a")
        with pytest.raises(InvalidArgument) as bad:
            registry.put("/big", "x" * 70000)
        assert bad.value.argument == "p_value"
        # a too-large new value for a node the session holds (the heartbeat's fast path): refused, kept
        with pytest.raises(InvalidArgument) as bad:
            a.register("/nodes/a", "x" * 70000)
        assert bad.value.argument == "p_value"
        assert registry.get("/nodes/a").value == "mine"  # type: ignore[union-attr]
        assert registry.get("/big") is None


def test_suspended_then_reconnected_across_a_server_restart() -> None:
    """Kill the server for longer than the ttl: SUSPENDED, LOST by the client's own deadline (it cannot know
    that the server stalled too), then RECONNECTED on the *same* session: the stall grace kept it."""
    from dsreg_db.schema import migrate

    with LocalServer() as server:
        url = server.create_database("restart")
        migrate.upgrade(url)
        states: list[SessionState] = []
        with Registry(url, retry_seconds=0.5) as registry:
            session = registry.session("survivor", ttl=2.0, interval=0.3)
            session.add_listener(states.append)
            session.register("/nodes/worker/survivor", "v")
            sid = session.id
            server.kill()
            _wait_for(lambda: SessionState.SUSPENDED in states, 10, "SUSPENDED")
            with pytest.raises(Unavailable):
                registry.get("/nodes/worker/survivor")
            time.sleep(3.0)  # down for longer than the ttl
            server.start()
            _wait_for(lambda: SessionState.RECONNECTED in states, 20, "RECONNECTED")
            assert states == [SessionState.SUSPENDED, SessionState.LOST, SessionState.RECONNECTED]
            assert session.id == sid  # the stall grace kept the session: nobody lost it
            node = registry.get("/nodes/worker/survivor")
            assert node is not None and node.session_id == sid


def test_concurrent_registers_from_threads(db_url: str) -> None:
    with Registry(db_url) as registry:
        sessions = [registry.session(f"w{i}", ttl=5) for i in range(8)]
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                for n in range(20):
                    sessions[i].register(f"/nodes/worker/w{i}", str(n))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert registry.children("/nodes/worker") == sorted(f"w{i}" for i in range(8))
        assert {registry.get(f"/nodes/worker/w{i}").value for i in range(8)} == {"19"}  # type: ignore[union-attr]


def test_a_routine_missing_for_a_moment_is_retried(db_url: str, admin: pymysql.Connection) -> None:
    """What an online upgrade looks like to a client: DROP PROCEDURE, then CREATE a moment later (error 1305)."""
    from dsreg_db.schema import sqlobjects

    get = next(o for o in sqlobjects.load(sqlobjects.SQL_DIR) if o.name == "dsreg_get")
    with Registry(db_url) as registry:
        registry.put("/x", "1")
        query(admin, "DROP PROCEDURE dsreg_get")
        timer = threading.Timer(0.5, lambda: query(admin, get.statements()[0]))
        timer.start()
        started = time.monotonic()
        node = registry.get("/x")
        timer.join()
        assert node is not None and node.value == "1"
        assert time.monotonic() - started >= 0.5
        assert registry.client.retries[1305] >= 1


def test_a_multi_host_url_fails_over_to_a_host_that_answers(server: ServerInfo, dbname: str) -> None:
    """`mysql://u@dead:port,live:port/db`: calls go to the host that answers, whichever comes first
    and wherever the random start is (tried: 8 clients, the dead port first and last)."""
    from dsreg_db.client import Client
    from dsreg_db.testing.server import free_port

    dead = free_port()
    auth = server.user + (f":{server.password}" if server.password else "")
    for order in ((dead, server.port), (server.port, dead)):
        hosts = ",".join(f"{server.host}:{port}" for port in order)
        for _ in range(4):
            client = Client(f"mysql+pymysql://{auth}@{hosts}/{dbname}", retry_seconds=5.0)
            try:
                sid, token = client.session_open("multi", 5000)
                client.session_keepalive(sid, token)
                client.session_close(sid, token)
                assert client.hosts[client._preferred] == (server.host, server.port)
            finally:
                client.dispose()


def test_java_worker_keeps_its_session_across_a_server_restart(java_classes: str) -> None:  # noqa: F811
    """(Here, not in test_clients.py: a server killed and restarted in this process before the Galera tests
    made test_galera_torture_with_a_node_killed hang, 3 of 3; why is not known yet.)
    The server killed for 3 s (longer than the ttl of 2 s, shorter than nothing: the stall grace covers
    it): the Java worker says SUSPENDED, DISCONNECTED by its own deadline (it cannot know the server
    stalled too), then RECONNECTED on the *same* session, its node and lock kept."""
    from dsreg_db.schema import migrate
    from dsreg_db.testing.server import LocalServer

    with LocalServer() as local:
        url = local.create_database("javarestart")
        migrate.upgrade(url)
        jdbc = f"jdbc:mariadb://127.0.0.1:{local.port}/javarestart"
        argv = ["java", "-cp", java_classes, "dsreg.Example", jdbc, "root", "", "/nodes/worker/survivor", "2000"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            lines = Lines(proc)
            session = lines.wait_for("READY").split()[2]
            lines.wait_for("LOCKED /locks/java")
            local.kill()
            states = [lines.wait_for("STATE SUSPENDED", timeout=10), lines.wait_for("STATE DISCONNECTED", timeout=10)]
            time.sleep(3.0)
            local.start()
            states.append(lines.wait_for("STATE RECONNECTED", timeout=20))
            with Registry(url) as registry:
                node = registry.get("/nodes/worker/survivor")
            with pymysql.connect(host="127.0.0.1", port=local.port, user="root", database="javarestart") as c:
                holders = query(c, "SELECT session_id FROM dsreg_lock WHERE name = '/locks/java'")
        finally:
            proc.kill()
            proc.wait()
    assert states == [f"STATE {s} session {session}" for s in ("SUSPENDED", "DISCONNECTED", "RECONNECTED")]
    assert [line for line in lines.seen if line.startswith("STATE")][-3:] == states  # nothing in between
    assert node is not None and str(node.session_id) == session
    assert holders == [(int(session),)]
