"""The Python client keeps the server's guarantees (kazoo/Curator habits): threads sharing one session,
re-entrant locks, local lease deadlines, listeners off the keepalive thread, watch handles.

Partitions are made with a TCP relay between the client and the server (tests/netproxy.py): the
server and its reaper go on, only this client's traffic stops.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import pytest

from dsreg_db import Conflict, EventType, NotOwner, Registry, SessionState, WatchEvent
from tests.conftest import ServerInfo
from tests.netproxy import Proxy
from tests.sqlcall import query


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class _States:
    """A session listener that records (state, monotonic time)."""

    def __init__(self) -> None:
        self.seen: list[tuple[SessionState, float]] = []

    def __call__(self, state: SessionState) -> None:
        self.seen.append((state, time.monotonic()))

    @property
    def states(self) -> list[SessionState]:
        return [s for s, _ in self.seen]

    def at(self, state: SessionState) -> float:
        return next(t for s, t in self.seen if s is state)


# -- locks: exclusive per thread on one session, re-entrant -------------------------------


@pytest.mark.parametrize("threads_n", [3, 8])
def test_threads_sharing_one_session_never_hold_the_lock_together(db_url: str, threads_n: int) -> None:
    """kazoo habit: one client, one Lock per thread. Tried: 3 and 8 threads x 40 cycles on one session."""
    inside = 0
    guard = threading.Lock()
    order: list[int] = []
    violations: list[str] = []
    errors: list[BaseException] = []
    with Registry(db_url) as registry, registry.session("shared", ttl=30) as session:

        def worker() -> None:
            nonlocal inside
            try:
                for _ in range(40):
                    with session.lock("/locks/shared") as fence:
                        with guard:
                            inside += 1
                            if inside != 1:
                                violations.append(f"{inside} threads inside at fence {fence}")
                            order.append(fence)
                        time.sleep(0.001)
                        with guard:
                            inside -= 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors, errors
    assert not violations, violations[:5]
    assert len(order) == threads_n * 40
    # every holder took the server lock anew: fences strictly increase from one holder to the next
    assert all(a < b for a, b in itertools.pairwise(order)), order[:20]


def test_the_lock_is_reentrant_and_only_the_outer_release_frees_it(db_url: str, admin: Any) -> None:
    with Registry(db_url) as registry, registry.session("re", ttl=30) as session:
        lock = session.lock("/locks/re")
        with lock as outer:
            with session.lock("/locks/re") as inner:  # another handle, same thread: re-entered
                assert inner == outer
            # the inner release left the server lock in place
            assert query(admin, "SELECT session_id, fence FROM dsreg_lock") == [(session.id, outer)]
            assert lock.fence == outer and lock.valid()
        assert query(admin, "SELECT COUNT(*) FROM dsreg_lock") == [(0,)]
        assert lock.fence is None and not lock.is_acquired


def test_release_by_a_thread_that_does_not_hold_the_lock_raises_not_owner(db_url: str, admin: Any) -> None:
    """Tried: release by another thread of the same session, and release of a lock never taken."""
    with Registry(db_url) as registry, registry.session("o", ttl=30) as session:
        lock = session.lock("/locks/o")
        with pytest.raises(NotOwner):
            lock.release()  # never taken
        fence = lock.acquire()
        got: list[BaseException] = []

        def other() -> None:
            try:
                session.lock("/locks/o").release()
            except BaseException as exc:
                got.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join(30)
        assert len(got) == 1 and isinstance(got[0], NotOwner)
        # nothing changed: still held by this thread with its fence
        assert query(admin, "SELECT fence FROM dsreg_lock") == [(fence,)] and lock.fence == fence
        # and a second thread waits instead of entering
        entered = threading.Event()

        def waiter() -> None:
            with session.lock("/locks/o"):
                entered.set()

        w = threading.Thread(target=waiter)
        w.start()
        assert not entered.wait(0.5)
        lock.release()
        assert entered.wait(10)
        w.join(10)


# -- states: SUSPENDED at the first failure, LOST by the local deadline -------------------


def test_a_partitioned_holder_is_told_lost_before_another_client_gets_its_lock(
    server: ServerInfo, proxy: Proxy, dbname: str, db_url: str
) -> None:
    """Cut one client's traffic while it holds a lock; another client waits for it directly."""
    ttl = 2.0
    with Registry(server.url(dbname, port=proxy.port)) as cut, Registry(db_url) as other:
        a = cut.session("holder", ttl=ttl)
        seen = _States()
        a.add_listener(seen)
        lock = a.lock("/locks/failover")
        lost_told: list[float] = []
        lock.on_lost(lambda _lock: lost_told.append(time.monotonic()))
        fence_a = lock.acquire()
        assert fence_a is not None
        b = other.session("taker", ttl=ttl)
        got: dict[str, Any] = {}

        def take() -> None:
            got["fence"] = b.acquire_lock("/locks/failover", timeout=30)
            got["at"] = time.monotonic()

        taker = threading.Thread(target=take)
        taker.start()
        proxy.pause()
        cut_at = time.monotonic()
        taker.join(40)
        assert got["fence"] is not None and got["fence"] > fence_a
        lost_at = seen.at(SessionState.LOST)
        print(
            f"\npartition: SUSPENDED after {seen.at(SessionState.SUSPENDED) - cut_at:.2f} s, LOST after "
            f"{lost_at - cut_at:.2f} s, the other client's acquire after {got['at'] - cut_at:.2f} s: "
            f"told lost {got['at'] - lost_at:.2f} s before the lock moved"
        )
        assert lost_at < got["at"]
        assert lost_told and lost_told[0] < got["at"]  # the lock's own callback, before the takeover
        assert not lock.valid()
        proxy.resume()
        _wait_for(lambda: SessionState.RECONNECTED in seen.states, 20, "RECONNECTED on a new session")
        assert seen.states == [SessionState.SUSPENDED, SessionState.LOST, SessionState.RECONNECTED]
        assert not lock.valid()  # a new session: the old fence stays stale
        lock.release()  # lost with its session: returns quietly, nothing to free
        assert not lock.is_acquired


