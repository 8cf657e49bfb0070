"""Progress lines of long runs (``dsreg bench``, ``dsreg torture``, a waiting ``dsreg upgrade``).

The library stays quiet: a line is an INFO record on a logger nobody shows
unless asked. The CLI shows these loggers on stderr (:func:`show_on_stderr`),
so stdout keeps only the report.
"""

from __future__ import annotations

import logging
import threading
import time

import click

log = logging.getLogger("dsreg_db.progress")

#: the loggers whose INFO lines the CLI shows on stderr
SHOWN = ("dsreg_db.progress", "dsreg_db.schema.migration_lock", "dsreg_db.ops.metrics")

_lock = threading.Lock()
_t0: float | None = None
_last: dict[str, float] = {}


def progress(msg: str, *, every: float = 0.0, key: str | None = None) -> None:
    """Log ``[+elapsed s] msg`` (elapsed since the first line of this process).

    With ``every``, at most one line per ``every`` seconds for ``key`` (default: the
    message's first word), so a loop may call it on each turn.
    """
    global _t0
    now = time.monotonic()
    with _lock:
        if _t0 is None:
            _t0 = now
        if every:
            k = key or msg.split(" ", 1)[0]
            if now - _last.get(k, -every) < every:
                return
            _last[k] = now
        elapsed = now - _t0
    log.info("[+%.1f s] %s", elapsed, msg)


class _Stderr(logging.Handler):
    """click.echo on the stderr of the moment (CliRunner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
            click.echo(prefix + self.format(record), err=True)
        except Exception:  # pragma: no cover - a closed stderr must not break the run
            self.handleError(record)


def show_on_stderr() -> None:
    """Show the INFO lines of :data:`SHOWN` on stderr, once each (idempotent)."""
    for name in SHOWN:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _Stderr) for h in logger.handlers):
            logger.addHandler(_Stderr())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # with -v the root handler would print them a second time
