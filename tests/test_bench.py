"""The benchmark runs end to end (a smoke run: tiny, no thresholds -- speed is never asserted)."""

from __future__ import annotations

from pathlib import Path

import pymysql

from dsreg_db.testing import bench
from dsreg_db.urls import pymysql_params


def _tick(url: str) -> int:
    with pymysql.connect(autocommit=True, **pymysql_params(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT value FROM dsreg_setting WHERE name = 'lease_tick_ms'")
        (value,) = cur.fetchone()  # type: ignore[misc]
        return int(value)


def test_bench_smoke(db_url: str, tmp_path: object) -> None:
    lines: list[str] = []
    tick_before = _tick(db_url)
    report = bench.run(
        db_url,
        clients=2,
        seconds=0.5,
        out=lines.append,
        reap_sizes=(100, 1000),
        storm_sessions=300,
        sweep=(1, 2),
        churn_seconds=8.0,
    )
    assert [r.workload for r in report.results] == list(bench.WORKLOADS)
    assert all(r.ops > 0 and r.p99_ms >= r.p50_ms > 0 for r in report.results)
    assert set(report.ratios) == {
        "raw_hot/raw_update",
        "hb_same/raw_update",
        "hb_lease/raw_update",
        "hb_change/raw_update",
        "hb_same/client_txn",
        "reap_1000/reap_100",
        "storm_p99/idle_p99",
        "churn_reaped/opened",
    }
    assert report.reap_ms["100"] > 0 and report.reap_ms["1000"] > 0
    assert report.kill_removed_s is not None and 1.0 < report.kill_removed_s < 3.0 + 1.0 + 2.0
    assert report.churn_opened_per_s and report.churn_reaped_per_s is not None
    assert report.churn_kill_removed_s is not None and 1.0 < report.churn_kill_removed_s < 3.0 + 1.0 + 2.0
    assert report.watch_p50_ms is not None and report.watch_p99_ms is not None
    assert any(line.startswith("ratio hb_change/raw_update") for line in lines)
    path = f"{tmp_path}/bench.json"
    bench.write_json(report, path)
    assert '"hb_same/raw_update"' in Path(path).read_text()
    assert sorted((r.workload, r.clients) for r in report.sweep) == sorted(
        (w, n) for w in bench.SWEEP_WORKLOADS for n in (1, 2)
    )
    # hb_lease ran with lease_tick_ms = 0 and put the setting back
    assert _tick(db_url) == tick_before
    png = Path(f"{tmp_path}/bench.png")
    bench.write_chart(bench.read_json(path), str(png))  # the chart redraws from the JSON alone
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
