"""``dsreg torture``: many heartbeating clients, random stalls, everyone reaping -- and a checker.

N clients (threads, one connection each) each hold a session and one
ephemeral node and heartbeat every ttl/3. Each client sometimes stalls like
a GC pause (up to ttl - 2 x interval: it must survive that), rarely for
longer than the ttl (it must then be expired *and told so*), and after every
heartbeat calls the reaper, as every DolphinScheduler node runs its cleanup.
An independent checker samples the node table and counts:

* a **loss**: a client whose last successful heartbeat is younger than
  ttl - interval has no node row (a live registration missing);
* a **zombie**: a node that outlives its session's lease by more than one
  reaper interval (1 s). For dsreg that is judged on the server: a node
  without a session, or whose session's ``expires_at`` is more than 1 s
  older than the last recorded reaper run (while the database itself
  stalls -- a restart, a Galera view change -- no reaper can run and a lease
  is not over yet: the stall grace extends it). For the control, whose lease
  is only in the clients' heads, a row whose client's last heartbeat is
  older than the window + 1 s + the checker's own period.

``system="ds31"`` drives a faithful replica of DolphinScheduler 3.1's MySQL
registry instead (the control, in a table of its own, ``dsreg_torture_ds31_registry``): the
client's clock in ``last_term``, every client deleting rows older than *its own* clock minus the window, a
heartbeat ``UPDATE ... WHERE id IN (...)`` that never re-creates a deleted
row, registration by SELECT-then-INSERT. One client's clock is skewed.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from dsreg_db import driver
from dsreg_db.ops.progress import progress
from dsreg_db.testing.target import Footprint
from dsreg_db.urls import pymysql_params

log = logging.getLogger(__name__)

#: the replica's table: DolphinScheduler 3.1's t_ds_mysql_registry_data (same columns, keys and SQL), under
#: a name of its own so that a run never touches a real DolphinScheduler's table
DS31_TABLE_NAME = "dsreg_torture_ds31_registry"
DS31_TABLE = """
CREATE TABLE IF NOT EXISTS dsreg_torture_ds31_registry (
    id               BIGINT       NOT NULL AUTO_INCREMENT,
    `key`            VARCHAR(256) NOT NULL,
    data             TEXT         NOT NULL,
    type             TINYINT      NOT NULL,
    last_term        BIGINT       NOT NULL,
    create_time      TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_update_time TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uk_dsreg_torture_ds31_registry_key (`key`)
) ENGINE = InnoDB"""
EPHEMERAL = 1

#: what a run leaves in a user's database, removed again afterwards (dsreg_db.testing.target)
FOOTPRINT = Footprint("torture", owners=("/nodes/worker/torture-%",), tables=(DS31_TABLE_NAME,))


@dataclass
class Report:
    system: str
    clients: int
    seconds: float
    ttl_ms: int
    heartbeats: int = 0
    failed_heartbeats: int = 0
    conflicts: int = 0  # deadlocks / Galera certification conflicts (1213), retried
    max_stall_ms: int = 0
    long_stalls: int = 0  # stalls longer than the ttl followed by another heartbeat: the session must expire
    expired_reported: int = 0  # heartbeats answered 45001 (the client re-opened and re-registered)
    long_stalls_reported: int = 0  # long stalls whose next heartbeat was told 45001
    # A long stall's heartbeat may succeed only for a reason the server shows, read on the client's own
    # connection just before that beat (see _LeaseView):
    # - graced: its lease was still running: the reaper's stall grace (a database stall, e.g. a Galera view
    #   change after a kill stops every commit for ~5 s) had extended it past ttl, by design;
    # - unreaped: the lease had ended but no reaper had finished a run since (the database stall held
    #   every reaper), so the session still existed and the beat renewed it, as a session is only dead
    #   once a reaper deletes it.
    # long_stalls_reported + long_stalls_graced + long_stalls_unreaped must equal long_stalls; a beat that
    # succeeded without such a reason is a missed expiry (long_stalls_missed, with examples)
    long_stalls_graced: int = 0
    long_stalls_unreaped: int = 0
    long_stalls_missed: int = 0
    losses: int = 0
    zombies: int = 0
    lost_clients: int = 0  # distinct clients that were ever found live without their row
    crashed_clients: int = 0  # client threads ended by an error nothing handled (their rows then age out)
    samples: int = 0
    skewed_clock_s: float = 0.0
    loss_examples: list[str] = field(default_factory=list)
    missed_examples: list[str] = field(default_factory=list)
    failure_examples: list[str] = field(default_factory=list)  # heartbeats failed on the connection

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Client:
    index: int
    path: str
    last_ok: float = 0.0  # monotonic time the last successful heartbeat returned
    clock_skew_s: float = 0.0
    long_stall: bool = False  # the last stall was longer than the ttl
    failovers: int = 0


#: a reaper run that finished this long after a lease's end began after it (a batch takes milliseconds;
#: a margin so that a batch which started just before the end and finished late is not taken for one)
REAP_AFTER_END_MARGIN_US = 1_000_000


@dataclass
class _LeaseView:
    """A stalled client's session as its node sees it just before the client's next heartbeat."""

    exists: bool
    left_us: int  # lease left (negative: ended that long ago); 0 when the session is gone
    reaped_after_end_us: int  # the reaper's last recorded run minus the lease's end

    def explains_success(self) -> str | None:
        """Why a heartbeat made now may succeed after a stall longer than the ttl, or None."""
        if not self.exists:
            return None  # reaped: only 45001 is right
        if self.left_us > 0:
            return "graced"
        if self.reaped_after_end_us < REAP_AFTER_END_MARGIN_US:
            return "unreaped"
        return None


class Torture:
    def __init__(
        self,
        params: dict[str, Any],
        *,
        system: str = "dsreg",
        clients: int = 50,
        ttl_ms: int = 3000,
        seconds: float = 20.0,
        stall_chance: float = 0.05,
        long_stall_chance: float = 0.01,
        skew_s: float = 5.0,
        seed: int | None = None,
        hosts: list[tuple[str, int]] | None = None,
    ) -> None:
        self.params = params
        self.hosts = hosts or []  # cluster nodes: clients spread over them and fail over
        self.system = system
        self.ttl = ttl_ms / 1000
        self.interval = self.ttl / 3
        self.seconds = seconds
        self.stall_chance = stall_chance
        self.long_stall_chance = long_stall_chance
        self.rnd = random.Random(seed)
        self.report = Report(system, clients, seconds, ttl_ms, skewed_clock_s=skew_s if system == "ds31" else 0.0)
        self.clients = [_Client(i, f"/nodes/worker/torture-{i}") for i in range(clients)]
        if system == "ds31" and clients:
            self.clients[0].clock_skew_s = skew_s  # one node's clock runs ahead, as in real fleets
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _node(self, c: _Client) -> tuple[str, int]:
        """The cluster node client ``c`` uses now: spread by index, the next one after each failover."""
        return self.hosts[(c.index + c.failovers) % len(self.hosts)]

    def _connect(self, c: _Client | None = None) -> pymysql.Connection:
        params = dict(self.params)
        if self.hosts and c is not None:
            params["host"], params["port"] = self._node(c)
        return driver.connect(autocommit=True, connect_timeout=2, read_timeout=30, **params)

    # -- one client ------------------------------------------------------------
    def _stall(self, c: _Client) -> None:
        r = self.rnd.random()
        if r < self.long_stall_chance:
            pause = self.rnd.uniform(self.ttl + 0.5, self.ttl + 1.5)
            c.long_stall = True
        elif r < self.long_stall_chance + self.stall_chance:
            pause = self.rnd.uniform(0, self.ttl - 2 * self.interval)
        else:
            return
        with self._lock:
            self.report.max_stall_ms = max(self.report.max_stall_ms, int(pause * 1000))
        time.sleep(pause)

    def _run_dsreg(self, c: _Client) -> None:
        conn = self._connect(c)
        cur = conn.cursor()

        def open_session() -> tuple[int, str]:
            nonlocal conn, cur
            while True:
                try:
                    cur.execute("CALL dsreg_session_open(%s, %s, @s, @t)", (c.path, int(self.ttl * 1000)))
                    cur.execute("SELECT @s, @t")
                    sid, token = cur.fetchone()  # type: ignore[misc]
                    return int(sid), str(token)
                except pymysql.err.MySQLError as exc:
                    if exc.args and exc.args[0] == 1213:
                        # opens of one account conflict on Galera (its dsreg_account row): rolled back, retry
                        with self._lock:
                            self.report.conflicts += 1
                        continue
                    if str(getattr(exc, "sqlstate", "")).startswith("45"):
                        raise  # a dsreg error, not the connection
                    # the node went away (a kill): reconnect, to the next node with several; a session
                    # the lost call may have opened has no node and expires unseen
                    conn = self._reconnect(conn, c)
                    cur = conn.cursor()

        sid, token = open_session()
        while not self._stop.is_set():
            # a long stall counts once its heartbeat has an answer; a heartbeat that failed on the
            # connection or a certification conflict is retried with the stall still pending
            long_stall = c.long_stall
            try:
                view = _lease_view(cur, sid) if long_stall else None
                cur.execute("CALL dsreg_heartbeat(%s, %s, %s, %s)", (sid, token, c.path, "{}"))
                c.last_ok = time.monotonic()
                c.long_stall = False
                reason = view.explains_success() if view is not None else None
                with self._lock:
                    self.report.heartbeats += 1
                    self.report.long_stalls += long_stall
                    self.report.long_stalls_graced += reason == "graced"
                    self.report.long_stalls_unreaped += reason == "unreaped"
                    if long_stall and reason is None:
                        self.report.long_stalls_missed += 1
                        if len(self.report.missed_examples) < 5:
                            self.report.missed_examples.append(f"{c.path} session {sid}: {view}")
                cur.execute("CALL dsreg_reap(@r)")  # every node cleans, as in DolphinScheduler
            except pymysql.err.MySQLError as exc:
                if getattr(exc, "sqlstate", None) == "45001":  # expired: told so; re-open and re-register
                    c.last_ok = 0.0  # a new registration: neither a loss nor a zombie until its first beat
                    c.long_stall = False
                    with self._lock:
                        self.report.expired_reported += 1
                        self.report.long_stalls += long_stall
                        self.report.long_stalls_reported += long_stall
                    sid, token = open_session()
                    continue
                if exc.args and exc.args[0] == 1213:  # certification conflict: rolled back, retry at once
                    with self._lock:
                        self.report.conflicts += 1
                    continue
                self._failed(c, exc)
                conn = self._reconnect(conn, c)
                cur = conn.cursor()
            self._stall(c)
            self._stop.wait(self.interval)
        with contextlib.suppress(pymysql.err.MySQLError):
            cur.execute("CALL dsreg_session_close(%s, %s)", (sid, token))
        conn.close()

    def _run_ds31(self, c: _Client) -> None:
        conn = self._connect(c)
        cur = conn.cursor()

        def now_ms() -> int:  # System.currentTimeMillis() on this node
            return int((time.time() + c.clock_skew_s) * 1000)

        # insertOrUpdateEphemeralData: SELECT, then INSERT or UPDATE (not atomic)
        cur.execute("SELECT id FROM dsreg_torture_ds31_registry WHERE `key` = %s", (c.path,))
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO dsreg_torture_ds31_registry (`key`, data, type, last_term) VALUES (%s, %s, %s, %s)",
                (c.path, "{}", EPHEMERAL, now_ms()),
            )
            row_id = cur.lastrowid
        else:
            row_id = row[0]
            cur.execute(
                "UPDATE dsreg_torture_ds31_registry SET data = %s, last_term = %s WHERE id = %s",
                ("{}", now_ms(), row_id),
            )
        window_ms = int(self.ttl * 1000)
        while not self._stop.is_set():
            long_stall, c.long_stall = c.long_stall, False
            with self._lock:
                self.report.long_stalls += long_stall
            try:
                # EphemeralDateManager: heartbeat by id; 0 rows updated is only a warning, never a re-insert
                cur.execute(
                    "UPDATE dsreg_torture_ds31_registry SET last_term = %s WHERE id IN (%s)", (now_ms(), row_id)
                )
                c.last_ok = time.monotonic()
                with self._lock:
                    self.report.heartbeats += 1
                # ... and every node deletes what is old by *its own* clock
                cur.execute(
                    "DELETE FROM dsreg_torture_ds31_registry WHERE last_term < %s AND type = %s",
                    (now_ms() - window_ms, EPHEMERAL),
                )
            except pymysql.err.MySQLError:
                with self._lock:
                    self.report.failed_heartbeats += 1
                conn = self._reconnect(conn, c)
                cur = conn.cursor()
            self._stall(c)
            self._stop.wait(self.interval)
        conn.close()

    def _via(self, c: _Client) -> str:
        """`` via host:port``: the node a client of a cluster uses now ("" with one server)."""
        if not self.hosts:
            return ""
        host, port = self._node(c)
        return f" via {host}:{port}"

    def _failed(self, c: _Client, exc: BaseException) -> None:
        """Count a heartbeat that failed on its connection; keep the first few errors for the report."""
        with self._lock:
            self.report.failed_heartbeats += 1
            if len(self.report.failure_examples) < 10:
                self.report.failure_examples.append(f"{time.monotonic():.1f} {c.path}{self._via(c)}: {exc!r}")

    def _reconnect(self, conn: pymysql.Connection, c: _Client | None = None) -> pymysql.Connection:
        with contextlib.suppress(pymysql.err.Error):
            conn.close()
        tries_when_stopping = max(len(self.hosts), 1)  # then one per node, so a client can still close
        while True:
            if c is not None:
                c.failovers += 1  # with several hosts: try the next node
            try:
                return self._connect(c)
            except pymysql.err.MySQLError:
                if self._stop.is_set():
                    tries_when_stopping -= 1
                    if tries_when_stopping == 0:
                        raise
                else:
                    time.sleep(0.2)

    # -- the checker -------------------------------------------------------------
    def _present(self, cur: Any) -> tuple[set[str], int | None]:
        """Paths present, and (dsreg only) how many nodes outlive their session's lease by over 1 s."""
        if self.system == "dsreg":
            cur.execute(
                "SELECT n.path, s.id IS NULL OR s.expires_at < r.last_run_at - INTERVAL 1 SECOND "
                "FROM dsreg_node n LEFT JOIN dsreg_session s ON s.id = n.session_id "
                "JOIN dsreg_reaper r ON r.id = 1 WHERE n.path LIKE %s",
                ("/nodes/worker/torture-%",),
            )
            rows = cur.fetchall()
            return {r[0].decode() for r in rows}, sum(int(r[1]) for r in rows)
        cur.execute("SELECT `key` FROM dsreg_torture_ds31_registry WHERE type = %s", (EPHEMERAL,))
        return {r[0] for r in cur.fetchall()}, None

    @staticmethod
    def _causal(conn: pymysql.Connection) -> pymysql.Connection:
        """On Galera, read causally: a beat committed through another node is visible here before it is
        judged (a no-op elsewhere: the variable does not exist)."""
        with contextlib.suppress(pymysql.err.MySQLError), conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
        return conn

    def _check(self) -> None:
        period = 0.05
        lost: set[int] = set()
        conn = self._causal(self._connect())
        cur = conn.cursor()
        while not self._stop.is_set():
            before = {c.index: c.last_ok for c in self.clients}  # read first: these beats committed before the sample
            try:
                present, overdue = self._present(cur)
            except pymysql.err.MySQLError:
                # the new connection reads causally too (once it did not: a lagging node's missing rows were
                # counted as 1254 losses in a Galera run)
                conn = self._causal(self._reconnect(conn))
                cur = conn.cursor()
                continue
            now = time.monotonic()
            with self._lock:
                self.report.samples += 1
                for c in self.clients:
                    age = now - before[c.index]
                    if before[c.index] and age < self.ttl - self.interval and c.path not in present:
                        self.report.losses += 1
                        lost.add(c.index)
                        self.report.lost_clients = len(lost)
                        if len(self.report.loss_examples) < 5:
                            self.report.loss_examples.append(
                                f"{time.monotonic():.1f} {c.path}: last beat {age:.2f} s ago{self._via(c)}, no row"
                            )
                    if (
                        overdue is None
                        and before[c.index]
                        and age > self.ttl + 1.0 + 2 * period + 0.25
                        and c.path in present
                    ):
                        self.report.zombies += 1
                if overdue:
                    self.report.zombies += overdue
            progress(f"torture {self.system}: {self.report.heartbeats} beats, {self.report.samples} samples", every=5.0)
            time.sleep(period)
        conn.close()

    # -- run ---------------------------------------------------------------------
    def run(self, during: Callable[[], None] | None = None) -> Report:
        """Run for ``seconds``; the clients stop and close their sessions also when this is interrupted."""
        if self.system == "ds31":
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(DS31_TABLE)
                cur.execute("DELETE FROM dsreg_torture_ds31_registry")  # the replica's own table only
        run_client = self._run_dsreg if self.system == "dsreg" else self._run_ds31

        def target(c: _Client) -> None:
            try:
                run_client(c)
            except Exception:
                log.exception("torture client %s crashed", c.path)
                with self._lock:
                    self.report.crashed_clients += 1

        threads = [threading.Thread(target=target, args=(c,), daemon=True) for c in self.clients]
        checker = threading.Thread(target=self._check, daemon=True)
        try:
            for t in threads:
                t.start()
            time.sleep(self.interval)  # every client registered before the checker judges
            checker.start()
            progress(f"torture {self.system}: {len(self.clients)} clients for {self.seconds:g} s")
            if during is not None:
                during()
            self._stop.wait(self.seconds)
        finally:
            self._stop.set()
            if checker.is_alive():
                checker.join()
            for t in threads:
                if t.is_alive():
                    t.join(30)
        progress(f"torture {self.system}: done, {self.report.losses} losses, {self.report.zombies} zombies")
        log.info("torture %s: %s", self.system, self.report)
        return self.report


