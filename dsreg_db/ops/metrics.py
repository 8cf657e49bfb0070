"""Prometheus metrics of registry health (``dsreg metrics``, ``dsreg metrics --listen``).

``dsreg_reaper_last_run_age_seconds`` and ``dsreg_sessions_overdue`` are the
two to alert on: a reaper that stopped (event scheduler off) or sessions
whose lease is over but that nobody reaps. ``dsreg_up`` is 0 when the
database did not answer the scrape's queries (then it is the only metric).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from dsreg_db.ops import admin

log = logging.getLogger(__name__)


class RegistryCollector(Collector):
    """Each scrape runs the aggregate queries of :func:`admin.summary` once.

    ``tolerant``: a failed query gives ``dsreg_up 0`` instead of an exception (the
    HTTP server must keep serving while the database is down).
    """

    def __init__(self, engine: Engine, *, tolerant: bool = False) -> None:
        self.engine = engine
        self.tolerant = tolerant
        self._was_up: bool | None = None
        self._lock = threading.Lock()

    def _state(self, up: bool, error: Exception | None = None) -> None:
        with self._lock:  # one log line per change, not one per scrape
            if up != self._was_up:
                if up:
                    log.info("database answers: scrapes serve the registry's metrics")
                else:
                    log.warning("scrape failed, serving dsreg_up 0: %s", (str(error).splitlines() or [repr(error)])[0])
            self._was_up = up

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            s = admin.summary(self.engine)
        except Exception as exc:
            if not self.tolerant:
                raise
            self._state(False, exc)
            yield GaugeMetricFamily("dsreg_up", "1 if the database answered this scrape's queries.", value=0)
            return
        if self.tolerant:
            self._state(True)
        yield GaugeMetricFamily("dsreg_up", "1 if the database answered this scrape's queries.", value=1)
        yield GaugeMetricFamily("dsreg_sessions_live", "Sessions not reaped yet.", value=s.sessions)
        yield GaugeMetricFamily(
            "dsreg_sessions_overdue", "Sessions whose lease is over but not reaped yet.", value=s.sessions_overdue
        )
        nodes = GaugeMetricFamily("dsreg_nodes", "Nodes in the registry.", labels=["kind"])
        nodes.add_metric(["ephemeral"], s.nodes_ephemeral)
        nodes.add_metric(["persistent"], s.nodes_persistent)
        yield nodes
        yield GaugeMetricFamily("dsreg_locks_held", "Locks held.", value=s.locks)
        yield CounterMetricFamily(
            "dsreg_reaper_runs",
            "Reaper batches recorded (one per dsreg_reap batch that reaped, at most one per 500 ms when idle).",
            value=s.reaper.runs,
        )
        yield CounterMetricFamily("dsreg_sessions_expired", "Sessions expired by the reaper.", value=s.reaper.expired)
        yield CounterMetricFamily(
            "dsreg_reaper_stalls", "Times the reaper found a gap and extended leases.", value=s.reaper.stalls
        )
        yield GaugeMetricFamily(
            "dsreg_reaper_last_run_age_seconds", "Seconds since a reaper last ran.", value=s.reaper.seconds_since_run
        )
        yield GaugeMetricFamily("dsreg_revision", "Latest change-log revision.", value=s.revision)
        yield GaugeMetricFamily(
            "dsreg_compacted_revision", "Highest revision removed by compaction.", value=s.compacted
        )


def exposition(engine: Engine) -> str:
    registry = CollectorRegistry()
    registry.register(RegistryCollector(engine))
    return generate_latest(registry).decode()


def serve(engine: Engine, host: str, port: int) -> threading.Thread:
    """Serve ``/metrics`` on HOST:PORT from a thread (prometheus_client's threading HTTP server).

    Returns the server thread; every scrape queries the database once, a failed one serves
    ``dsreg_up 0``.
    """
    registry = CollectorRegistry()
    registry.register(RegistryCollector(engine, tolerant=True))
    _, thread = start_http_server(port, host, registry=registry)
    return thread
