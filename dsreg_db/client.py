"""Typed calls of the public SQL API, with retries where they are safe.

One :class:`Client` per process is enough: it owns a SQLAlchemy engine (PyMySQL,
autocommit, pre-ping) and every method is one ``CALL`` on a pooled
connection. Each procedure runs its own transaction on the server.

Retry rules (tenacity, exponential backoff with jitter, bounded by
``retry_seconds``):

* errors after which the server has certainly rolled the call back -- a
  deadlock or Galera certification conflict (1213; 3101 on MySQL Group
  Replication), a lock wait timeout
  (1205), a routine briefly missing during an online upgrade (1305), a node
  not ready (1047), no connection at all (2003) -- are retried for every call;
* but a dsreg routine missing for longer than ``routine_retry_seconds`` (2 s),
  or a dsreg table missing at all (1146), means the schema was never migrated
  or is older than this package: :class:`SchemaMissing`, not ``Unavailable``;
* a connection lost in the middle of a call (2006, 2013, ...) leaves the
  outcome unknown, so only idempotent calls are retried then. Opening a
  session, closing one and releasing a lock are not: their callers decide.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from dsreg_db import driver
from dsreg_db.errors import Unavailable, schema_missing, translate
from dsreg_db.urls import ENV_URL, from_env, normalize, split_hosts

log = logging.getLogger(__name__)

#: the server rolled the call back (or never ran it): retrying cannot apply it twice.
#: 1305/1370: during an upgrade a routine is briefly missing, then briefly not yet re-granted
ROLLED_BACK = frozenset({1205, 1213, 3101, 1305, 1370, 1047, 1053, 1927, 2003})
#: the connection broke mid-call: the outcome is unknown
LOST = frozenset({2006, 2013, 2014, 2055, 4031})
#: the server answered, it just could not do the call yet (a lock wait, a conflict, a routine being replaced):
#: the connection is fine, so a keepalive failing this way does not by itself mean SUSPENDED
ANSWERED = frozenset({1205, 1213, 3101, 1305, 1370, 1146})

T = TypeVar("T")


@dataclass(frozen=True)
class Node:
    path: str
    value: str
    ephemeral: bool
    session_id: int | None
    version: int
    create_rev: int
    mod_rev: int


@dataclass(frozen=True)
class Event:
    rev: int
    kind: str  # ADD, UPDATE or DELETE
    path: str
    value: str
    session_id: int | None


@dataclass(frozen=True)
class Contender:
    """A session holding or queued for a lock (``dsreg_lock_contenders``): the holder has a fence, a waiter a
    ticket (its place in a fair lock's queue)."""

    session_id: int
    owner: str
    fence: int | None
    ticket: int | None
    since: datetime.datetime


def _node(row: tuple[Any, ...]) -> Node:
    path, value, ephemeral, session_id, version, create_rev, mod_rev = row
    return Node(path, value, bool(ephemeral), session_id, int(version), int(create_rev), int(mod_rev))


def server_answered(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error behind it) is an answer of a reachable server, not a lost link."""
    cause: BaseException | None = exc
    while cause is not None:
        if _errno(cause) in ANSWERED:
            return True
        cause = cause.__cause__
    return False


def _errno(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_transient(exc: BaseException, idempotent: bool) -> bool:
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    errno = _errno(exc)
    if errno in ROLLED_BACK:
        return True
    return idempotent and (errno in LOST or exc.connection_invalidated)


class Client:
    """Low-level access to the dsreg procedures of one database."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        retry_seconds: float = 10.0,
        pool_size: int = 8,
        connect_timeout: int = 5,
        read_timeout: int = 30,
        routine_retry_seconds: float = 2.0,
    ) -> None:
        raw = url if url is not None else os.environ.get(ENV_URL)
        self.url = from_env(url) if url is None or isinstance(url, str) else normalize(url)
        self.hosts = split_hosts(raw)[1] if isinstance(raw, str) else []
        self.retry_seconds = retry_seconds
        #: how long a missing dsreg routine (1305, e.g. mid DROP + CREATE of an upgrade) is retried
        self.routine_retry_seconds = routine_retry_seconds
        #: retries so far by MySQL error number (1213 = deadlock or Galera certification conflict)
        self.retries: Counter[int] = Counter()
        self.engine = create_engine(
            self.url,
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=True,
            pool_reset_on_return=None,
            pool_size=pool_size,
            max_overflow=pool_size * 4,
            pool_recycle=3600,
            connect_args={
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
                "write_timeout": read_timeout,
            },
        )
        #: the node new connections try first (a multi-host URL): random at start, then the last one that answered
        self._preferred = random.randrange(len(self.hosts)) if self.hosts else 0
        event.listen(self.engine, "do_connect", self._connect)

    def _connect(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        """A new pooled connection (:mod:`dsreg_db.driver`: one TLS context for all); with several hosts, to the
        preferred one, else to the next that answers."""
        if len(self.hosts) <= 1:
            return driver.connect(*cargs, **cparams)
        failure: BaseException | None = None
        for k in range(len(self.hosts)):
            index = (self._preferred + k) % len(self.hosts)
            host, port = self.hosts[index]
            try:
                conn = driver.connect(*cargs, **{**cparams, "host": host, "port": port})
            except dialect.dbapi.OperationalError as exc:
                failure = exc
                continue
            if index != self._preferred:
                log.warning("connected to %s:%s instead of %s:%s", host, port, *self.hosts[self._preferred])
                self._preferred = index
            return conn
        assert failure is not None
        raise failure

    def dispose(self) -> None:
        self.engine.dispose()

    # -- plumbing ------------------------------------------------------
    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        errno = _errno(exc) if exc is not None else None
        self.retries[errno or 0] += 1
        log.debug("retrying after error %s", errno)

    def _stop(self, budget: float) -> Callable[[RetryCallState], bool]:
        """Stop after ``budget`` seconds, or once a dsreg routine has been missing for ``routine_retry_seconds``."""
        overall = stop_after_delay(budget)
        missing_since: float | None = None

        def stop(state: RetryCallState) -> bool:
            nonlocal missing_since
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None and schema_missing(exc) is not None:
                if missing_since is None:
                    missing_since = time.monotonic()
                if time.monotonic() - missing_since >= self.routine_retry_seconds:
                    return True
            return overall(state)

        return stop

    def run(self, work: Callable[[Connection], T], *, idempotent: bool = True, retry_seconds: float | None = None) -> T:
        """Run ``work`` on a pooled connection, retrying transient failures for ``retry_seconds`` (default: the
        client's). The keepalive passes a short budget: its caller wants to know at once that the server is gone."""
        retrying = Retrying(
            stop=self._stop(self.retry_seconds if retry_seconds is None else retry_seconds),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception(lambda exc: is_transient(exc, idempotent)),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self.engine.connect() as conn:
                    return work(conn)
        except sqlalchemy.exc.DBAPIError as exc:
            translated = translate(exc)
            if translated is not exc:
                raise translated from None
            missing = schema_missing(exc)
            if missing is not None:
                raise missing from exc
            if is_transient(exc, True):
                raise Unavailable(f"database unavailable: {exc.orig}") from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        procedure: str,
        args: Sequence[Any] = (),
        *,
        out: int = 0,
        idempotent: bool = True,
        retry_seconds: float | None = None,
    ) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
        """``CALL procedure(args..., @out0, ...)``: its result set and OUT values."""
        holders = ["%s"] * len(args) + [f"@dsreg_out{i}" for i in range(out)]
        sql = f"CALL {procedure}({', '.join(holders)})"

        def work(conn: Connection) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
            result = conn.exec_driver_sql(sql, tuple(args))
            rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
            result.close()
            outs: tuple[Any, ...] = ()
            if out:
                selected = ", ".join(f"@dsreg_out{i}" for i in range(out))
                outs = tuple(conn.exec_driver_sql(f"SELECT {selected}").one())
            return rows, outs

        return self.run(work, idempotent=idempotent, retry_seconds=retry_seconds)

    # -- sessions ------------------------------------------------------
    def session_open(self, owner: str, ttl_ms: int) -> tuple[int, str]:
        _, (session_id, token) = self.call("dsreg_session_open", (owner, ttl_ms), out=2, idempotent=False)
        return int(session_id), str(token)

    def session_keepalive(self, session_id: int, token: str, *, retry_seconds: float | None = None) -> None:
        self.call("dsreg_session_keepalive", (session_id, token), retry_seconds=retry_seconds)

    def session_close(self, session_id: int, token: str) -> None:
        self.call("dsreg_session_close", (session_id, token), idempotent=False)

    def heartbeat(
        self, session_id: int, token: str, path: str, value: str, *, retry_seconds: float | None = None
    ) -> None:
        self.call("dsreg_heartbeat", (session_id, token, path, value), retry_seconds=retry_seconds)

    # -- nodes ---------------------------------------------------------
    def put(self, session_id: int | None, token: str | None, path: str, value: str) -> None:
        self.call("dsreg_put", (session_id, token, path, value))

    def get(self, path: str) -> Node | None:
        rows, _ = self.call("dsreg_get", (path,))
        return _node(rows[0]) if rows else None

    def list_nodes(self, prefix: str) -> tuple[int, list[Node]]:
        """Every node at ``prefix`` and below, and a revision the listing is at least as new as."""
        rows, (rev,) = self.call("dsreg_list", (prefix,), out=1)
        return int(rev), [_node(r) for r in rows]

    def children(self, path: str) -> list[str]:
        rows, _ = self.call("dsreg_children", (path,))
        return [r[0] for r in rows]

    def delete(self, session_id: int | None, token: str | None, path: str) -> None:
        self.call("dsreg_delete", (session_id, token, path))

    # -- locks ---------------------------------------------------------
    def lock_acquire(self, session_id: int, token: str, name: str) -> int | None:
        _, (fence,) = self.call("dsreg_lock_acquire", (session_id, token, name), out=1)
        return None if fence is None else int(fence)

    def lock_acquire_fair(self, session_id: int, token: str, name: str) -> tuple[int | None, int]:
        """One poll of a fair lock: (fence, 0) when taken, else (None, how many are before this session)."""
        _, (fence, ahead) = self.call("dsreg_lock_acquire_fair", (session_id, token, name), out=2)
        return (None if fence is None else int(fence)), int(ahead)

    def lock_dequeue(self, session_id: int, token: str, name: str) -> None:
        self.call("dsreg_lock_dequeue", (session_id, token, name))

    def lock_contenders(self, name: str) -> list[Contender]:
        rows, _ = self.call("dsreg_lock_contenders", (name,))
        return [
            Contender(int(sid), owner, None if fence is None else int(fence), None if t is None else int(t), since)
            for sid, owner, fence, t, since in rows
        ]

    def lock_release(self, session_id: int, token: str, name: str) -> None:
        self.call("dsreg_lock_release", (session_id, token, name), idempotent=False)

    # -- change log and maintenance --------------------------------------
    def watch(self, prefix: str, after_rev: int, max_events: int = 1000) -> list[Event]:
        rows, _ = self.call("dsreg_watch", (prefix, after_rev, max_events))
        return [Event(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def reap(self) -> int:
        _, (reaped,) = self.call("dsreg_reap", (), out=1)
        return int(reaped)

    def compact(self) -> int:
        _, (removed,) = self.call("dsreg_compact", (), out=1)
        return int(removed)