def test_suspended_within_interval_plus_1_s_then_reconnected_on_the_same_session(
    server: ServerInfo, proxy: Proxy, dbname: str
) -> None:
    """A partition shorter than the lease (calls hang, nothing fails): SUSPENDED, then RECONNECTED with
    the same session, the lock still held with the same fence."""
    ttl, interval, outage = 6.0, 1.0, 3.0
    with Registry(server.url(dbname, port=proxy.port)) as cut:
        session = cut.session("survivor", ttl=ttl, interval=interval)
        seen = _States()
        session.add_listener(seen)
        lock = session.lock("/locks/survivor")
        fence = lock.acquire()
        sid = session.id
        time.sleep(interval * 1.5)
        proxy.pause()
        cut_at = time.monotonic()
        time.sleep(outage)
        started = time.monotonic()
        session.lock("/locks/other")  # the recipe object only: must not wait for the hung keepalive tick
        made_in = time.monotonic() - started
        proxy.resume()
        _wait_for(lambda: SessionState.RECONNECTED in seen.states, 20, "RECONNECTED")
        assert made_in < 0.5, f"session.lock() waited {made_in:.2f} s for the keepalive"
        suspended = seen.at(SessionState.SUSPENDED) - cut_at
        print(f"\nSUSPENDED {suspended:.2f} s after the cut (bound: interval + 1 s = {interval + 1:.1f} s)")
        assert suspended <= interval + 1.0 + 0.3  # the deadline check's period and scheduling
        assert seen.states == [SessionState.SUSPENDED, SessionState.RECONNECTED]
        assert session.id == sid and lock.valid() and lock.fence == fence
        lock.release()


def test_a_blocking_listener_does_not_stop_the_heartbeats(
    server: ServerInfo, proxy: Proxy, dbname: str, db_url: str
) -> None:
    """DolphinScheduler's master blocks inside its connection-state callback. The keepalive itself sees
    the failure here (the relay refuses), then beats on while that listener is still blocked."""
    ttl = 2.0
    with Registry(server.url(dbname, port=proxy.port)) as cut, Registry(db_url) as observer:
        session = cut.session("blocked", ttl=ttl, interval=0.3)
        seen = _States()
        released = threading.Event()

        def blocking(state: SessionState) -> None:
            seen(state)
            if state is SessionState.SUSPENDED:
                released.wait(30)

        session.add_listener(blocking)
        session.register("/nodes/worker/blocked", "v")
        sid = session.id
        proxy.refuse()
        _wait_for(lambda: SessionState.SUSPENDED in seen.states, 10, "SUSPENDED")
        proxy.resume()
        time.sleep(ttl * 2)  # the listener still blocks; two ttls without a beat would have reaped the node
        node = observer.get("/nodes/worker/blocked")
        assert node is not None and node.session_id == sid and session.id == sid
        assert seen.states == [SessionState.SUSPENDED]  # the rest waits for that listener, in order
        released.set()
        _wait_for(lambda: SessionState.RECONNECTED in seen.states, 10, "RECONNECTED after the listener returned")
        assert seen.states == [SessionState.SUSPENDED, SessionState.RECONNECTED]


