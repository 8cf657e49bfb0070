"""Alembic environment for dsreg-db.

URL: ``-x url=...``, else ``$DSREG_URL``, else a connection handed in by
``dsreg_db.migrate`` (config.attributes["connection"]). The version table is
``dsreg_alembic_version`` so it never collides with an application's own
Alembic history in the same database.

Definer of the procedures and events: ``-x definer=user@host``, else
``$DSREG_DEFINER``, else ``config.attributes["definer"]``, else the
migrating account (see README, "Grants").
"""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from dsreg_db.urls import from_env

VERSION_TABLE = "dsreg_alembic_version"

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)


def _definer() -> str | None:
    explicit = context.get_x_argument(as_dictionary=True).get("definer")
    return explicit or os.environ.get("DSREG_DEFINER") or config.attributes.get("definer")


def _url() -> str:
    explicit = context.get_x_argument(as_dictionary=True).get("url")
    return from_env(explicit).render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, version_table=VERSION_TABLE, dsreg_definer=_definer())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, version_table=VERSION_TABLE, dsreg_definer=_definer())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE, dsreg_definer=_definer())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
