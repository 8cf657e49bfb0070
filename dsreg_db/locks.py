"""``Lock``: a mutex between processes *and* between the threads that share one session.

The server lock (``dsreg_lock_acquire``) belongs to a session, so every
thread of that session "holds" it at once. This recipe adds what kazoo's
``Lock`` and Curator's ``InterProcessMutex`` give on top of a session:

* **exclusive per thread**: the threads of one session queue on a local
  condition; one of them at a time asks the server (with backoff), so waiters
  in one process do not hammer the server;
* **re-entrant** for the owning thread, with a count: only the outermost
  ``release`` frees the server lock, so every holder gets a fence larger than
  the previous holder's;
* **told when lost**: when the session is LOST (the server reaped it, or its
  local lease deadline passed without contact) ``on_lost`` callbacks run on
  the session's callback thread and :meth:`Lock.valid` turns false; the
  holder's fence is then stale. If contact returns and the server kept the
  session (its stall grace), the lock is valid again with the same fence; if
  the session was replaced, it stays invalid until released. A callback
  belongs to its :class:`Lock` object: it goes when that object is garbage
  collected or when the function ``on_lost`` returned is called, so a loop
  that makes a lock and registers a callback each time keeps one, not all.

``release`` by a thread that does not hold the lock raises :class:`NotOwner`
(as ``threading.RLock`` raises ``RuntimeError``). ``release`` of a lock lost
with its session returns quietly (logged at WARNING): there is nothing left to
free, and raising from a ``with`` block's exit would hide the block's own error.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from dsreg_db.errors import LockTimeout, NotOwner, SessionExpired

if TYPE_CHECKING:
    from dsreg_db.client import Contender
    from dsreg_db.session import Session

log = logging.getLogger(__name__)

LostCallback = Callable[["Lock"], None]


class _Holding:
    """The local state of one lock name on one session, shared by every :class:`Lock` of that name."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.owner: int | None = None  # thread ident
        self.count = 0
        self.fence: int | None = None
        self.session_id: int | None = None  # the session the server lock was taken for
        # the Lock objects of this name with on_lost callbacks, weakly: a dropped Lock drops its callbacks
        self.watchers: list[weakref.ref[Lock]] = []


class Lock:
    """``with session.lock("/locks/failover") as fence:`` -- see the module docstring."""

    def __init__(
        self, session: Session, name: str, holding: _Holding, timeout: float | None = None, *, fair: bool = False
    ) -> None:
        self.session = session
        self.name = name
        self.timeout = timeout
        self.fair = fair
        self._holding = holding
        self._lost: list[LostCallback] = []  # guarded by holding.cond

    # -- acquire / release ---------------------------------------------
    def acquire(self, timeout: float | None = None) -> int | None:
        """Take the lock, waiting up to ``timeout`` seconds (None: forever). Returns the fence, or None."""
        me = threading.get_ident()
        h = self._holding
        deadline = None if timeout is None else time.monotonic() + timeout
        with h.cond:
            if h.owner == me:
                h.count += 1
                return h.fence
            while h.owner is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                h.cond.wait(remaining)
            h.owner = me  # reserved: the other threads of this session wait above, only we ask the server
        fence: int | None = None
        try:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            fence = self.session.acquire_lock(self.name, remaining, fair=self.fair)
            session_id = self.session.id
        finally:
            if fence is None:
                self._free()
        with h.cond:
            h.count, h.fence, h.session_id = 1, fence, session_id
        log.debug("lock %s acquired by session %s with fence %s", self.name, session_id, fence)
        return fence

    def release(self) -> None:
        me = threading.get_ident()
        h = self._holding
        with h.cond:
            if h.owner != me or h.count == 0:
                raise NotOwner(f"lock {self.name} is not held by this thread")
            h.count -= 1
            if h.count:
                return
            session_id, fence = h.session_id, h.fence
        try:
            self.session.release_server_lock(self.name, session_id)
        except (NotOwner, SessionExpired) as exc:
            log.warning("lock %s (fence %s) was lost before its release: %s", self.name, fence, exc)
        finally:
            self._free()

    def _free(self) -> None:
        h = self._holding
        with h.cond:
            h.owner, h.count, h.fence, h.session_id = None, 0, None, None
            h.cond.notify()

    # -- what the holder can ask -----------------------------------------
    @property
    def fence(self) -> int | None:
        """The fencing token while this thread holds the lock, else None."""
        h = self._holding
        with h.cond:
            return h.fence if h.owner == threading.get_ident() else None

    @property
    def is_acquired(self) -> bool:
        """This thread holds the lock (valid or not)."""
        with self._holding.cond:
            return self._holding.owner == threading.get_ident()

    def valid(self) -> bool:
        """Held by this thread, on the session that still lives and holds it as far as this client knows."""
        h = self._holding
        with h.cond:
            if h.owner != threading.get_ident():
                return False
            session_id = h.session_id
        return self.session.holds_locks_of(session_id)

    def contenders(self) -> list[Contender]:
        """The holder, then the sessions queued for this lock in the order they will get it (fair waiters)."""
        return self.session.contenders(self.name)

    def on_lost(self, callback: LostCallback) -> Callable[[], None]:
        """Call ``callback(lock)`` on the session's callback thread each time the session is lost while held.

        Returns a function that cancels it. The callback lives as long as this Lock object does."""
        h = self._holding
        with h.cond:
            if not self._lost:
                h.watchers = [ref for ref in h.watchers if ref() is not None]
                h.watchers.append(weakref.ref(self))
            self._lost.append(callback)

        def cancel() -> None:
            with h.cond:
                if callback in self._lost:
                    self._lost.remove(callback)

        return cancel

    # -- context manager -------------------------------------------------
    def __enter__(self) -> int:
        fence = self.acquire(self.timeout)
        if fence is None:
            raise LockTimeout(f"lock {self.name} not acquired within {self.timeout} s")
        return fence

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lost_callbacks(holding: _Holding) -> list[Callable[[], None]]:
    """The callbacks to run for a held lock when its session is lost (none when it is not held)."""
    with holding.cond:
        if holding.owner is None:
            return []
        locks = [lock for lock in (ref() for ref in holding.watchers) if lock is not None]
        return [functools.partial(cb, lock) for lock in locks for cb in lock._lost]