def test_a_stalled_keepalive_is_told_lost_before_the_server_drops_its_node(db_url: str) -> None:
    """The keepalive thread stalls (a GC pause): the deadline thread tells LOST before the reaper can act."""
    with Registry(db_url) as registry, Registry(db_url) as observer:
        session = registry.session("paused", ttl=1.5)
        seen = _States()
        session.add_listener(seen)
        session.register("/nodes/worker/paused", "v")
        with session._lock:  # the keepalive thread blocks here: no heartbeat goes out
            stalled_at = time.monotonic()
            _wait_for(lambda: observer.get("/nodes/worker/paused") is None, 15, "the reaper to drop the node")
            gone_at = time.monotonic()
        lost_at = seen.at(SessionState.LOST)
        print(
            f"\nkeepalive stalled: LOST after {lost_at - stalled_at:.2f} s, node reaped after "
            f"{gone_at - stalled_at:.2f} s (margin {gone_at - lost_at:.2f} s)"
        )
        assert lost_at < gone_at
        _wait_for(lambda: SessionState.RECONNECTED in seen.states, 10, "a new session")
        assert seen.states == [SessionState.LOST, SessionState.RECONNECTED]


def test_failing_keepalives_after_lost_never_make_the_session_suspended_again(
    server: ServerInfo, proxy: Proxy, dbname: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tried: a partition long enough for the local deadline to say LOST, then the link reset and refused
    for 1.5 s, so keepalive after keepalive fails (each would say SUSPENDED) while the session is LOST.
    LOST is final for that session: the listener sees SUSPENDED, LOST, then RECONNECTED on the new session
    once the server answers, and never LOST twice (a CI run once saw LOST, SUSPENDED, LOST)."""
    with Registry(server.url(dbname, port=proxy.port), retry_seconds=1.0) as cut:
        session = cut.session("lost-then-refused", ttl=2.0, interval=0.3)
        seen = _States()
        session.add_listener(seen)
        sid = session.id
        proxy.pause()  # the keepalive in flight hangs: only the deadline thread can tell LOST
        _wait_for(lambda: SessionState.LOST in seen.states, 10, "LOST by the local deadline")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dsreg_db.session"):
            proxy.refuse()  # the hung call is reset, and every later one refused
            time.sleep(1.5)  # about 5 ticks at the 0.3 s interval, each failing with the link refused
            failed = [r for r in caplog.records if "keepalive failed" in r.getMessage()]
            proxy.resume()
        _wait_for(lambda: SessionState.RECONNECTED in seen.states, 20, "RECONNECTED on a new session")
        time.sleep(0.5)  # a late SUSPENDED would be queued by now
        print(f"\n{len(failed)} keepalives failed while LOST; states {[x.value for x in seen.states]}")
        assert len(failed) >= 2  # what would have said SUSPENDED again
        assert seen.states == [SessionState.SUSPENDED, SessionState.LOST, SessionState.RECONNECTED], seen.states
        assert session.id != sid  # the server reaped the old one meanwhile: a new session, told as RECONNECTED


def test_a_refused_keepalive_suspends_at_once(server: ServerInfo, proxy: Proxy, dbname: str) -> None:
    """The server gone (the relay closed: connections refused): SUSPENDED at the first failed beat, not
    after the client's 10 s retry budget."""
    with Registry(server.url(dbname, port=proxy.port), retry_seconds=1.0) as cut:
        session = cut.session("refused", ttl=30, interval=0.5)
        seen = _States()
        session.add_listener(seen)
        proxy.close()
        closed_at = time.monotonic()
        _wait_for(lambda: SessionState.SUSPENDED in seen.states, 10, "SUSPENDED")
        delay = seen.at(SessionState.SUSPENDED) - closed_at
        print(f"\nSUSPENDED {delay:.2f} s after the server went away (interval 0.5 s)")
        assert delay < 0.5 + 1.0


# -- watches: handles, several listeners per prefix, initial events on the poller thread -------


def test_two_subscribers_on_one_prefix_and_one_cancelled(db_url: str) -> None:
    with Registry(db_url, poll_interval=0.05) as registry:
        registry.put("/svc/existing", "0")
        got: dict[str, list[WatchEvent]] = {"a": [], "b": [], "c": []}
        threads: set[str] = set()

        def listener(name: str) -> Any:
            def record(event: WatchEvent) -> None:
                threads.add(threading.current_thread().name)
                got[name].append(event)

            return record

        sub_a = registry.subscribe("/svc", listener("a"), initial=True)
        registry.subscribe("/svc", listener("b"))
        sub_c = registry.subscribe("/svc", listener("c"))
        assert sub_a is not sub_c
        sub_c.cancel()
        for i in range(5):
            registry.put(f"/svc/n{i}", str(i))
        registry.delete("/svc/n0")
        _wait_for(lambda: len(got["a"]) == 7 and len(got["b"]) == 6, 10, "every event")
        time.sleep(0.3)  # nothing more arrives
        assert [(e.type, e.path) for e in got["a"]] == [
            (EventType.ADD, "/svc/existing"),
            *[(EventType.ADD, f"/svc/n{i}") for i in range(5)],
            (EventType.DELETE, "/svc/n0"),
        ]
        assert [e.rev for e in got["b"]] == sorted(e.rev for e in got["b"]) and got["b"] == got["a"][1:]
        assert got["c"] == []
        assert threads == {"dsreg-watch"}  # the initial events too
        registry.unsubscribe("/svc")  # every subscription of the prefix
        registry.put("/svc/late", "x")
        time.sleep(0.3)
        assert len(got["a"]) == 7 and len(got["b"]) == 6


def test_fifty_sessions_started_at_once_beat_on_time(db_url: str) -> None:
    """50 sessions opened together (about 40 pooled connections made at once) while 8 threads write: no
    keepalive misses its 1.25 s deadline. With PyMySQL 1.2 building a TLS context per connection (15-55 ms,
    GIL held) the connections took ~1 s each and every session was SUSPENDED (dsreg_db/driver.py)."""
    states = _States()
    stop = threading.Event()
    with Registry(db_url) as registry:
        sessions = [registry.session(f"w{i}", ttl=3.0, interval=0.25) for i in range(50)]
        for i, s in enumerate(sessions):
            s.add_listener(states)
            s.register(f"/nodes/worker/w{i}", "0")

        def write(k: int) -> None:
            n = 0
            while not stop.is_set():
                sessions[k].register(f"/nodes/worker/w{k}", str(n % 3))
                n += 1

        threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.5)
        stop.set()
        for t in threads:
            t.join()
        contexts = _tls_contexts(registry)
        for s in sessions:
            s.close()
    assert [s for s in states.states if s is not SessionState.CLOSED] == []
    assert len(contexts) == 1  # 8 connections, one TLS context (or none, before PyMySQL 1.2)


