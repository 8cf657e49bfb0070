"""``dsreg doctor``: the server settings dsreg depends on, each with a verdict and a fix."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

import sqlalchemy.exc
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL, Connection, Engine

from dsreg_db.client import Client
from dsreg_db.ops import admin, wsrep
from dsreg_db.ops.explain import explain, schema_problem
from dsreg_db.schema import migrate
from dsreg_db.urls import ENV_URL, for_host, from_env, split_hosts

#: the dsreg events, each reported per node
EVENTS = ("dsreg_reaper", "dsreg_compactor")
#: how long the doctor waits for one node (a dead one must not hang the report)
NODE_CONNECT_TIMEOUT = 3
NODE_READ_TIMEOUT = 5
ENABLE_LOCALLY = (
    "SET SESSION wsrep_on = OFF; ALTER EVENT dsreg_reaper ENABLE; ALTER EVENT dsreg_compactor ENABLE; "
    "SET SESSION wsrep_on = ON;"
)


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok, info, warn, FAIL
    detail: str


def _version(raw: str) -> tuple[str, tuple[int, int]]:
    kind = "MariaDB" if "mariadb" in raw.lower() else "MySQL"
    m = re.match(r"(\d+)\.(\d+)", raw)
    return kind, (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def diagnose(url: str | None) -> list[Check]:
    """What ``dsreg doctor`` prints: :func:`run`'s checks of one server and, for a cluster, a line per node.

    A URL naming several hosts (``mysql://u:p@h1:3306,h2:3306/db``) checks each of them; a single host
    that is a Galera node checks the nodes its ``wsrep_incoming_addresses`` lists. A single server that
    is no Galera node gets :func:`run`'s checks alone.
    """
    raw = url if url is not None else os.environ.get(ENV_URL)
    hosts = split_hosts(raw)[1] if raw else []
    if not hosts:
        engine = Client(from_env(url), retry_seconds=2.0).engine
        checks = run(engine)
        with engine.connect() as conn:
            wsrep = _global(conn, "wsrep_on")
            incoming = _status(conn, "wsrep_incoming_addresses") if (wsrep or "").upper() == "ON" else None
        listed = [item.strip() for item in (incoming or "").split(",") if item.strip()]
        if listed:
            assert raw is not None  # from_env found a URL
            here = (engine.url.host or "127.0.0.1", engine.url.port or 3306)
            discovered = _addresses(listed)
            unknown = len(listed) - len(discovered)
            detail = f"{len(listed)} listed in wsrep_incoming_addresses of {_name(here)}"
            if unknown:
                detail += (
                    f" ({incoming}), {unknown} without a client address: those cannot be checked from here; "
                    "set wsrep_node_incoming_address=host:port on each node, or name every node in the URL "
                    "(mysql://user:pw@node1:3306,node2:3306/db)"
                )
            checks.append(Check("nodes", "warn" if unknown else "info", detail))
            targets = [here, *discovered] if unknown else discovered
            probes = [_probe(raw, host, port) for host, port in targets]
            checks += _node_checks(probes, discovered=True, listed=len(listed))
        return checks

    assert raw is not None
    probes = [_probe(raw, host, port) for host, port in hosts]
    reachable = next((p for p in probes if isinstance(p, Node)), None)
    checks = []
    if reachable is not None:
        checks = run(Client(for_host(raw, *reachable.address), retry_seconds=2.0).engine)
    where = (
        f"the checks above ran on {_name(reachable.address)}, the first that answered" if reachable else "none answered"
    )
    checks.append(Check("nodes", "info", f"{len(hosts)} named in the URL; {where}"))
    return checks + _node_checks(probes, discovered=False)


def run(engine: Engine) -> list[Check]:
    checks: list[Check] = []
    v = admin.server_variables(
        engine,
        [
            "version",
            "event_scheduler",
            "time_zone",
            "system_time_zone",
            "log_bin",
            "binlog_format",
            "log_bin_trust_function_creators",
            "wsrep_on",
            "wsrep_provider_options",
            "transaction_isolation",
            "tx_isolation",
        ],
    )
    raw = v["version"] or ""
    kind, version = _version(raw)
    minimum = (10, 11) if kind == "MariaDB" else (8, 0)
    checks.append(
        Check(
            "server version", "ok" if version >= minimum else "FAIL", f"{kind} {raw} (needs {minimum[0]}.{minimum[1]}+)"
        )
    )

    scheduler = (v["event_scheduler"] or "").upper()
    checks.append(
        Check(
            "event scheduler",
            "ok" if scheduler == "ON" else "FAIL",
            "ON: the reaper event runs every second"
            if scheduler == "ON"
            else f"{scheduler or 'unknown'}: sessions never expire unless clients call dsreg_reap; "
            "run SET GLOBAL event_scheduler = ON, and put event_scheduler=ON under [mysqld] in my.cnf "
            "so it stays on after a restart",
        )
    )

    with engine.connect() as conn:
        offset = conn.execute(text("SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())")).scalar_one()
        grants = [str(r[0]) for r in conn.execute(text("SHOW GRANTS"))]
    checks.append(
        Check(
            "time zone",
            "ok",
            f"time_zone={v['time_zone']} system={v['system_time_zone']} (UTC{offset / 60:+.1f} h); "
            "leases use UTC_TIMESTAMP only, so any zone is fine",
        )
    )

    if (v["log_bin"] or "OFF").upper() == "ON":
        fmt = (v["binlog_format"] or "").upper()
        checks.append(
            Check(
                "binary log",
                "FAIL" if fmt == "STATEMENT" else "ok",
                f"log_bin=ON binlog_format={fmt}"
                + (
                    ": use ROW or MIXED (the reaper's READ COMMITTED batches cannot be logged as "
                    "statements, and the procedures use RANDOM_BYTES and UTC_TIMESTAMP)"
                    if fmt == "STATEMENT"
                    else ""
                ),
            )
        )
        trust = (v["log_bin_trust_function_creators"] or "OFF").upper()
        checks.append(
            Check(
                "routine creation",
                "info",
                f"log_bin_trust_function_creators={trust}; dsreg creates procedures and events only, "
                "which need CREATE ROUTINE, ALTER ROUTINE and EVENT on the schema",
            )
        )
    else:
        checks.append(Check("binary log", "ok", "log_bin=OFF"))

    isolation = v["transaction_isolation"] or v["tx_isolation"]
    checks.append(
        Check(
            "isolation",
            "info",
            f"{isolation}; every procedure runs its own transactions in REPEATABLE READ "
            "and decides with locking reads, so any level works",
        )
    )
    checks.append(Check("privileges", "info", " | ".join(grants)))

    current = migrate.current(engine.url)
    head = migrate.head()
    problem = schema_problem(current, head)
    checks.append(Check("schema", "FAIL" if problem else "ok", problem or f"revision {current}, head {head}"))
    if (v["wsrep_on"] or "OFF").upper() == "ON":
        checks += _galera_checks(engine, v["wsrep_provider_options"], schema_present=current is not None)
    if current is not None:
        checks += _event_checks(engine, scheduler == "ON")
        r = admin.status(engine).reaper
        healthy = r.seconds_since_run * 1000 < r.stall_after_ms
        detail = f"last run {r.seconds_since_run:.1f} s ago, {r.runs} runs, {r.expired} expired, {r.stalls} stalls"
        if not healthy and scheduler == "ON":
            detail += (
                f": older than stall_after_ms ({r.stall_after_ms} ms) although the scheduler is ON, so the "
                "reaper event is not running; look for 'Event Scheduler' in the server error log (definer "
                "privileges, a disabled event) -- until fixed, dead sessions are reaped only by dsreg_reap calls"
            )
        checks.append(Check("reaper", "ok" if healthy else ("FAIL" if scheduler == "ON" else "warn"), detail))
    return checks


def _galera_checks(engine: Engine, provider_options: str | None, *, schema_present: bool) -> list[Check]:
    options = wsrep.parse_options(provider_options)
    shortest = None
    if schema_present:
        with engine.connect() as conn:
            shortest = conn.execute(text("SELECT MIN(ttl_ms) FROM dsreg_session")).scalar()
    flow = wsrep.flow_control_problem(options)
    detection_problem, detection = wsrep.failure_detection_problem(options, shortest)
    return [
        Check(
            "galera",
            "info",
            "wsrep_on=ON: certification conflicts surface as error 1213 and the Python client retries them",
        ),
        Check("galera flow control", "warn" if flow else "ok", flow or f"gcs.fc_limit={options['gcs.fc_limit']}"),
        Check("galera failure detection", "warn" if detection_problem else "ok", detection),
    ]


def _event_checks(engine: Engine, scheduler_on: bool) -> list[Check]:
    """Each dsreg event: enabled here, and its definer exists with EVENT on the schema (without it the
    scheduler skips the event every second and only logs it)."""
    checks = []
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT DATABASE()")).scalar_one()
        events = conn.execute(
            text(
                "SELECT EVENT_NAME, STATUS, DEFINER FROM information_schema.EVENTS "
                "WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME LIKE 'dsreg%' ORDER BY EVENT_NAME"
            )
        ).all()
        for name, status, definer in events:
            user, _, host = str(definer).rpartition("@")
            problem = None
            if status != "ENABLED":
                problem = (
                    f"{status} on this node: it never runs here; ALTER EVENT {name} ENABLE "
                    "(on Galera: SET SESSION wsrep_on = OFF first)"
                )
            elif scheduler_on:
                problem = _definer_problem(conn, user, host, str(schema))
            checks.append(
                Check(
                    f"event {name}",
                    "FAIL" if problem and status == "ENABLED" else ("warn" if problem else "ok"),
                    f"{status}, definer {definer}" + (f": {problem}" if problem else ""),
                )
            )
    return checks


def _definer_problem(conn: Connection, user: str, host: str, schema: str) -> str | None:
    try:
        grants = [str(r[0]) for r in conn.execute(text("SHOW GRANTS FOR :u@:h"), {"u": user, "h": host})]
    except sqlalchemy.exc.DBAPIError as exc:
        errno = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if errno == 1141:  # no such grant: the account does not exist
            return f"the definer {user}@{host} does not exist; dsreg grant --definer {user}@{host}, or upgrade again"
        return None  # this account may not read other accounts' grants: nothing to judge by
    pattern = re.compile(rf"^GRANT (.*) ON (\*|`{re.escape(schema)}`)\.\* TO", re.IGNORECASE)
    for grant in grants:
        m = pattern.match(grant.replace("\\", ""))  # a grant on `db\_name` shows the escaped _
        privileges = m.group(1).upper().split(", ") if m else []
        if "ALL PRIVILEGES" in privileges or "EVENT" in privileges:
            return None
    return (
        f"the definer {user}@{host} lacks EVENT on `{schema}`, so the scheduler skips the event every second; "
        f"dsreg grant --definer {user}@{host}"
    )


# -- clusters: every node of a multi-host URL or of the Galera cluster ------------------------------------


@dataclass(frozen=True)
class Node:
    """What one node says about itself."""

    address: tuple[str, int]  # as named in the URL or in wsrep_incoming_addresses
    identity: tuple[str, ...]  # the same server reached under two names has the same identity
    wsrep: bool
    node_name: str | None = None
    cluster_status: str | None = None  # Primary / non-Primary / Disconnected
    local_state: str | None = None  # Synced / Donor/Desynced / Joining / ...
    ready: str | None = None  # wsrep_ready ON / OFF
    cluster_size: str | None = None
    scheduler: str = ""
    events: dict[str, str] = field(default_factory=dict)  # EVENT_NAME -> STATUS on this node
    reaper_age: float | None = None  # seconds since dsreg_reaper.last_run_at, by this node's clock
    client_reaping: bool = False  # dsreg__reap_last_resort exists (revision dsreg_0009+)
    reap_stale_ms: int | None = None
    revision: str | None = None
    problem: str | None = None  # why the tables could not be read (a non-Primary node refuses queries)


def _node_checks(probes: list[Node | str], *, discovered: bool, listed: int = 0) -> list[Check]:
    """A line per node (cluster state, its events and scheduler, the reaper's last run) and one on who reaps;
    ``listed``: how many nodes wsrep_incoming_addresses lists (some may have no address to check)."""
    checks: list[Check] = []
    seen: dict[tuple[str, ...], Node] = {}
    nodes: list[Node] = []
    unreachable: list[str] = []
    for probe in probes:
        if isinstance(probe, str):
            address, _, why = probe.partition("\0")
            unreachable.append(address)
            hint = (
                " (an address from wsrep_incoming_addresses: if this host cannot reach it, name the nodes in "
                "the URL, mysql://user:pw@node1:3306,node2:3306/db)"
                if discovered
                else ""
            )
            checks.append(Check(f"node {address}", "FAIL", f"unreachable: {why}{hint}"))
            continue
        twin = seen.get(probe.identity)
        if twin is not None and discovered:
            continue  # the node the URL names, listed again under its published address
        if twin is not None:
            checks.append(
                Check(f"node {_name(probe.address)}", "warn", f"the same server as {_name(twin.address)}, named twice")
            )
            continue
        seen[probe.identity] = probe
        nodes.append(probe)
        checks.append(_node_line(probe))
    if discovered:  # a node that this host cannot reach is in the list, a dead one is not
        unknown = max(0, listed - len(nodes) - len(unreachable))
    else:  # the URL may name only some of the nodes (dead ones are not in the cluster size)
        sizes = [int(n.cluster_size or 0) for n in nodes if n.cluster_status == "Primary"]
        unknown = max(0, max(sizes, default=0) - len(nodes))
        if unknown:
            checks.append(
                Check(
                    "nodes",
                    "warn",
                    f"the cluster has {max(sizes)} nodes (wsrep_cluster_size), the URL names {len(nodes)} of them: "
                    f"{unknown} not checked; name every node in the URL",
                )
            )
    reaping = _reaping(nodes, len(nodes) + len(unreachable) + unknown, unknown)
    if reaping is not None:
        checks.append(reaping)
    return checks


def _node_line(node: Node) -> Check:
    parts = []
    level = "ok"
    if node.wsrep:
        label = f"{node.node_name}: " if node.node_name else ""
        parts.append(
            f"{label}{node.cluster_status}, {node.local_state}, wsrep_ready={node.ready} "
            f"(cluster size {node.cluster_size})"
        )
        if node.cluster_status != "Primary" or (node.ready or "").upper() != "ON":
            level = "FAIL"
            parts[-1] += ": this node refuses queries (not in the primary component)"
        elif node.local_state != "Synced":
            level = "warn"
            parts[-1] += ": not Synced, it may lag behind"
    else:
        parts.append("wsrep_on=OFF")
    if node.problem:
        parts.append(node.problem)
        level = "FAIL"
    else:
        events = ", ".join(f"{name} {node.events[name]}" for name in EVENTS if name in node.events)
        parts.append(events or "no dsreg events")
        parts.append(f"event_scheduler {node.scheduler or 'unknown'}")
        if node.reaper_age is not None:
            parts.append(f"reaper last ran {node.reaper_age:.1f} s ago")
    return Check(f"node {_name(node.address)}", level, "; ".join(parts))


def _reaping(nodes: list[Node], total: int, unknown: int) -> Check | None:
    """Whether reaping survives the loss of any one node: the reaper event enabled with the scheduler ON on
    several nodes, or a schema whose clients reap when no event runs (revision dsreg_0009+)."""
    known = [n for n in nodes if n.problem is None and n.events]
    if not known:
        return None  # no dsreg schema (the schema check says so) or no node answered
    reapers = [_name(n.address) for n in known if n.events.get("dsreg_reaper") == "ENABLED" and n.scheduler == "ON"]
    compactors = [
        _name(n.address) for n in known if n.events.get("dsreg_compactor") == "ENABLED" and n.scheduler == "ON"
    ]
    idle = [
        f"{_name(n.address)} ({n.events.get('dsreg_reaper', 'missing')}, scheduler {n.scheduler})"
        for n in known
        if _name(n.address) not in reapers
    ]
    nowhere = "none of the nodes checked" if unknown else "no node"
    where = ", ".join(reapers) or nowhere
    where += (f", not on {', '.join(idle)}" if idle else "") + (f", {unknown} node(s) not checked" if unknown else "")
    events = f"the reaper event runs on {where}; the compactor on {', '.join(compactors) or nowhere}"
    newest = next((n for n in known if n.client_reaping), None)
    if newest is not None:
        stale = f"{newest.reap_stale_ms} ms" if newest.reap_stale_ms is not None else "unknown"
        detail = (
            f"{events}; clients reap when no event runs (a keepalive or heartbeat that writes a lease reaps "
            f"one batch once the reaper's last run is older than reap_stale_ms, {stale})"
        )
        if not reapers and unknown:
            age = f", and its last run was {newest.reaper_age:.1f} s ago" if newest.reaper_age is not None else ""
            return Check("reaping", "warn", f"{detail}; the nodes not checked may run the events{age}")
        if not reapers:
            return Check(
                "reaping",
                "warn",
                f"{detail}: dead sessions are reaped only while some client beats, and nothing compacts the "
                f"change log; enable the events on a node: {ENABLE_LOCALLY}",
            )
        if not compactors:
            return Check("reaping", "warn", f"{detail}; nothing compacts the change log: {ENABLE_LOCALLY}")
        return Check("reaping", "ok", detail)
    revision = known[0].revision or "unknown"
    if total > 1 and len(reapers) <= 1:
        alone = f"reaping depends on {reapers[0]} alone" if reapers else "no node reaps"
        unchecked = f" among the nodes checked ({unknown} not checked may run it)" if unknown else ""
        return Check(
            "reaping",
            "warn" if unknown else "FAIL",
            f"{alone}{unchecked}: {events}, and revision {revision} predates client reaping (dsreg_0009), so "
            + (f"when {reapers[0]} stops, " if reapers else "")
            + "dead sessions are never reaped; run dsreg upgrade, or enable the events on every node "
            f"(Galera creates replicated events SLAVESIDE_DISABLED): {ENABLE_LOCALLY}",
        )
    return Check("reaping", "ok", f"{events} (revision {revision}: no client reaping before dsreg_0009)")


def _probe(url: str | URL, host: str, port: int) -> Node | str:
    """One node's state, or ``"host:port\\0why"`` when it does not answer."""
    engine = create_engine(
        for_host(url, host, port),
        poolclass=pool.NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": NODE_CONNECT_TIMEOUT,
            "read_timeout": NODE_READ_TIMEOUT,
            "write_timeout": NODE_READ_TIMEOUT,
        },
    )
    try:
        with engine.connect() as conn:
            return _read_node(conn, (host, port))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return f"{_name((host, port))}\0{explain(exc)}"
    finally:
        engine.dispose()


def _read_node(conn: Connection, address: tuple[str, int]) -> Node:
    wsrep = (_global(conn, "wsrep_on") or "OFF").upper() == "ON"
    status = {}
    if wsrep:
        names = ("wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_ready", "wsrep_cluster_size")
        status = {name: _status(conn, name) for name in names}
        identity: tuple[str, ...] = ("gcomm", _status(conn, "wsrep_gcomm_uuid") or f"{address}")
    else:
        host, port, datadir = conn.execute(text("SELECT @@hostname, @@port, @@datadir")).one()
        identity = (str(host), str(port), str(datadir))
    base = Node(
        address=address,
        identity=identity,
        wsrep=wsrep,
        node_name=_global(conn, "wsrep_node_name") if wsrep else None,
        cluster_status=status.get("wsrep_cluster_status"),
        local_state=status.get("wsrep_local_state_comment"),
        ready=status.get("wsrep_ready"),
        cluster_size=status.get("wsrep_cluster_size"),
        scheduler=(_global(conn, "event_scheduler") or "").upper(),
    )
    try:
        events = {
            str(r[0]): str(r[1])
            for r in conn.execute(
                text(
                    "SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS "
                    "WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME LIKE 'dsreg%'"
                )
            )
        }
        client_reaping = bool(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
                    "AND ROUTINE_NAME = 'dsreg__reap_last_resort'"
                )
            ).scalar_one()
        )
        age = stale = revision = None
        if events:
            micros = conn.execute(
                text("SELECT TIMESTAMPDIFF(MICROSECOND, last_run_at, UTC_TIMESTAMP(6)) FROM dsreg_reaper WHERE id = 1")
            ).scalar()
            age = None if micros is None else float(micros) / 1e6
            found = conn.execute(text("SELECT value FROM dsreg_setting WHERE name = 'reap_stale_ms'")).scalar()
            stale = None if found is None else int(found)
            revision = migrate.current(conn)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return replace(base, problem=f"cannot read the dsreg tables: {explain(exc)}")
    return replace(
        base, events=events, reaper_age=age, client_reaping=client_reaping, reap_stale_ms=stale, revision=revision
    )


def _global(conn: Connection, name: str) -> str | None:
    row = conn.execute(text("SHOW GLOBAL VARIABLES LIKE :n"), {"n": name}).first()
    return None if row is None else str(row[1])


def _status(conn: Connection, name: str) -> str | None:
    row = conn.execute(text("SHOW GLOBAL STATUS LIKE :n"), {"n": name}).first()
    return None if row is None else str(row[1])


def _addresses(listed: list[str]) -> list[tuple[str, int]]:
    """``wsrep_incoming_addresses`` items (``10.0.0.1:3306``, ``[::1]:3307``) as (host, port) pairs; a node
    that publishes no client address (``AUTO``, an unspecified ``0.0.0.0``) has none."""
    found = []
    for item in listed:
        host, colon, port = item.rpartition(":")
        if not colon or not port.isdigit() or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port = item, "3306"
        host = host.strip("[]")
        if item.upper() != "AUTO" and host not in ("", "0.0.0.0", "::"):
            found.append((host, int(port)))
    return found


def _name(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
