"""PyMySQL connections that share one TLS context.

PyMySQL 1.2 tries TLS on every connection by default ("preferred": encrypt if
the server offers it, verify nothing) and builds a new ``SSLContext`` for each
one. Loading the default CA store holds the GIL for 15-55 ms, so 40 pooled
connections opened at once (a client starting 50 sessions) took 1.0-1.2 s
each on this project's CI machine, and every keepalive waiting for one of them
missed its deadline (measured: all 50 sessions SUSPENDED within 2 s of start).
The context is the same for every such connection, so it is built once per
process and shared (an ``SSLContext`` is safe to share between threads).
Explicit TLS options (``ssl_ca``, ``ssl=...``) still get their own context.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pymysql.connections

_lock = threading.Lock()
_preferred: ssl.SSLContext | None = None


class Connection(pymysql.connections.Connection):
    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        global _preferred
        pymysql_own: Any = super()  # the stubs leave the private builder out
        if not (isinstance(sslp, dict) and not sslp):  # explicit options: as PyMySQL does
            return pymysql_own._create_ssl_ctx(sslp)  # type: ignore[no-any-return]
        with _lock:
            if _preferred is None:
                _preferred = pymysql_own._create_ssl_ctx(sslp)
            return _preferred


def connect(*args: Any, **kwargs: Any) -> Connection:
    """``pymysql.connect`` with the shared TLS context."""
    return Connection(*args, **kwargs)
