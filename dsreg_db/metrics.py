"""Prometheus text exposition of registry health (``dsreg metrics``).

``dsreg_reaper_last_run_age_seconds`` and ``dsreg_sessions_overdue`` are the
two to alert on: a reaper that stopped (event scheduler off) or sessions
whose lease is over but that nobody reaps.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from dsreg_db import admin


class RegistryCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = admin.status(self.engine)
        yield GaugeMetricFamily("dsreg_sessions_live", "Sessions not reaped yet.", value=len(s.sessions))
        yield GaugeMetricFamily(
            "dsreg_sessions_overdue",
            "Sessions whose lease is over but not reaped yet.",
            value=sum(1 for x in s.sessions if x.remaining_ms < 0),
        )
        nodes = GaugeMetricFamily("dsreg_nodes", "Nodes in the registry.", labels=["kind"])
        nodes.add_metric(["ephemeral"], sum(1 for n in s.nodes if n.session_id is not None))
        nodes.add_metric(["persistent"], sum(1 for n in s.nodes if n.session_id is None))
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
