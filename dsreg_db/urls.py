"""Database URLs: accept what people type, hand SQLAlchemy the PyMySQL driver."""

from __future__ import annotations

import os
import re
from typing import Any

from sqlalchemy.engine import URL, make_url

from dsreg_db.errors import NoUrl

ENV_URL = "DSREG_URL"


_MULTI = re.compile(r"^(?P<head>[^:/]+://(?:[^@/]*@)?)(?P<hosts>[^/?]+)(?P<tail>.*)$")


def split_hosts(url: str | URL) -> tuple[str | URL, list[tuple[str, int]]]:
    """``mysql://u@h1:3306,h2:3307/db`` -> (the URL with h1 only, [(h1, 3306), (h2, 3307)]).

    Several hosts name the nodes of one Galera / InnoDB Cluster: the client
    (dsreg_db.client.Client) starts from a random one, keeps to the last that
    answered, and moves to the next when a connection fails.
    """
    if not isinstance(url, str):
        return url, []
    m = _MULTI.match(url)
    if m is None or "," not in m.group("hosts"):
        return url, []
    hosts = []
    for item in m.group("hosts").split(","):
        host, _, port = item.partition(":")
        hosts.append((host, int(port or 3306)))
    first = f"{hosts[0][0]}:{hosts[0][1]}"
    return m.group("head") + first + m.group("tail"), hosts


def normalize(url: str | URL) -> URL:
    """``mysql://``, ``mariadb://`` and ``mysql+pymysql://`` all mean PyMySQL."""
    parsed = make_url(split_hosts(url)[0])
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+pymysql")
    else:
        raise NoUrl(f"not a MySQL/MariaDB URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def for_host(url: str | URL, host: str, port: int) -> URL:
    """The URL (one host or several) pointed at one host: ``mysql://u@h1,h2/db`` -> ``mysql+pymysql://u@host:port/db``."""
    return normalize(url).set(host=host, port=port)


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
