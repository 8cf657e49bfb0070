"""The entry point: ``Registry(url)`` -- sessions, nodes, maintenance.

with Registry("mysql://app@db/scheduler") as registry:
    with registry.session("worker-1:1234", ttl=10) as session:
        session.register("/nodes/worker/10.0.0.5:1234", '{"load": 0.3}')
        print(registry.children("/nodes/worker"))
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import URL

from dsreg_db.client import Client, Event, Node
from dsreg_db.session import Session
from dsreg_db.watch import Listener as WatchListener
from dsreg_db.watch import Poller, Subscription


class Registry:
    """A dsreg database. Thread-safe; one per process is enough."""

    def __init__(
        self, url: str | URL | None = None, *, retry_seconds: float = 10.0, poll_interval: float = 0.25
    ) -> None:
        self.client = Client(url, retry_seconds=retry_seconds)
        self._sessions: list[Session] = []
        self._poller = Poller(self.client, interval=poll_interval)

    def session(self, owner: str, ttl: float = 10.0, *, interval: float | None = None) -> Session:
        """Open a session (lease of ``ttl`` seconds) kept alive every ``interval`` (ttl/3)."""
        session = Session(self.client, owner, ttl, interval=interval).start()
        self._sessions.append(session)
        return session

    # -- persistent nodes and reads --------------------------------------
    def get(self, path: str) -> Node | None:
        return self.client.get(path)

    def exists(self, path: str) -> bool:
        return self.client.get(path) is not None

    def children(self, path: str) -> list[str]:
        return self.client.children(path)

    def put(self, path: str, value: str) -> None:
        """Create or update a persistent node."""
        self.client.put(None, None, path, value)

    def delete(self, path: str) -> None:
        """Delete a persistent node (an ephemeral one only through its session)."""
        self.client.delete(None, None, path)

    def watch(self, prefix: str, after_rev: int, max_events: int = 1000) -> list[Event]:
        """One read of the change log (see :meth:`subscribe` for a listener)."""
        return self.client.watch(prefix, after_rev, max_events)

    def list_nodes(self, prefix: str) -> tuple[int, list[Node]]:
        return self.client.list_nodes(prefix)

    def subscribe(self, path: str, listener: WatchListener, *, initial: bool = False) -> Subscription:
        """Deliver ADD/UPDATE/DELETE for ``path`` and its subtree, in revision order, from now on
        (``initial=True``: first an ADD for every existing node). Every listener runs on the shared poller
        thread. Returns the handle: ``cancel()`` ends this subscription; others of the same path go on."""
        return self._poller.subscribe(path, listener, initial=initial)

    def unsubscribe(self, path: str) -> None:
        """Cancel every subscription of ``path``."""
        self._poller.unsubscribe(path)

    def reap(self) -> int:
        return self.client.reap()

    def compact(self) -> int:
        return self.client.compact()

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        self._poller.close()
        for session in self._sessions:
            session.close()
        self._sessions.clear()
        self.client.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
