"""One thread that runs callbacks in the order they were queued.

A session's state listeners and lock-loss callbacks run here, never on the
keepalive thread: a listener that blocks (DolphinScheduler's master waits
inside its connection-state callback) delays the next listener, not the next
heartbeat, nor the session's deadline checks (their own thread).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Dispatcher:
    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        """Run what is queued, then stop (returns at once when called from a job)."""
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # one callback must not stop the others
                log.exception("session callback failed")