def _tls_contexts(registry: Registry) -> set[int]:
    """Identities of the TLS contexts of 8 pooled connections (checked out together, then returned)."""
    conns = [registry.client.engine.raw_connection() for _ in range(8)]
    try:
        return {id(getattr(c.dbapi_connection, "ctx", None)) for c in conns}
    finally:
        for c in conns:
            c.close()


def test_a_restart_registers_the_same_key_as_soon_as_its_killed_predecessor_is_reaped(db_url: str) -> None:
    """A worker killed without closing (its session beat once, then nothing), restarted at once on the same
    key: register() waits for the old session's reap instead of failing with 45005, and succeeds within
    ttl + 1.5 s of the last beat; the watcher sees the old node's DELETE (with its data), then the new ADD."""
    with Registry(db_url) as registry:
        old_id, old_token = registry.client.session_open("worker-1 (killed)", 2000)
        registry.client.heartbeat(old_id, old_token, "/nodes/worker/host:1234", '{"pid": 1}')
        last_beat = time.monotonic()
        rev, _ = registry.list_nodes("/nodes/worker")
        session = registry.session("worker-1 (restarted)", ttl=2.0)
        session.register("/nodes/worker/host:1234", '{"pid": 2}')
        took = time.monotonic() - last_beat
        node = registry.get("/nodes/worker/host:1234")
        events = [(e.kind, e.value, e.session_id) for e in registry.watch("/nodes/worker", rev)]
        session.close()
    print(f"restart on the same key: registered {took:.2f} s after the predecessor's last beat (ttl 2 s)")
    assert node is not None and node.session_id == session.id and node.value == '{"pid": 2}'
    assert events == [("DELETE", '{"pid": 1}', old_id), ("ADD", '{"pid": 2}', session.id)]
    assert 2.0 <= took <= 2.0 + 1.5  # not before the old lease ended, not long after the reap


def test_register_does_not_wait_for_a_persistent_node_or_past_its_limit(db_url: str) -> None:
    """Tried: register() over a persistent node (never goes away: Conflict at once) and over a live
    session's node with wait=0.5 (Conflict after 0.5 s); neither node changed."""
    with Registry(db_url) as registry:
        registry.put("/config/x", "persistent")
        live = registry.session("holder", ttl=5.0)
        live.register("/nodes/worker/w", "holder's")
        other = registry.session("other", ttl=5.0)
        started = time.monotonic()
        with pytest.raises(Conflict, match="persistent"):
            other.register("/config/x", "mine")
        persistent_took = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(Conflict, match=f"held by session {live.id}"):
            other.register("/nodes/worker/w", "mine", wait=0.5)
        live_took = time.monotonic() - started
        nodes = [registry.get("/config/x"), registry.get("/nodes/worker/w")]
        registered = other.registered
        live.close()
        other.close()
    assert persistent_took < 0.5
    assert 0.5 <= live_took < 1.5
    assert [(n.value, n.session_id) for n in nodes if n is not None] == [("persistent", None), ("holder's", live.id)]
    assert registered == {}
