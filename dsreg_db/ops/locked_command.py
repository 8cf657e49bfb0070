"""``dsreg lock NAME -- cmd``: run a command while holding a lock, and only while holding it.

* SIGTERM, SIGINT and SIGHUP sent to ``dsreg`` are passed on to the command;
  ``dsreg`` waits for it, releases the lock and exits with its status (a
  command ended by signal N gives 128 + N, as in a shell). A command is never
  left running without its parent.
* When the session is LOST while the command runs (the server reaped it, or
  the client's local lease deadline passed: see dsreg_db.session), the lock
  may already belong to someone else: the command gets SIGTERM, then SIGKILL
  after ``grace`` seconds, and ``dsreg`` exits with :data:`LOST_EXIT` (75,
  EX_TEMPFAIL: run it again).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from types import FrameType

from dsreg_db.locks import Lock
from dsreg_db.session import Session

log = logging.getLogger(__name__)

LOST_EXIT = 75
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("command %d ignored SIGTERM for %.1f s: SIGKILL", child.pid, grace)
        child.kill()


def run_locked(
    session: Session,
    name: str,
    command: list[str],
    timeout: float | None,
    grace: float = 5.0,
    on_fence: Callable[[int], None] = lambda fence: None,
) -> int | None:
    """The command's exit status (or LOST_EXIT); None if the lock was not acquired within ``timeout``."""
    lock: Lock = session.lock(name)
    fence = lock.acquire(timeout)
    if fence is None:
        return None
    lost = threading.Event()
    try:
        on_fence(fence)
        child = subprocess.Popen(command, env={**os.environ, "DSREG_FENCE": str(fence)})

        def when_lost(_lock: Lock) -> None:
            lost.set()
            log.warning("lock %s lost while the command ran: stopping it", name)
            _stop(child, grace)

        lock.on_lost(when_lost)

        def forward(signum: int, _frame: FrameType | None) -> None:
            if child.poll() is None:
                child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
        try:
            status = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if child.poll() is None:  # an exception in wait(): never leave it behind
                _stop(child, grace)
    finally:
        lock.release()
    if lost.is_set():
        return LOST_EXIT
    return 128 - status if status < 0 else status
