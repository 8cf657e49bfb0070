"""Run the Alembic migrations programmatically (``dsreg upgrade``, the tests, the demo)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection

from dsreg_db.sqlobjects import ROOT
from dsreg_db.urls import normalize

VERSION_TABLE = "dsreg_alembic_version"


def config(root: Path = ROOT, output: io.StringIO | None = None) -> Config:
    cfg = Config(str(root / "alembic.ini"), output_buffer=output)
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["configure_logging"] = False
    return cfg


@contextmanager
def _connected(url: str | URL, definer: str | None, root: Path) -> Iterator[tuple[Config, Connection]]:
    engine = create_engine(normalize(url), poolclass=pool.NullPool)
    try:
        # connect(), not begin(): Alembic's own transaction then commits inside env.py's
        # migration lock. Under an outer begin() the last version-table UPDATE committed
        # only after the lock was released, and a waiting migrator re-applied that revision
        # (measured: 1062 on revision 0004's settings row, one of four concurrent upgrades).
        with engine.connect() as connection:
            cfg = config(root)
            cfg.attributes["connection"] = connection
            cfg.attributes["definer"] = definer
            yield cfg, connection
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head", *, definer: str | None = None, root: Path = ROOT) -> list[str]:
    """Upgrade under the migration lock; returns the revisions this call applied (none if another did)."""
    with _connected(url, definer, root) as (cfg, _):
        command.upgrade(cfg, revision)
        return list(cfg.attributes.get("applied", []))


def downgrade(url: str | URL, revision: str, *, definer: str | None = None, root: Path = ROOT) -> list[str]:
    with _connected(url, definer, root) as (cfg, _):
        command.downgrade(cfg, revision)
        return list(cfg.attributes.get("applied", []))


def offline_sql(revision_range: str = "head", *, definer: str | None = None, root: Path = ROOT) -> str:
    """The script ``alembic upgrade REVISION --sql`` prints, for the ``mysql``/``mariadb`` client."""
    output = io.StringIO()
    cfg = config(root, output)
    cfg.attributes["definer"] = definer
    command.upgrade(cfg, revision_range, sql=True)
    return output.getvalue()


def current(url: str | URL) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with _connected(url, None, ROOT) as (_, connection):
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head(root: Path = ROOT) -> str:
    found = ScriptDirectory.from_config(config(root)).get_current_head()
    assert found is not None
    return found