def compare(
    url: str | None,
    *,
    clients: int = 50,
    ttl_ms: int = 3000,
    seconds: float = 30.0,
    control: bool = True,
    skew_s: float = 5.0,
    force: bool = False,
) -> list[Report]:
    """dsreg, then the DolphinScheduler 3.1 replica, on the same server (a throwaway one by default).

    With ``url``: refused unless the database is disposable or ``force`` (dsreg_db.testing.target);
    afterwards, also after an error, the replica's table and the clients' sessions are gone."""
    from dsreg_db.schema import migrate
    from dsreg_db.testing.bench import target

    reports = []
    with target(url, FOOTPRINT, force=force) as db:
        migrate.upgrade(db)
        params = pymysql_params(db)
        reports.append(Torture(params, clients=clients, ttl_ms=ttl_ms, seconds=seconds).run())
        if control:
            reports.append(
                Torture(params, system="ds31", clients=clients, ttl_ms=ttl_ms, seconds=seconds, skew_s=skew_s).run()
            )
    return reports


def _lease_view(cur: Any, session_id: int) -> _LeaseView:
    """The session's lease and the reaper's last run, read on the client's connection (errors propagate:
    the beat is then retried with the stall still pending, judged by a fresh read)."""
    cur.execute(
        "SELECT s.id IS NOT NULL, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), s.expires_at), "
        "TIMESTAMPDIFF(MICROSECOND, s.expires_at, r.last_run_at) "
        "FROM dsreg_reaper AS r LEFT JOIN dsreg_session AS s ON s.id = %s WHERE r.id = 1",
        (session_id,),
    )
    exists, left_us, after_us = cur.fetchone()
    return _LeaseView(bool(exists), int(left_us or 0), int(after_us or 0))
