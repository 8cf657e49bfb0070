"""Subscriptions: ADD / UPDATE / DELETE for a subtree, in revision order.

DolphinScheduler's ``subscribe(path, listener)`` on top of ``dsreg_watch``.
One poller thread per :class:`~dsreg_db.registry.Registry` serves every
subscription, and every listener runs on it (initial events included).
``subscribe`` returns the :class:`Subscription` as a handle: ``cancel()`` ends
that one; several subscriptions of one prefix each get every event once. Each
keeps its own position and a view of its subtree (path -> value, mod_rev),
which makes delivery exact:

* an event is delivered only if it is newer than what the view holds for that
  path (so replaying from an older position never repeats a change);
* on a lost connection the poller simply resumes from its last revision;
* on 45004 (position compacted) it re-lists the subtree (``dsreg_list``) and
  delivers the difference between its view and the listing as synthetic
  events, so the listener's picture converges to the table.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dsreg_db.client import Client, Event, Node
from dsreg_db.errors import Compacted, Unavailable

log = logging.getLogger(__name__)


class EventType(enum.Enum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    path: str
    value: str
    rev: int
    synthetic: bool = False  # made from a re-list after compaction, not read from the change log


Listener = Callable[[WatchEvent], None]


class Subscription:
    """One subtree's position, view and listener; the handle ``subscribe`` returns."""

    def __init__(self, poller: Poller, prefix: str, listener: Listener, *, initial: bool) -> None:
        self.client = poller.client
        self.prefix = prefix
        self.listener = listener
        self.view: dict[str, tuple[str, int]] = {}
        self.rev = 0
        self.relists = 0
        self.cancelled = False
        self._poller = poller
        self._polling = threading.Lock()  # the poller thread and a caller polling by hand take turns
        # listed here, so the subscription starts at the moment subscribe() was called; the initial events
        # wait for the poller thread, which delivers every event of this subscription
        self._pending: list[WatchEvent] = []
        self._relist(deliver=initial, into=self._pending)

    def cancel(self) -> None:
        """No event is delivered after this returns, except one the poller is delivering right now."""
        self.cancelled = True
        self._poller.remove(self)

    def _relist(self, deliver: bool, into: list[WatchEvent] | None = None) -> None:
        rev, nodes = self.client.list_nodes(self.prefix)
        listed: dict[str, Node] = {n.path: n for n in nodes}
        emit = self._emit if into is None else into.append
        if deliver:
            for path in sorted(set(self.view) - set(listed)):
                value, _ = self.view[path]
                emit(WatchEvent(EventType.DELETE, path, value, rev, synthetic=True))
            for path, node in listed.items():
                known = self.view.get(path)
                if known is None:
                    emit(WatchEvent(EventType.ADD, path, node.value, node.mod_rev, synthetic=True))
                elif known[1] < node.mod_rev:
                    emit(WatchEvent(EventType.UPDATE, path, node.value, node.mod_rev, synthetic=True))
        self.view = {path: (n.value, n.mod_rev) for path, n in listed.items()}
        self.rev = rev

    def poll(self, batch: int) -> int:
        """Deliver what changed since the last poll; returns how many events were read."""
        with self._polling:
            return self._poll(batch)

    def _poll(self, batch: int) -> int:
        pending, self._pending = self._pending, []
        for initial in pending:
            self._emit(initial)
        try:
            events = self.client.watch(self.prefix, self.rev, batch)
        except Compacted:
            log.warning("watch %s: position %d compacted; re-listing", self.prefix, self.rev)
            self.relists += 1
            self._relist(deliver=True)
            return 0
        for event in events:
            self._apply(event)
            self.rev = event.rev
        return len(events)

    def _apply(self, event: Event) -> None:
        known = self.view.get(event.path)
        if known is not None and known[1] >= event.rev:
            return  # the listing already reflected this change
        if event.kind == "DELETE":
            if known is not None:
                del self.view[event.path]
                self._emit(WatchEvent(EventType.DELETE, event.path, event.value, event.rev))
            return
        self.view[event.path] = (event.value, event.rev)
        kind = EventType.ADD if known is None else EventType.UPDATE
        self._emit(WatchEvent(kind, event.path, event.value, event.rev))

    def _emit(self, event: WatchEvent) -> None:
        if self.cancelled:
            return
        try:
            self.listener(event)
        except Exception:  # one listener must not stop the others
            log.exception("watch listener for %s failed", self.prefix)


class Poller:
    """The shared poller thread of a Registry."""

    def __init__(self, client: Client, interval: float = 0.25, batch: int = 1000) -> None:
        self.client = client
        self.interval = interval
        self.batch = batch
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a new subscription: deliver its initial events without waiting
        self._thread: threading.Thread | None = None
        self.rounds = 0  # poll rounds the thread has finished

    def subscribe(self, prefix: str, listener: Listener, *, initial: bool = False) -> Subscription:
        subscription = Subscription(self, prefix, listener, initial=initial)
        with self._lock:
            self._subscriptions.append(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dsreg-watch", daemon=True)
                self._thread.start()
        self._wake.set()
        return subscription

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def unsubscribe(self, prefix: str) -> None:
        """Cancel every subscription of ``prefix`` (DolphinScheduler's ``unsubscribe(path)``)."""
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.prefix == prefix]
        for subscription in subscriptions:
            subscription.cancel()

    def poll_once(self) -> int:
        with self._lock:
            subscriptions = list(self._subscriptions)
        read = 0
        for subscription in subscriptions:
            if subscription.cancelled:
                continue
            try:
                # drain a backlog before sleeping again
                while (n := subscription.poll(self.batch)) == self.batch:
                    read += n
                read += n
            except Unavailable as exc:
                log.warning("watch %s: %s; resuming from rev %d", subscription.prefix, exc, subscription.rev)
        return read

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.poll_once()
            except Exception:  # keep polling whatever one round ran into
                log.exception("watch poll failed")
            self.rounds += 1

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
