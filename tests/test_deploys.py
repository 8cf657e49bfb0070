"""Deploys: every revision step reversible, offline SQL == online, concurrent upgrades, upgrades under load,
and the revision command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dsreg_db import Registry, SessionState, migrate, sqlobjects
from dsreg_db.revision import RevisionError, pending, write
from dsreg_db.sqlobjects import ROOT
from tests.conftest import ServerInfo
from tests.schemadump import dump, is_empty


def _empty_db(server: ServerInfo, make_db: Callable[..., str]) -> str:
    return make_db(migrated=False)


def test_each_downgrade_step_restores_the_previous_dump(server: ServerInfo, make_db: Callable[..., str]) -> None:
    revisions = sqlobjects.revisions()
    assert len(revisions) >= 2
    reference = {}
    for rev in revisions:
        name = _empty_db(server, make_db)
        migrate.upgrade(server.url(name), rev)
        with server.connect(name) as c:
            reference[rev] = dump(c, name)
    assert reference[revisions[0]] != reference[revisions[-1]]
    name = _empty_db(server, make_db)
    url = server.url(name)
    with server.connect(name) as c:
        migrate.upgrade(url)
        assert dump(c, name) == reference[revisions[-1]]
        for previous in reversed(revisions[:-1]):
            migrate.downgrade(url, previous)
            assert dump(c, name) == reference[previous], f"downgrade to {previous}"
        migrate.downgrade(url, "base")
        assert is_empty(dump(c, name))
        migrate.upgrade(url)
        assert dump(c, name) == reference[revisions[-1]]


def test_offline_sql_builds_the_same_schema_as_online(server: ServerInfo, make_db: Callable[..., str]) -> None:
    script = migrate.offline_sql("head")
    assert "DELIMITER $$" in script and "CREATE PROCEDURE dsreg_heartbeat" in script
    offline = _empty_db(server, make_db)
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb/mysql command-line client is needed to apply an offline script"
    proc = subprocess.run(
        [
            client,
            f"--host={server.host}",
            f"--port={server.port}",
            f"--user={server.user}",
            *([f"--password={server.password}"] if server.password else []),
            offline,
        ],
        input=script,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    online = make_db()
    with server.connect(offline) as c1, server.connect(online) as c2:
        assert dump(c1, offline) == dump(c2, online)
    assert migrate.current(server.url(offline)) == migrate.head()
    # a range renders the later revisions only
    partial = migrate.offline_sql(f"{sqlobjects.revisions()[0]}:head")
    assert "CREATE TABLE dsreg_session" not in partial and "DROP PROCEDURE IF EXISTS dsreg_heartbeat" in partial


def test_four_concurrent_upgrades_apply_each_revision_once(server: ServerInfo, make_db: Callable[..., str]) -> None:
    name = _empty_db(server, make_db)
    url = server.url(name)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dsreg_db.cli", "upgrade", "--url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    applied = [
        rev for out, _ in outputs for rev in out.split("applied ")[1].split(";")[0].split(", ") if rev != "nothing"
    ]
    assert sorted(applied) == sqlobjects.revisions(), outputs  # each exactly once, whoever did it
    reference = make_db()
    with server.connect(name) as c1, server.connect(reference) as c2:
        assert dump(c1, name) == dump(c2, reference)


def test_online_upgrade_under_heartbeat_load(server: ServerInfo, make_db: Callable[..., str]) -> None:
    """50 sessions heartbeat while an upgrade replaces dsreg_heartbeat (DROP + CREATE): nothing fails, nobody lost."""
    revisions = sqlobjects.revisions()
    name = _empty_db(server, make_db)
    url = server.url(name)
    migrate.upgrade(url, revisions[-2])
    calls = 0
    failures: list[BaseException] = []
    transitions: list[SessionState] = []
    stop = threading.Event()
    with Registry(url) as registry:
        sessions = [registry.session(f"w{i}", ttl=3.0, interval=0.25) for i in range(50)]
        for i, s in enumerate(sessions):
            s.add_listener(transitions.append)
            s.register(f"/nodes/worker/w{i}", "0")

        def hammer(k: int) -> None:  # application calls, as fast as they go
            nonlocal calls
            n = 0
            while not stop.is_set():
                try:
                    sessions[k].register(f"/nodes/worker/w{k}", str(n % 3))
                    calls += 1
                except BaseException as exc:
                    failures.append(exc)
                n += 1

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        applied = migrate.upgrade(url)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        ids = {s.id for s in sessions}
        children = registry.children("/nodes/worker")
        retries = dict(registry.client.retries)
    print(f"online upgrade: {calls} application calls, {len(failures)} failed, retries by errno {retries}")
    assert applied == [revisions[-1]]
    assert failures == []
    assert [t for t in transitions if t is not SessionState.CLOSED] == []  # no SUSPENDED, no LOST
    assert len(ids) == 50 and len(children) == 50
    assert calls > 200


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for part in ("sql", "migrations"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    return tmp_path


def test_revision_command_freezes_changed_objects(
    repo_copy: Path, server: ServerInfo, make_db: Callable[..., str]
) -> None:
    with pytest.raises(RevisionError, match="nothing to freeze"):
        write(repo_copy, "nothing")
    target = repo_copy / "sql" / "procedures" / "dsreg_get.sql"
    target.write_text(target.read_text().replace("FROM dsreg_node WHERE", "FROM dsreg_node /* v2 */ WHERE"))
    assert [o.key for o in pending(repo_copy).changed] == ["procedures/dsreg_get"]
    new_id, keys = write(repo_copy, "get: a comment")
    assert keys == ["procedures/dsreg_get"]
    assert new_id == f"{int(sqlobjects.revisions()[-1]) + 1:04d}"
    assert (
        repo_copy / "migrations" / "frozen" / new_id / "procedures" / "dsreg_get.sql"
    ).read_text() == target.read_text()
    assert pending(repo_copy).changed == []
    assert migrate.head(repo_copy) == new_id
    # the new revision applies and reverts
    name = make_db()
    url = server.url(name)
    migrate.upgrade(url, root=repo_copy)
    with server.connect(name) as c:
        body = next(r for r in dump(c, name)["routines"] if r[0] == "dsreg_get")[2]
        assert "/* v2 */" in body
        migrate.downgrade(url, sqlobjects.revisions()[-1], root=repo_copy)
        body = next(r for r in dump(c, name)["routines"] if r[0] == "dsreg_get")[2]
        assert "/* v2 */" not in body
    # a table change is refused
    table = repo_copy / "sql" / "tables" / "dsreg_lock.sql"
    table.write_text(table.read_text().replace("acquired_at DATETIME(6)", "acquired_at DATETIME(3)"))
    with pytest.raises(RevisionError, match="hand-written ALTER"):
        write(repo_copy, "table")
