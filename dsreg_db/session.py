"""A client session: a server-side lease kept alive from a background thread.

States, as kazoo and Curator name them (what the application should do in
each is in the README's Python section):

* ``CONNECTED``   the session was opened;
* ``SUSPENDED``   a keepalive lost its connection, or none succeeded for
  ``interval`` + 1 s (a server that answers "not now" -- a routine being
  replaced by an online upgrade, a lock wait -- is given that long):
  the lease may still be alive (the server decides, and its stall grace covers
  its own outages), but nothing this client knows proves it;
* ``LOST``        the server said the session expired (45001), *or* the
  client's own lease deadline passed with no contact: ``ttl`` - min(0.25 s,
  ttl/10) after the *start* of the last call that renewed the lease. The server
  ends a lease no earlier than ``ttl`` after that call committed, so LOST is
  told before any other client can be granted this session's locks (the
  margin covers the deadline check's period). Locks are then stale
  (:mod:`dsreg_db.locks`);
* ``RECONNECTED`` calls work again. After SUSPENDED, or after a LOST that the
  server did not confirm (its stall grace kept the lease), on the *same*
  session: locks still held, same fences. After a LOST the server confirmed,
  on a new session whose registered nodes were re-created;
* ``CLOSED``      :meth:`Session.close` ended it.

Listeners and lock-loss callbacks run in order on the session's own callback
thread (:mod:`dsreg_db.dispatch`), never on the keepalive thread, so a slow
listener cannot delay a heartbeat. The deadlines are checked on a third thread
(the keepalive may be stuck in a call that a partition never answers, the
callback thread in a listener). State changes are logged at INFO, LOST at
WARNING.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from sqlalchemy.engine import Connection, Engine

from dsreg_db import fencing
from dsreg_db.client import Client, Contender, Node, server_answered
from dsreg_db.dispatch import Dispatcher
from dsreg_db.errors import Conflict, DsregError, SchemaMissing, SessionExpired, Unavailable
from dsreg_db.locks import Lock, _Holding, lost_callbacks

log = logging.getLogger(__name__)

#: how often the deadline thread checks the local deadlines
DEADLINE_CHECK_SECONDS = 0.05
#: register() waits for a killed predecessor's node this much past ttl: lease tick, reaper period, margin
RESTART_MARGIN_SECONDS = 2.5
#: ... polling this often (one heartbeat call each time)
RESTART_POLL_SECONDS = 0.1


class SessionState(enum.Enum):
    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"
    RECONNECTED = "RECONNECTED"
    CLOSED = "CLOSED"


Listener = Callable[[SessionState], None]


class Session:
    """A lease with ephemeral registrations that survive session loss.

    ``register(path, value)`` makes the node part of every heartbeat
    (``dsreg_heartbeat``: lease extension and node upsert in one call), so a
    node removed while the session lives comes back on the next beat, and
    after LOST the new session re-creates all of them.
    """

    def __init__(self, client: Client, owner: str, ttl: float = 10.0, *, interval: float | None = None) -> None:
        self._client = client
        self.owner = owner
        self.ttl_ms = int(ttl * 1000)
        self.interval = interval if interval is not None else ttl / 3
        #: SUSPENDED when no keepalive succeeded for this long (a call that hangs in a partition never fails)
        self.suspend_after = self.interval + 1.0
        #: LOST when no call renewed the lease for this long: before the server can end it
        self.lost_after = ttl - min(0.25, ttl / 10)
        #: how long one keepalive call retries before the session is SUSPENDED (a deadlock or certification
        #: conflict is retried within it; a server that is gone is reported at once)
        self.keepalive_retry_seconds = min(0.25, self.interval / 2)
        self._lock = threading.RLock()  # id, token, registrations: the keepalive holds it for a whole tick
        self._state_lock = threading.Lock()  # state and last contact: never held across a call
        self._id: int | None = None
        self._token: str | None = None
        self._expired = False  # the server said 45001: the next tick opens a new session
        self._renewed_at: float | None = None  # monotonic start of the last call that renewed the lease
        self._answered_at: float | None = None  # ... and when it returned
        self._registered: dict[str, str] = {}
        self._holdings: dict[str, _Holding] = {}
        self._listeners: list[Listener] = []
        self._state: SessionState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: Dispatcher | None = None
        self._watchdog: threading.Thread | None = None
        self.max_lock_backoff = 0.2

    # -- lifecycle -----------------------------------------------------
    def start(self) -> Session:
        self._callbacks = Dispatcher(f"dsreg-callbacks-{self.owner}")
        try:
            with self._lock:
                started = time.monotonic()
                self._id, self._token = self._client.session_open(self.owner, self.ttl_ms)
                log.info("session %d opened for %s (ttl %d ms)", self._id, self.owner, self.ttl_ms)
                self._renewed(started)
                self._set_state(SessionState.CONNECTED)
        except BaseException:
            self._callbacks.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"dsreg-keepalive-{self._id}", daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, name=f"dsreg-deadline-{self._id}", daemon=True)
        self._watchdog.start()
        return self

    def close(self) -> None:
        """Stop the keepalive and end the session: its nodes and locks go at once. Listeners have seen
        CLOSED when this returns (unless it is called from a listener)."""
        self._stop.set()
        for thread in (self._thread, self._watchdog):
            if thread is not None and thread is not threading.current_thread():
                thread.join()
        with self._lock:
            if self._state is SessionState.CLOSED:
                return
            if self._id is not None and self._token is not None and not self._expired:
                try:
                    self._client.session_close(self._id, self._token)
                except SessionExpired:
                    pass  # already reaped: nothing left to end
                except Unavailable:
                    log.warning("session %d: server unreachable at close; it expires by its lease", self._id)
            self._set_state(SessionState.CLOSED)
        if self._callbacks is not None:
            self._callbacks.close()

    def __enter__(self) -> Session:
        return self if self._thread is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- state ---------------------------------------------------------
    @property
    def id(self) -> int:
        with self._lock:
            assert self._id is not None, "session not started"
            return self._id

    @property
    def state(self) -> SessionState | None:
        return self._state

    def credentials(self) -> tuple[int, str]:
        """(session_id, token) for calling procedures directly."""
        with self._lock:
            assert self._id is not None and self._token is not None, "session not started"
            return self._id, self._token

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _set_state(self, state: SessionState) -> None:
        with self._state_lock:
            self._transition(state)

    def _transition(self, state: SessionState) -> None:
        """Record ``state`` and queue its listeners (and, for LOST, the held locks' callbacks); _state_lock held."""
        if state is self._state:
            return
        level = logging.WARNING if state is SessionState.LOST else logging.INFO
        log.log(level, "session %s: %s -> %s", self._id, self._state and self._state.value, state.value)
        self._state = state
        assert self._callbacks is not None
        listeners = list(self._listeners)
        self._callbacks.submit(lambda: self._notify(listeners, state))
        if state is SessionState.LOST:
            for holding in list(self._holdings.values()):
                for callback in lost_callbacks(holding):
                    self._callbacks.submit(callback)

    @staticmethod
    def _notify(listeners: list[Listener], state: SessionState) -> None:
        for listener in listeners:
            try:
                listener(state)
            except Exception:  # a listener must not stop the others
                log.exception("session listener failed")

    def _suspend(self) -> None:
        """SUSPENDED, unless LOST or CLOSED: checked and set under one lock, as the deadline thread may make it
        LOST in between (a LOST session became SUSPENDED again, then LOST twice, in a CI run)."""
        with self._state_lock:
            if self._state not in (SessionState.LOST, SessionState.CLOSED):
                self._transition(SessionState.SUSPENDED)

    def _renewed(self, started: float) -> None:
        """A call that started at ``started`` renewed the lease: the session is alive until started + ttl."""
        with self._state_lock:
            self._renewed_at, self._answered_at = started, time.monotonic()
            if self._state in (SessionState.SUSPENDED, SessionState.LOST):
                self._transition(SessionState.RECONNECTED)

    def _watch(self) -> None:
        while not self._stop.wait(DEADLINE_CHECK_SECONDS):
            self._check_deadline()

    def _check_deadline(self) -> None:
        """SUSPENDED, then LOST, when the keepalive has not renewed the lease in time."""
        with self._state_lock:
            if self._renewed_at is None or self._answered_at is None:
                return
            if self._state in (None, SessionState.LOST, SessionState.CLOSED):
                return
            now = time.monotonic()
            if now - self._renewed_at >= self.lost_after:
                silent = now - self._renewed_at
                log.warning("session %s: lease not renewed for %.2f s: treated as lost", self._id, silent)
                self._transition(SessionState.LOST)
            elif now - self._answered_at >= self.suspend_after:
                self._transition(SessionState.SUSPENDED)

    def holds_locks_of(self, session_id: int | None) -> bool:
        """Whether locks taken on ``session_id`` are still this client's, as far as it knows."""
        with self._state_lock:
            live = self._state in (SessionState.CONNECTED, SessionState.SUSPENDED, SessionState.RECONNECTED)
            return live and not self._expired and session_id is not None and session_id == self._id

    # -- registrations and nodes -----------------------------------------
    def register(self, path: str, value: str, *, wait: float | None = None) -> None:
        """Create or update this session's ephemeral node and keep it alive.

        Restart on the same key: while the path is another session's ephemeral node (a predecessor killed
        before it could close), the call waits for that session to die -- up to ``wait`` seconds, by default
        ``ttl`` + 2.5 s, the longest a killed holder with this session's ttl lives (its lease, the lease tick,
        the reaper's period) -- and succeeds at the first heartbeat after the reap. The server never displaces
        a live holder; a persistent node at the path, or a holder still alive after ``wait``, raises
        :class:`Conflict`. ``wait=0`` fails at once.
        """
        limit = self.ttl_ms / 1000 + RESTART_MARGIN_SECONDS if wait is None else wait
        deadline = time.monotonic() + limit
        told = False
        while True:
            with self._lock:  # not held while waiting: the keepalive must go on meanwhile
                session_id, token = self.credentials()
                started = time.monotonic()
                try:
                    self._client.heartbeat(session_id, token, path, value)
                except Conflict:
                    holder = self._client.get(path)
                    if holder is not None and (not holder.ephemeral or time.monotonic() >= deadline):
                        raise
                    if holder is not None and not told:
                        told = True
                        log.info(
                            "session %d: %s is held by session %s; waiting up to %.1f s for it to end",
                            session_id,
                            path,
                            holder.session_id,
                            limit,
                        )
                else:
                    self._renewed(started)
                    self._registered[path] = value
                    return
            time.sleep(RESTART_POLL_SECONDS)

    def unregister(self, path: str) -> None:
        with self._lock:
            self._registered.pop(path, None)
            self.delete(path)

    @property
    def registered(self) -> dict[str, str]:
        with self._lock:
            return dict(self._registered)

    def put(self, path: str, value: str) -> None:
        """An ephemeral node of this session that is not re-created after LOST."""
        session_id, token = self.credentials()
        self._client.put(session_id, token, path, value)

    def delete(self, path: str) -> None:
        session_id, token = self.credentials()
        self._client.delete(session_id, token, path)

    def get(self, path: str) -> Node | None:
        return self._client.get(path)

    def exists(self, path: str) -> bool:
        return self._client.get(path) is not None

    def children(self, path: str) -> list[str]:
        return self._client.children(path)

    # -- locks -----------------------------------------------------------
    def lock(self, name: str, timeout: float | None = None, *, fair: bool = False) -> Lock:
        """The recipe (:class:`~dsreg_db.locks.Lock`): exclusive between processes and between this session's
        threads, re-entrant. ``with session.lock(name, timeout) as fence:`` -- LockTimeout if not acquired.
        ``fair``: waiting sessions get it in arrival order (a server-side queue, as Curator's mutex)."""
        with self._state_lock:  # not _lock: a keepalive tick hung in a partition holds that one
            holding = self._holdings.setdefault(name, _Holding())
        return Lock(self, name, holding, timeout, fair=fair)

    def acquire_lock(self, name: str, timeout: float | None = None, *, fair: bool = False) -> int | None:
        """The server lock alone, for this *session* (every thread of it holds it): prefer :meth:`lock`.

        Returns the fencing token, or None on timeout. Waits with jittered
        exponential backoff (5 ms .. ``max_lock_backoff``), not a busy loop.
        ``fair``: the session queues on the server (``dsreg_lock_acquire_fair``)
        and gets the lock when every older waiter had it; a timeout or an
        error leaves the queue. The lock dies with the session: after LOST it
        is gone, and releasing it then raises NotOwner.
        """
        if not fair:
            return self._with_backoff(lambda sid, token: self._client.lock_acquire(sid, token, name), timeout)
        try:
            fence = self._with_backoff(lambda sid, token: self._client.lock_acquire_fair(sid, token, name)[0], timeout)
        except BaseException:
            with contextlib.suppress(DsregError):  # best effort: a dead session's ticket went with it
                self._client.lock_dequeue(*self.credentials(), name)
            raise
        if fence is None:
            # the current session's place; a replaced session's ticket went with it (then this is a no-op)
            self._client.lock_dequeue(*self.credentials(), name)
        return fence

    def _with_backoff(self, attempt: Callable[[int, str], int | None], timeout: float | None) -> int | None:
        """``attempt(session_id, token)`` until it returns a fence, or None once ``timeout`` passed; jittered
        exponential backoff (5 ms .. ``max_lock_backoff``) between tries."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            fence = attempt(*self.credentials())
            if fence is not None:
                return fence
            if deadline is not None and time.monotonic() >= deadline:
                return None
            pause = random.uniform(delay / 2, delay)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 1.5, self.max_lock_backoff)

    def contenders(self, name: str) -> list[Contender]:
        """The holder of lock ``name``, then the sessions queued for it in order (Curator's participants)."""
        return self._client.lock_contenders(name)

    def release_lock(self, name: str) -> None:
        session_id, token = self.credentials()
        self._client.lock_release(session_id, token, name)

    def release_server_lock(self, name: str, session_id: int | None) -> None:
        """Release ``name`` if the session it was taken on is still this one; SessionExpired if not."""
        with self._lock:
            if session_id is None or session_id != self._id or self._expired:
                raise SessionExpired(f"session {session_id} that took lock {name} is gone")
            self.release_lock(name)

    # -- fenced writes (dsreg_db.fencing) ---------------------------------
    def fenced(self, target: Engine | Connection, name: str, fence: int) -> AbstractContextManager[Connection]:
        """``with session.fenced(app_engine, name, fence) as conn:`` -- the application's transaction,
        committed only while this session still holds lock ``name`` with ``fence``."""
        session_id, token = self.credentials()
        return fencing.guarded(target, "dsreg_fence_check", session_id, token, name, fence)

    def guarded(self, target: Engine | Connection) -> AbstractContextManager[Connection]:
        """``with session.guarded(app_engine) as conn:`` -- committed only while this session lives."""
        session_id, token = self.credentials()
        return fencing.guarded(target, "dsreg_session_check", session_id, token)

    # -- keepalive thread ------------------------------------------------
    def _run(self) -> None:
        while True:
            healthy = self._state in (SessionState.CONNECTED, SessionState.RECONNECTED)
            if self._stop.wait(self.interval if healthy else min(self.interval, 0.5)):
                return
            try:
                self._tick()
            except Exception:  # keep beating whatever one tick ran into
                log.exception("session %s: keepalive tick failed", self._id)

    def _tick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            try:
                if self._expired:
                    self._reopen()
                else:
                    started = time.monotonic()
                    self._beat()
                    self._renewed(started)
            except SessionExpired:
                self._expired = True
                self._set_state(SessionState.LOST)
                self._tick_reopen()
            except (Unavailable, SchemaMissing) as exc:  # the lease is unconfirmed either way
                log.warning("session %s: keepalive failed: %s", self._id, exc)
                # A lost link is SUSPENDED at once. A server that answered (a routine being replaced by an
                # online upgrade, a lock wait) is given until the silence deadline: the next tick may work.
                if not server_answered(exc):
                    self._suspend()

    def _beat(self) -> None:
        session_id, token = self.credentials()
        if not self._registered:
            self._client.session_keepalive(session_id, token, retry_seconds=self.keepalive_retry_seconds)
        self._heartbeat_all(session_id, token)

    def _heartbeat_all(self, session_id: int, token: str) -> None:
        for path, value in self._registered.items():
            try:
                self._client.heartbeat(session_id, token, path, value, retry_seconds=self.keepalive_retry_seconds)
            except Conflict as exc:  # another session owns the path now; keep the rest alive
                log.warning("session %d: cannot hold %s: %s", session_id, path, exc)

    def _tick_reopen(self) -> None:
        try:
            self._reopen()
        except (Unavailable, SchemaMissing) as exc:
            log.warning("session lost and server unreachable, retrying: %s", exc)

    def _reopen(self) -> None:
        """After the server said LOST: a new session, then every registered node re-created."""
        old = self._id
        started = time.monotonic()
        self._id, self._token = self._client.session_open(self.owner, self.ttl_ms)
        self._expired = False
        self._heartbeat_all(self._id, self._token)
        log.info("session %s lost; replaced by %d with %d registrations", old, self._id, len(self._registered))
        self._renewed(started)
