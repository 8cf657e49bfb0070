"""Database URLs: accept what people type, hand SQLAlchemy the PyMySQL driver."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import URL, make_url

ENV_URL = "DSREG_URL"


class NoUrl(ValueError):
    """No database URL was given."""


def normalize(url: str | URL) -> URL:
    """``mysql://``, ``mariadb://`` and ``mysql+pymysql://`` all mean PyMySQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+pymysql")
    else:
        raise NoUrl(f"not a MySQL/MariaDB URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def from_env(url: str | None = None) -> URL:
    """The explicit URL, else ``$DSREG_URL``."""
    chosen = url or os.environ.get(ENV_URL)
    if not chosen:
        raise NoUrl(f"no database URL: pass --url or set {ENV_URL}")
    return normalize(chosen)


def pymysql_params(url: str | URL) -> dict[str, Any]:
    """Keyword arguments for ``pymysql.connect`` (the load generators use raw connections)."""
    u = normalize(url)
    return {
        "host": u.host or "127.0.0.1",
        "port": u.port or 3306,
        "user": u.username or "root",
        "password": u.password or "",
        "database": u.database,
    }
