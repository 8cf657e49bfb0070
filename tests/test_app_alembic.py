"""dsreg's migrations beside an application's own Alembic history in the same database.

The application here is a small Alembic project made in a temp directory: its own
``alembic.ini``, an ``env.py`` with its metadata (table ``app_order``) and its own
revision ``0001`` -- the id dsreg's first revision had before the ``dsreg_`` prefix.
Both routes of the README are run, in either order, with the real ``alembic`` command:

* route (a): the application's env.py calls ``dsreg_db.schema.upgrade(connection)``;
* route (b): ``alembic -c "$(dsreg alembic-ini)" -x url=... upgrade head`` from its directory.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dsreg_db.schema import VERSION_TABLE, head
from tests.conftest import ServerInfo

APP_ENV = """
from alembic import context
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, pool

import dsreg_db.schema

metadata = MetaData()
Table("app_order", metadata, Column("id", Integer, primary_key=True), Column("item", String(40)))

url = context.get_x_argument(as_dictionary=True)["url"]
options = context.get_x_argument(as_dictionary=True)
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    if options.get("with_dsreg") == "1":
        dsreg_db.schema.upgrade(connection)  # route (a): one call, dsreg's own history
    kwargs = {} if options.get("filter") == "0" else {"include_name": dsreg_db.schema.include_name}
    context.configure(connection=connection, target_metadata=metadata, **kwargs)
    with context.begin_transaction():
        context.run_migrations()
"""

APP_REVISION = '''"""the application's first table

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("app_order", sa.Column("id", sa.Integer, primary_key=True), sa.Column("item", sa.String(40)))


def downgrade() -> None:
    op.drop_table("app_order")
'''

APP_INI = """[alembic]
script_location = %(here)s/app_migrations
"""


def _app(tmp_path: Path) -> Path:
    project = tmp_path / "app"
    (project / "app_migrations" / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text(APP_INI)
    (project / "app_migrations" / "env.py").write_text(APP_ENV)
    (project / "app_migrations" / "script.py.mako").write_text(_MAKO)
    (project / "app_migrations" / "versions" / "0001_app_order.py").write_text(APP_REVISION)
    return project


_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def _run(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _alembic(cwd: Path, *args: str) -> str:
    return _run(cwd, sys.executable, "-m", "alembic", *args)


def _dsreg(cwd: Path, *args: str) -> str:
    return _run(cwd, sys.executable, "-m", "dsreg_db.cli", *args)


def _versions(server: ServerInfo, db: str) -> dict[str, list[str]]:
    with server.connect(db) as conn, conn.cursor() as cur:
        out = {}
        for table in ("alembic_version", VERSION_TABLE):
            cur.execute(f"SELECT version_num FROM {table}")
            out[table] = sorted(r[0] for r in cur.fetchall())
        return out


def _autogenerate(project: Path, url: str, *extra: str) -> str:
    """The body of the revision the application's autogenerate writes (then removed again)."""
    before = set((project / "app_migrations" / "versions").glob("*.py"))
    _alembic(project, "-x", f"url={url}", *extra, "revision", "--autogenerate", "-m", "check")
    (new,) = set((project / "app_migrations" / "versions").glob("*.py")) - before
    text = new.read_text()
    new.unlink()
    return text


@pytest.mark.parametrize("dsreg_first", [True, False], ids=["dsreg-first", "app-first"])
@pytest.mark.parametrize("route", ["env-py-call", "alembic-ini"])
def test_two_histories_in_one_database(
    tmp_path: Path, server: ServerInfo, make_db: Callable[..., str], route: str, dsreg_first: bool
) -> None:
    db = make_db(migrated=False)
    url = server.url(db)
    project = _app(tmp_path)
    dsreg_ini = _dsreg(project, "alembic-ini").strip()
    assert Path(dsreg_ini).is_file()

    def dsreg_upgrade() -> None:
        if route == "env-py-call":
            return  # the application's env.py does it on every `alembic upgrade` (with_dsreg=1)
        _alembic(project, "-c", dsreg_ini, "-x", f"url={url}", "upgrade", "head")

    app_args = ["-x", "with_dsreg=1"] if route == "env-py-call" else []
    if dsreg_first:
        dsreg_upgrade()
    _alembic(project, "-x", f"url={url}", *app_args, "upgrade", "head")
    if not dsreg_first:
        dsreg_upgrade()
    _alembic(project, "-x", f"url={url}", *app_args, "upgrade", "head")  # again: nothing to do, no error

    # each history in its own table, neither touched by the other; app's 0001 beside dsreg's ids
    assert _versions(server, db) == {"alembic_version": ["0001"], VERSION_TABLE: [head()]}

    # the application's autogenerate sees no dsreg object (and nothing else: its model matches)
    script = _autogenerate(project, url)
    assert "dsreg" not in script.split('"""', 2)[2], script
    assert "op.drop_table" not in script and "op.create_table" not in script, script
    # the same autogenerate without the filter proposes dropping every dsreg table: the check above can fail
    unfiltered = _autogenerate(project, url, "-x", "filter=0")
    assert unfiltered.count("op.drop_table('dsreg_") >= 10, unfiltered

    assert "[FAIL]" not in _dsreg(project, "doctor", "--url", url)
    assert _dsreg(project, "current", "--url", url).split() == ["current:", head(), "head:", head()]


def test_a_database_migrated_before_the_prefix_is_adopted(
    server: ServerInfo, make_db: Callable[..., str], tmp_path: Path
) -> None:
    """Databases at a bare ``0005`` (before ids had the ``dsreg_`` prefix) upgrade normally."""
    db = make_db(migrated=False)
    url = server.url(db)
    _dsreg(tmp_path, "upgrade", "--url", url, "0005")  # a bare id still names the revision
    with server.connect(db) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {VERSION_TABLE} SET version_num = '0005'")  # as revision 0005 of old wrote it
    assert _dsreg(tmp_path, "current", "--url", url).split()[1] == "dsreg_0005"
    script = _dsreg(tmp_path, "upgrade", "--sql", "0005:head")
    assert script.index("CONCAT('dsreg_', version_num)") < script.index("DROP PROCEDURE")  # adopted first
    out = _dsreg(tmp_path, "upgrade", "--url", url)
    assert "dsreg_0006" in out
    with server.connect(db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT version_num FROM {VERSION_TABLE}")
        assert cur.fetchall() == ((head(),),)
        # revision 0006's column exists: its upgrade really ran, not only the version row
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'dsreg_session' AND COLUMN_NAME = 'account'"
        )
        assert cur.fetchone() == (1,)
