"""Run the Alembic migrations programmatically (``dsreg upgrade``, the tests, the demo)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import alembic.context
import alembic.op
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection

from dsreg_db.schema.sqlobjects import ROOT
from dsreg_db.schema.versions import VERSION_TABLE, canonical
from dsreg_db.urls import normalize


def config(root: Path = ROOT, output: io.StringIO | None = None) -> Config:
    cfg = Config(str(root / "alembic.ini"), output_buffer=output)
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["configure_logging"] = False
    return cfg


Target = str | URL | Connection


@contextmanager
def _outer_alembic_kept() -> Iterator[None]:
    """Called from an application's own env.py, our run must give its ``context``/``op`` back.

    Alembic keeps one module-level proxy per ``alembic.context`` and ``alembic.op``; our
    EnvironmentContext replaces the application's and deletes it on exit (measured: the
    application's ``context.configure`` then failed with ``KeyError: 'config'``).
    """
    outer = [getattr(module, "_proxy", None) for module in (alembic.context, alembic.op)]
    try:
        yield
    finally:
        for proxy in outer:
            if proxy is not None:
                proxy._install_proxy()


@contextmanager
def _connected(target: Target, definer: str | None, root: Path) -> Iterator[tuple[Config, Connection]]:
    if isinstance(target, Connection):  # the application's own (its env.py or deploy script)
        cfg = config(root)
        cfg.attributes["connection"] = target
        cfg.attributes["definer"] = definer
        with _outer_alembic_kept():
            yield cfg, target
        return
    engine = create_engine(normalize(target), poolclass=pool.NullPool)
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


def upgrade(
    target: Target,
    revision: str = "head",
    *,
    definer: str | None = None,
    root: Path = ROOT,
    on_applied: Callable[[str], None] | None = None,
) -> list[str]:
    """Upgrade under the migration lock; returns the revisions this call applied (none if another did).

    ``on_applied(revision)`` runs as soon as each revision is applied (``dsreg upgrade`` prints it).

    ``target`` is a URL or an open SQLAlchemy connection (e.g. the one an application's own
    env.py migrates with); DDL commits implicitly, and so does this call, on that connection.
    """
    with _connected(target, definer, root) as (cfg, _):
        cfg.attributes["on_applied"] = on_applied
        command.upgrade(cfg, canonical(revision))
        return list(cfg.attributes.get("applied", []))


def downgrade(target: Target, revision: str, *, definer: str | None = None, root: Path = ROOT) -> list[str]:
    with _connected(target, definer, root) as (cfg, _):
        command.downgrade(cfg, canonical(revision))
        return list(cfg.attributes.get("applied", []))


def offline_sql(revision_range: str = "head", *, definer: str | None = None, root: Path = ROOT) -> str:
    """The script ``alembic upgrade REVISION --sql`` prints, for the ``mysql``/``mariadb`` client."""
    output = io.StringIO()
    cfg = config(root, output)
    cfg.attributes["definer"] = definer
    command.upgrade(cfg, canonical(revision_range), sql=True)
    return output.getvalue()


def current(target: Target) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with _connected(target, None, ROOT) as (_, connection):
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        found = context.get_current_revision()
        return canonical(found) if found else None  # a bare 0005 is dsreg_0005 until the next upgrade


def head(root: Path = ROOT) -> str:
    found = ScriptDirectory.from_config(config(root)).get_current_head()
    assert found is not None
    return found
