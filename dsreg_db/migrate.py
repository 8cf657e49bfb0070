"""Run the Alembic migrations programmatically (``dsreg upgrade`` and the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection

from dsreg_db.sqlobjects import ROOT
from dsreg_db.urls import normalize

VERSION_TABLE = "dsreg_alembic_version"


def config() -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["configure_logging"] = False
    return cfg


@contextmanager
def _connected(url: str | URL, definer: str | None = None) -> Iterator[tuple[Config, Connection]]:
    engine = create_engine(normalize(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            cfg = config()
            cfg.attributes["connection"] = connection
            cfg.attributes["definer"] = definer
            yield cfg, connection
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head", *, definer: str | None = None) -> None:
    with _connected(url, definer) as (cfg, _):
        command.upgrade(cfg, revision)


def downgrade(url: str | URL, revision: str, *, definer: str | None = None) -> None:
    with _connected(url, definer) as (cfg, _):
        command.downgrade(cfg, revision)


def current(url: str | URL) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with _connected(url) as (_, connection):
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head() -> str:
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None
    return found
