"""Alembic environment for dsreg-db.

URL: ``-x url=...``, else ``$DSREG_URL``, else a connection handed in by
``dsreg_db.schema.migrate`` (config.attributes["connection"]). The version
table is ``dsreg_alembic_version`` and revision ids start with ``dsreg_``, so
this history never collides with an application's own Alembic history in the
same database (see ``dsreg_db.schema.versions``).

Definer of the procedures and events: ``-x definer=user@host``, else
``$DSREG_DEFINER``, else ``config.attributes["definer"]``, else the
migrating account (see README, "Grants").
"""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from dsreg_db.schema.migration_lock import migration_lock
from dsreg_db.schema.versions import LEGACY_UPDATE, VERSION_TABLE, adopt_legacy_ids
from dsreg_db.urls import from_env

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)


def _definer() -> str | None:
    explicit = context.get_x_argument(as_dictionary=True).get("definer")
    return explicit or os.environ.get("DSREG_DEFINER") or config.attributes.get("definer")


def _url() -> str:
    explicit = context.get_x_argument(as_dictionary=True).get("url")
    return from_env(explicit).render_as_string(hide_password=False)


def _record(ctx: object, step: object, heads: object, run_args: object) -> None:
    """Which revisions this run applied (``dsreg upgrade`` prints them)."""
    config.attributes.setdefault("applied", []).append(getattr(step, "up_revision_id", None) or "?")
    if config.attributes.get("on_applied") is not None:  # dsreg upgrade: a line per revision as it lands
        config.attributes["on_applied"](config.attributes["applied"][-1])


def run_migrations_offline() -> None:
    """``--sql``: no connection; the URL only picks the dialect."""
    explicit = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DSREG_URL")
    url = from_env(explicit).render_as_string(hide_password=False) if explicit else "mysql+pymysql://localhost/"
    context.configure(url=url, literal_binds=True, version_table=VERSION_TABLE, dsreg_definer=_definer())
    with context.begin_transaction():
        if context.get_starting_revision_argument() not in (None, "base"):
            context.execute(LEGACY_UPDATE)  # a database migrated before the dsreg_ prefix
        context.run_migrations()


def _run(connection: Connection) -> None:
    # one migrator at a time: several hosts may run `dsreg upgrade` at once during a deploy
    with migration_lock(connection.engine):
        if adopt_legacy_ids(connection):  # a database migrated before the dsreg_ prefix
            connection.commit()
        context.configure(
            connection=connection, version_table=VERSION_TABLE, dsreg_definer=_definer(), on_version_apply=_record
        )
        with context.begin_transaction():
            context.run_migrations()
        # commit before the lock goes: a migrator that takes it next must see our version row
        if connection.in_transaction():
            connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
