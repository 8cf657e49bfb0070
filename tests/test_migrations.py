"""Migrations: up, down, up on one database; frozen revisions match sql/."""

from __future__ import annotations

import re

import pymysql

from dsreg_db.schema import migrate, sqlobjects
from dsreg_db.schema.revision import pending
from tests.conftest import ServerInfo
from tests.schemadump import dump, is_empty
from tests.sqlcall import query


def test_upgrade_downgrade_upgrade_same_database(server: ServerInfo, dbname: str, conn: pymysql.Connection) -> None:
    url = server.url(dbname)
    first = dump(conn, dbname)
    assert len(first["routines"]) == len(list((sqlobjects.SQL_DIR / "procedures").glob("*.sql")))
    assert [e[0] for e in first["events"]] == ["dsreg_compactor", "dsreg_reaper"]
    assert migrate.current(url) == migrate.head()

    migrate.downgrade(url, "base")
    assert migrate.current(url) is None
    emptied = dump(conn, dbname)
    assert is_empty(emptied), emptied
    leftovers = query(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", dbname)
    assert sorted(leftovers) == [("dsreg_alembic_version",), ("dsreg_migration_lock",)]  # bookkeeping, empty

    migrate.upgrade(url)
    again = dump(conn, dbname)
    assert again == first


def test_routines_keep_their_sql_mode_whatever_the_migrating_session_had(
    server: ServerInfo, dbname: str, conn: pymysql.Connection
) -> None:
    url = server.url(dbname)
    migrate.downgrade(url, "base")
    migrate.upgrade(url + "?init_command=SET+SESSION+sql_mode%3D%27%27")  # a lax session: sql_mode=''
    modes = {r[4] for r in dump(conn, dbname)["routines"]}
    assert [set(m.split(",")) for m in modes] == [set(sqlobjects.ROUTINE_SQL_MODE.split(","))]


def test_head_revision_matches_sql_dir() -> None:
    """Nobody edits sql/ without a migration: the newest frozen copy of every object equals sql/."""
    revisions = sqlobjects.revisions()
    for obj in sqlobjects.load(sqlobjects.SQL_DIR):
        latest = sqlobjects.latest_frozen(obj, revisions)
        assert latest is not None and latest.code() == obj.code(), f"{obj.key} changed in sql/ without a new revision"
    assert pending(sqlobjects.ROOT).removed == [], "a file removed from sql/ without a new revision"
    assert migrate.head() == revisions[-1]


def test_settings_rows_match_sql_dir(conn: pymysql.Connection) -> None:
    """sql/seeds/dsreg_setting.sql lists every setting the revisions insert, with its default."""
    (seed,) = [o for o in sqlobjects.load(sqlobjects.SQL_DIR) if o.key == "seeds/dsreg_setting"]
    seeds = re.findall(r"\('(\w+)', (\d+)\)", seed.statements()[0])
    assert sorted(query(conn, "SELECT name, value FROM dsreg_setting")) == sorted((n, int(v)) for n, v in seeds)
