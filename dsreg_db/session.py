"""A client session: a server-side lease kept alive from a background thread.

Modelled on kazoo/Curator connection states:

* ``CONNECTED``   the session was opened;
* ``SUSPENDED``   a keepalive could not reach the server (the lease may still
  be alive: the server decides, and its stall grace covers its own outages);
* ``LOST``        the server said the session expired (45001): it was reaped,
  its ephemeral nodes and locks are gone;
* ``RECONNECTED`` calls work again -- after SUSPENDED on the same session,
  after LOST on a new session whose registered nodes were re-created;
* ``CLOSED``      :meth:`Session.close` ended it.

Listeners run on the keepalive thread and must return quickly.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from dsreg_db.client import Client, Node
from dsreg_db.errors import Conflict, SessionExpired, Unavailable

log = logging.getLogger(__name__)


class LockTimeout(TimeoutError):
    """``Session.lock`` did not get the lock in time."""


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
        self._lock = threading.RLock()
        self._id: int | None = None
        self._token: str | None = None
        self._registered: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._state: SessionState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.max_lock_backoff = 0.2

    # -- lifecycle -----------------------------------------------------
    def start(self) -> Session:
        with self._lock:
            self._id, self._token = self._client.session_open(self.owner, self.ttl_ms)
            log.info("session %d opened for %s (ttl %d ms)", self._id, self.owner, self.ttl_ms)
            self._set_state(SessionState.CONNECTED)
        self._thread = threading.Thread(target=self._run, name=f"dsreg-keepalive-{self._id}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the keepalive and end the session: its nodes and locks go at once."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            if self._state is SessionState.CLOSED:
                return
            if self._id is not None and self._token is not None:
                try:
                    self._client.session_close(self._id, self._token)
                except SessionExpired:
                    pass  # already reaped: nothing left to end
                except Unavailable:
                    log.warning("session %d: server unreachable at close; it expires by its lease", self._id)
            self._set_state(SessionState.CLOSED)

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
        if state is self._state:
            return
        log.info("session %s: %s -> %s", self._id, self._state and self._state.value, state.value)
        self._state = state
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # a listener must not stop the keepalive
                log.exception("session listener failed")

    # -- registrations and nodes -----------------------------------------
    def register(self, path: str, value: str) -> None:
        """Create or update this session's ephemeral node and keep it alive."""
        with self._lock:
            session_id, token = self.credentials()
            self._client.heartbeat(session_id, token, path, value)
            self._registered[path] = value

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
    def acquire_lock(self, name: str, timeout: float | None = None) -> int | None:
        """Take lock ``name``, waiting up to ``timeout`` seconds (None: forever).

        Returns the fencing token, or None on timeout. Waits with jittered
        exponential backoff (5 ms .. ``max_lock_backoff``), not a busy loop.
        The lock dies with the session: after LOST it is gone, and releasing
        it then raises NotOwner.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            session_id, token = self.credentials()
            fence = self._client.lock_acquire(session_id, token, name)
            if fence is not None:
                return fence
            if deadline is not None and time.monotonic() >= deadline:
                return None
            pause = random.uniform(delay / 2, delay)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 1.5, self.max_lock_backoff)

    def release_lock(self, name: str) -> None:
        session_id, token = self.credentials()
        self._client.lock_release(session_id, token, name)

    @contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[int]:
        """``with session.lock(name) as fence:`` -- LockTimeout if not acquired in time."""
        fence = self.acquire_lock(name, timeout)
        if fence is None:
            raise LockTimeout(f"lock {name} not acquired within {timeout} s")
        try:
            yield fence
        finally:
            self.release_lock(name)

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
                if self._state is SessionState.LOST:
                    self._reopen()
                else:
                    self._beat()
                    if self._state is SessionState.SUSPENDED:
                        self._set_state(SessionState.RECONNECTED)
            except SessionExpired:
                self._set_state(SessionState.LOST)
                self._tick_reopen()
            except Unavailable as exc:
                log.warning("session %s: keepalive failed: %s", self._id, exc)
                if self._state is not SessionState.LOST:
                    self._set_state(SessionState.SUSPENDED)

    def _beat(self) -> None:
        session_id, token = self.credentials()
        if not self._registered:
            self._client.session_keepalive(session_id, token)
        self._heartbeat_all(session_id, token)

    def _heartbeat_all(self, session_id: int, token: str) -> None:
        for path, value in self._registered.items():
            try:
                self._client.heartbeat(session_id, token, path, value)
            except Conflict as exc:  # another session owns the path now; keep the rest alive
                log.warning("session %d: cannot hold %s: %s", session_id, path, exc)

    def _tick_reopen(self) -> None:
        try:
            self._reopen()
        except Unavailable as exc:
            log.warning("session lost and server unreachable, retrying: %s", exc)

    def _reopen(self) -> None:
        """After LOST: a new session, then every registered node re-created."""
        old = self._id
        self._id, self._token = self._client.session_open(self.owner, self.ttl_ms)
        self._heartbeat_all(self._id, self._token)
        log.info("session %s lost; replaced by %d with %d registrations", old, self._id, len(self._registered))
        self._set_state(SessionState.RECONNECTED)
