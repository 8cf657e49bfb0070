"""Getting dsreg's schema into a database: migrations, their revisions, grants and the SQL reference.

For an application that has its own Alembic history in the same database::

    from dsreg_db.schema import include_name, upgrade

    upgrade(url_or_connection)                     # in a deploy script or the application's env.py
    context.configure(..., include_name=include_name)  # autogenerate leaves dsreg's tables alone

or, from the application's directory, ``alembic -c "$(dsreg alembic-ini)" -x url=... upgrade head``.
"""

from dsreg_db.schema.migrate import current, downgrade, head, upgrade
from dsreg_db.schema.versions import VERSION_TABLE, include_name, include_object

__all__ = ["VERSION_TABLE", "current", "downgrade", "head", "include_name", "include_object", "upgrade"]
