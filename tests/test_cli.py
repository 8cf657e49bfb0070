"""Every CLI command once, against a real database; errors are one line, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dsreg_db import Registry
from dsreg_db.cli import main
from dsreg_db.schema import migrate
from tests.conftest import ServerInfo


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_schema_commands(server: ServerInfo, dbname: str) -> None:
    url = server.url(dbname)
    assert f"current: {migrate.head()}" in run("current", "--url", url)
    assert "at revision base" in run("downgrade", "--url", url, "base")
    assert "current: base" in run("current", "--url", url)
    assert f"at revision {migrate.head()}" in run("upgrade", "--url", url)


def test_node_commands(db_url: str) -> None:
    run("put", "--url", db_url, "/config/a b", "hello")
    run("put", "--url", db_url, "/config/c", "x")
    assert run("ls", "--url", db_url, "/config").splitlines() == ["a b", "c"]
    assert run("ls", "--url", db_url).splitlines() == ["config"]
    assert run("get", "--url", db_url, "/config/a b") == "hello\n"
    node = json.loads(run("get", "--url", db_url, "--json", "/config/c"))
    assert node["value"] == "x" and node["ephemeral"] is False and node["version"] == 1
    run("rm", "--url", db_url, "/config/c")
    assert "no node at /config/c" in run("get", "--url", db_url, "/config/c", code=1)


def test_status_reap_metrics_doctor(db_url: str) -> None:
    with Registry(db_url) as registry, registry.session("host-1:5678", ttl=5) as session:
        session.register("/nodes/master/host-1:5678", '{"cpu":0.1}')
        text = run("status", "--url", db_url)
        assert "host-1:5678" in text and "└── nodes" in text and "reaper: last run" in text
        state = json.loads(run("status", "--url", db_url, "--json"))
        assert [s["owner"] for s in state["sessions"]] == ["host-1:5678"]
        assert state["nodes"][0]["path"] == "/nodes/master/host-1:5678"
        assert "reaped 0 session(s)" in run("reap", "--url", db_url)
        metrics = run("metrics", "--url", db_url)
        assert re.search(r"^dsreg_sessions_live 1\.0$", metrics, re.M)
        assert re.search(r'^dsreg_nodes\{kind="ephemeral"\} 1\.0$', metrics, re.M)
        assert re.search(r"^dsreg_reaper_last_run_age_seconds \d", metrics, re.M)
        assert "# TYPE dsreg_sessions_expired_total counter" in metrics
    doctor = run("doctor", "--url", db_url)
    assert re.search(r"\[  ok\] event scheduler: ON", doctor)
    assert re.search(r"\[  ok\] schema: revision \w+, head", doctor)
    checks = json.loads(run("doctor", "--url", db_url, "--json"))
    assert {c["name"] for c in checks} >= {"server version", "event scheduler", "time zone", "binary log", "schema"}


def test_doctor_fails_when_event_scheduler_is_off() -> None:
    from dsreg_db.testing.server import LocalServer

    with LocalServer(event_scheduler=False) as server:
        url = server.create_database("doc")
        migrate.upgrade(url)
        out = run("doctor", "--url", url, code=1)
        assert re.search(r"\[FAIL\] event scheduler: OFF", out)


def test_errors_are_one_line_without_traceback(db_url: str) -> None:
    for args, code, message in (
        (["get", "--url", db_url, "no-slash"], 1, "[45002] p_path: must be /-separated"),
        (["ls", "--url", "mysql://root@127.0.0.1:1/x"], 1, "database unavailable"),
        (["get"], 2, "Missing argument"),
        (["put", "--url", db_url, "/x", "y" * 70000], 1, "[45002] p_value"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "dsreg_db.cli", *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=60,
        )
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        if code == 1:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_no_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSREG_URL", raising=False)
    assert "no database URL" in run("ls", code=1)


def test_demo_on_a_throwaway_server() -> None:
    proc = subprocess.run([sys.executable, "-m", "dsreg_db.cli", "demo"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("10.0.1.3:1234") == 3  # in the first tree, killed, dropped (then gone from the second tree)
    detection = float(re.search(r"detection time: ([\d.]+) s", out).group(1))  # type: ignore[union-attr]
    # lease 3 s after the last beat (<= 1 s before the kill) plus the reaper's 1 s period, plus slack
    assert 1.5 < detection < 3.0 + 1.0 + 1.0, out
    assert "5 of the other 5 nodes kept their sessions" in out
    assert "throwaway server stopped and removed" in out


def test_malformed_account_is_a_one_line_usage_error() -> None:
    """Tried: quotes inside the account (as in SQL: app@'%'), no host, a quoted definer."""
    for args in (["grant", "app@'%'"], ["grant", "--definer", "nohost"], ["upgrade", "--definer", "o@'x'"]):
        result = CliRunner().invoke(main, [*args, "--url", "mysql://u@127.0.0.1:1/db"])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and "not an account of the form user@host" in result.output


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"dsreg, version {version('dsreg-db')}"
