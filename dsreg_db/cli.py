"""``dsreg``: the command line. Every command takes ``--url`` (or ``$DSREG_URL``).

Errors print one line on stderr and exit 1 (server-side) or 2 (bad usage);
never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dsreg_db.client import Client
from dsreg_db.errors import BadAccount, RevisionError, Unavailable
from dsreg_db.ops import admin, doctor, explain, locked_command, progress
from dsreg_db.ops import metrics as metrics_module
from dsreg_db.ops.metrics import exposition
from dsreg_db.ops.tree import render
from dsreg_db.registry import Registry
from dsreg_db.schema import apidoc, grants, migrate, migration_lock
from dsreg_db.schema import revision as revision_module
from dsreg_db.schema.sqlobjects import ROOT, is_checkout, quote_account
from dsreg_db.testing import bench as bench_module
from dsreg_db.testing import benchdoc, fencing_demo, peer_workloads
from dsreg_db.testing import capacity as capacity_module
from dsreg_db.testing import demo as demo_module
from dsreg_db.testing import target as target_module
from dsreg_db.testing import torture as torture_module
from dsreg_db.urls import from_env

F = TypeVar("F", bound=Callable[..., Any])

url_option = click.option("--url", envvar="DSREG_URL", help="Database URL, e.g. mysql://user:pw@host/db ($DSREG_URL).")


class _BadArgument(click.ClickException):
    """Exit 2 with one line (click's UsageError would add the usage text)."""

    exit_code = 2


class _Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadAccount as exc:
            raise click.UsageError(str(exc), ctx) from None
        except explain.EXPLAINED as exc:  # one line, the cause and the fix: dsreg_db.ops.explain
            failure = _BadArgument if explain.exit_code(exc) == 2 else click.ClickException
            raise failure(explain.explain(exc)) from None


@click.group(cls=_Cli)
@click.version_option(package_name="dsreg-db", prog_name="dsreg")
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does.")
def main(verbose: bool) -> None:
    """dsreg-db: a coordination registry inside MySQL/MariaDB."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    progress.show_on_stderr()  # bench/torture phases, a waiting upgrade's lock holder, metrics scrape failures


def _client(url: str | None) -> Client:
    return Client(from_env(url), retry_seconds=2.0)


# -- schema --------------------------------------------------------------
def _account(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked before anything runs: a malformed account is a one-line usage error."""
    if value is not None:
        try:
            quote_account(value)
        except BadAccount as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


definer_option = click.option(
    "--definer",
    envvar="DSREG_DEFINER",
    callback=_account,
    help="Account (user@host) to own the procedures and events ($DSREG_DEFINER).",
)


@main.command()
@url_option
@definer_option
@click.argument("revision", default="head")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL script instead (for the mysql/mariadb client).")
def upgrade(url: str | None, definer: str | None, revision: str, as_sql: bool) -> None:
    """Apply migrations up to REVISION (default: head); safe to run from several hosts at once.

    With --sql, REVISION may be a range FROM:TO (e.g. dsreg_0001:head; a bare 0001 means the same).
    """
    if as_sql:
        click.echo(migrate.offline_sql(revision, definer=definer), nl=False)
        return
    target = from_env(url)
    started = time.monotonic()

    def landed(rev: str) -> None:  # as each revision is applied, not at the end
        click.echo(f"upgraded to {rev} (+{time.monotonic() - started:.1f} s)")

    applied = migrate.upgrade(target, revision, definer=definer, on_applied=landed)
    click.echo(f"applied {', '.join(applied) if applied else 'nothing'}; at revision {migrate.current(target)}")


@main.command("release-migration-lock")
@url_option
def release_migration_lock(url: str | None) -> None:
    """Delete the migration lock row, whoever holds it (like Liquibase's release-locks).

    For a stale lock whose holder died (it expires by itself after 15 minutes): a
    migration still running loses its lock, and another upgrade may run beside it.
    """
    held = migration_lock.release(_client(url).engine)
    if held is None:
        click.echo("no migration lock held")
        return
    owner, expires_at, left = held
    state = f"{left:.0f} s left" if left >= 0 else f"expired {-left:.0f} s ago"
    click.echo(f"released the migration lock of {owner} (lease until {expires_at:%Y-%m-%d %H:%M:%S} UTC, {state})")
    click.echo(
        f"warning: if {owner} is still migrating, it has lost its lock: another upgrade may run beside it",
        err=True,
    )


@main.command()
@url_option
@definer_option
@click.argument("revision")
def downgrade(url: str | None, definer: str | None, revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every dsreg object)."""
    target = from_env(url)
    migrate.downgrade(target, revision, definer=definer)
    click.echo(f"at revision {migrate.current(target) or 'base'}")


@main.command()
@url_option
def current(url: str | None) -> None:
    """Print the database's revision and the head revision."""
    click.echo(f"current: {migrate.current(from_env(url)) or 'base'}  head: {migrate.head()}")


@main.command("alembic-ini")
def alembic_ini() -> None:
    """Print the path of dsreg's alembic.ini, for running its migrations with plain alembic.

    From an application's own project: alembic -c "$(dsreg alembic-ini)" -x url=URL upgrade head
    (its own history, version table dsreg_alembic_version; the application's alembic.ini is untouched).
    """
    click.echo(str(ROOT / "alembic.ini"))


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 if a generated page is out of date instead of writing it.")
def docs(check: bool) -> None:
    """Write docs/sql-api.md (from sql/'s header comments), docs/performance.md and the README's
    bench summary (from docs/bench.json).

    Run in a checkout.
    """
    report = json.loads(benchdoc.REPORT.read_text())
    readme = benchdoc.readme_with_summary(benchdoc.README.read_text(), report)
    pages = ((apidoc.DOC, apidoc.render()), (benchdoc.PAGE, benchdoc.render(report)), (benchdoc.README, readme))
    for page, text in pages:
        if check:
            if not page.exists() or page.read_text() != text:
                raise click.ClickException(f"{page} is out of date: run dsreg docs")
            continue
        page.parent.mkdir(exist_ok=True)
        page.write_text(text)
        click.echo(f"wrote {page}")


@main.command()
@click.option("-m", "--message", required=True, help="What the revision changes.")
def revision(message: str) -> None:
    """Freeze what changed in sql/ into a new migration (run in a checkout)."""
    if not is_checkout():
        raise click.ClickException(
            f"dsreg revision edits the repository's sql/ and migrations/; {ROOT} is an installed "
            "package: run it in a git checkout installed with pip install -e ."
        )
    try:
        rev_id, keys = revision_module.write(ROOT, message)
    except RevisionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revision {rev_id}: {', '.join(keys)}")


@main.command()
@url_option
@click.argument("account", callback=_account)
@click.option("--password-env", metavar="VAR", help="Set the account's password from this environment variable.")
@click.option("--definer", "as_definer", is_flag=True, help="Create a locked definer account instead.")
def grant(url: str | None, account: str, password_env: str | None, as_definer: bool) -> None:
    """Create/update ACCOUNT (user@host) with EXECUTE on the dsreg procedures only."""
    engine = _client(url).engine
    if as_definer:
        grants.create_definer(engine, account)
        click.echo(f"{account}: locked definer account; use it with dsreg upgrade --definer {account}")
        return
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise click.UsageError(f"${password_env} is not set")
    granted = grants.grant_app(engine, account, password)
    click.echo(f"{account}: EXECUTE on {len(granted)} procedures")


# -- nodes ---------------------------------------------------------------
@main.command("ls")
@url_option
@click.argument("path", default="/")
def ls_command(url: str | None, path: str) -> None:
    """List the children of PATH."""
    for name in _client(url).children(path):
        click.echo(name)


@main.command()
@url_option
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the node with its metadata as JSON.")
def get(url: str | None, path: str, as_json: bool) -> None:
    """Print the value of the node at PATH."""
    node = _client(url).get(path)
    if node is None:
        raise click.ClickException(f"no node at {path}")
    click.echo(json.dumps(node.__dict__) if as_json else node.value)


@main.command()
@url_option
@click.argument("path")
@click.argument("value")
def put(url: str | None, path: str, value: str) -> None:
    """Create or update the persistent node PATH."""
    _client(url).put(None, None, path, value)


@main.command()
@url_option
@click.argument("path")
def rm(url: str | None, path: str) -> None:
    """Delete the persistent node PATH."""
    _client(url).delete(None, None, path)


@main.command()
@url_option
@click.argument("prefix", default="/")
@click.option("--from", "after", type=int, help="Start after this revision (default: now).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.option("--count", type=int, help="Stop after this many events.")
@click.option("--timeout", type=float, help="Stop after this many seconds.")
@click.option("--interval", default=0.25, show_default=True, help="Poll interval, seconds.")
def watch(
    url: str | None,
    prefix: str,
    after: int | None,
    as_json: bool,
    count: int | None,
    timeout: float | None,
    interval: float,
) -> None:
    """Stream change events under PREFIX, in revision order (45004 if --from is compacted).

    While the server is unreachable it keeps trying and resumes where it was; when it stops (--count,
    --timeout, SIGTERM, Ctrl-C) it prints the revision to resume from on stderr: --from REV."""
    client = _client(url)
    rev = client.list_nodes(prefix)[0] if after is None else after
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                events = client.watch(prefix, rev, 1000)
            except Unavailable as exc:
                click.echo(f"dsreg watch: {exc}; retrying from revision {rev}", err=True)
                events = []
            for event in events:
                rev = event.rev
                if as_json:
                    click.echo(json.dumps(event.__dict__))
                else:
                    click.echo(f"{event.rev} {event.kind} {event.path} {event.value}")
                seen += 1
                if count is not None and seen >= count:
                    return
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        click.echo(f"dsreg watch: resume with --from {rev}", err=True)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@main.command(context_settings={"ignore_unknown_options": True})
@url_option
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@click.option("--ttl", default=10.0, show_default=True, help="Session lease while holding the lock.")
@click.option("--grace", default=5.0, show_default=True, help="Seconds between SIGTERM and SIGKILL on loss.")
def lock(url: str | None, name: str, command: tuple[str, ...], timeout: float | None, ttl: float, grace: float) -> None:
    """Run COMMAND while holding lock NAME: dsreg lock /locks/x -- cmd args...

    Prints the fencing token and passes it to the command as $DSREG_FENCE;
    passes SIGTERM/SIGINT/SIGHUP on to it and exits with its status. If the
    session is lost meanwhile, the command is stopped (SIGTERM, then SIGKILL
    after --grace) and the exit status is 75.
    """
    owner = f"dsreg-lock@{socket.gethostname()}"
    with Registry(from_env(url)) as registry, registry.session(owner, ttl) as session:
        status = locked_command.run_locked(
            session, name, list(command), timeout, grace, on_fence=lambda fence: click.echo(f"fence {fence}")
        )
    if status is None:
        raise click.ClickException(f"lock {name} not acquired within {timeout} s")
    if status == locked_command.LOST_EXIT:
        click.echo(f"dsreg lock: the session was lost while the command ran; it was stopped (exit {status})", err=True)
    sys.exit(status)


# -- operations ----------------------------------------------------------
@main.command()
@url_option
def reap(url: str | None) -> None:
    """Expire sessions whose lease ran out now (the reaper event does this every second)."""
    click.echo(f"reaped {_client(url).reap()} session(s)")


@main.command()
@url_option
def compact(url: str | None) -> None:
    """Drop change events older than the watch window now (an event does this every minute)."""
    click.echo(f"removed {_client(url).compact()} event(s)")


@main.command()
@url_option
@click.option("--json", "as_json", is_flag=True)
def status(url: str | None, as_json: bool) -> None:
    """Sessions, the node tree and reaper health."""
    engine = _client(url).engine
    state = admin.status(engine)
    problem = explain.schema_problem(migrate.current(engine.url))
    if problem:
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(state.as_dict(), indent=2, default=str))
        return
    r = state.reaper
    health = "ok" if r.seconds_since_run * 1000 < r.stall_after_ms else "NOT RUNNING (is event_scheduler ON?)"
    click.echo(
        f"reaper: last run {r.seconds_since_run:.1f} s ago ({health}); runs {r.runs}, "
        f"expired {r.expired}, stalls {r.stalls}"
    )
    click.echo(f"revision {state.revision} (compacted up to {state.compacted}); locks held {state.locks}")
    click.echo(f"sessions ({len(state.sessions)}):")
    for s in state.sessions:
        lease = f"{s.remaining_ms / 1000:.1f} s left" if s.remaining_ms >= 0 else "lease over, awaiting reap"
        click.echo(f"  {s.id:>8}  {s.owner:<30} ttl {s.ttl_ms / 1000:.1f} s  {lease}")
    click.echo(f"nodes ({len(state.nodes)}):")
    entries = [(n.path, n.value + (f"  [session {n.session_id}]" if n.session_id else "")) for n in state.nodes]
    for line in render(entries):
        click.echo("  " + line)


def _host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", ctx, param)
    return host.strip("[]") or "0.0.0.0", int(port)


@main.command()
@url_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    callback=_host_port,
    help="Serve /metrics over HTTP here instead of printing once (each scrape queries the database; "
    "dsreg_up 0 when it does not answer).",
)
def metrics(url: str | None, listen: tuple[str, int] | None) -> None:
    """Print Prometheus text exposition of the registry's health, or serve it with --listen."""
    if listen is None:
        click.echo(exposition(_client(url).engine), nl=False)
        return
    # a scrape must answer within Prometheus' default 10 s scrape_timeout, database down or hung
    engine = Client(from_env(url), retry_seconds=0, connect_timeout=3, read_timeout=5).engine
    thread = metrics_module.serve(engine, *listen)
    click.echo(f"serving http://{listen[0]}:{listen[1]}/metrics", err=True)
    thread.join()


@main.command("doctor")
@url_option
@click.option("--json", "as_json", is_flag=True)
def doctor_command(url: str | None, as_json: bool) -> None:
    """Check the server settings dsreg depends on."""
    checks = doctor.diagnose(url)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"[{c.level:>4}] {c.name}: {c.detail}")
    if any(c.level == "FAIL" for c in checks):
        sys.exit(1)


#: bench, torture and demo with --url: the database must be disposable (dsreg_db.testing.target) unless this is given
own_database_option = click.option(
    target_module.FLAG,
    "own_database",
    is_flag=True,
    help="With --url: run even if the database holds tables, sessions or nodes the tool did not create "
    "(it writes test data there, and removes only its own afterwards).",
)


def _client_counts(text: str, option: str) -> tuple[int, ...]:
    """``1,2,4`` as numbers of clients, each at least 1."""
    try:
        counts = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {text!r}", param_hint=option) from None
    if any(n < 1 for n in counts):
        raise click.BadParameter("client counts must be at least 1", param_hint=option)
    return counts


def _tool_target_checked(run: Callable[[], Any]) -> Any:
    """A database the tool refuses is a one-line error naming the flag."""
    try:
        return run()
    except target_module.NotDisposable as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@own_database_option
@click.option("--clients", default=16, show_default=True, help="Client processes per workload.")
@click.option("--seconds", default=5.0, show_default=True, help="Duration of each workload.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report as JSON here.")
@click.option(
    "--sweep",
    default="",
    metavar="N,N,...",
    help="Also measure throughput at each of these numbers of clients (e.g. 1,2,4,8,16).",
)
@click.option(
    "--png",
    "png_path",
    type=click.Path(dir_okay=False),
    help="Also draw a chart here (matplotlib): throughput by clients (needs --sweep) and latency; with --peers, "
    "each workload's ratio to the raw UPDATE and its latency.",
)
@click.option(
    "--peers",
    is_flag=True,
    help="Instead: dsreg's heartbeat and keepalive next to etcd's and ZooKeeper's (private servers from "
    "Debian's etcd-server and zookeeper packages, and kazoo), one table of ratios to the raw UPDATE.",
)
@click.option(
    "--rounds",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --peers: run the whole sequence of workloads this many times, keeping each one's best round.",
)
@click.option(
    "--probes",
    "probes_path",
    type=click.Path(exists=True, dir_okay=False),
    help="With --peers: also measure each procedure this mariadb-client script creates (e.g. "
    "docs/probes/revision_probes.sql), called like the heartbeat or like the keepalive; dropped afterwards.",
)
@click.option(
    "--capacity",
    is_flag=True,
    help="Instead: how many DolphinScheduler-shaped clients (a ~300-byte JSON every second) dsreg, etcd and "
    "ZooKeeper each carry at p99 <= 50 ms with no session lost, and the server CPU per 1,000 of them.",
)
@click.option(
    "--steps",
    default=",".join(str(n) for n in capacity_module.STEPS),
    show_default=True,
    metavar="N,N,...",
    help="With --capacity: the numbers of clients to try, in order (each system stops at its first failure).",
)
def bench(
    url: str | None,
    own_database: bool,
    clients: int,
    seconds: float,
    json_path: str | None,
    sweep: str,
    png_path: str | None,
    peers: bool,
    rounds: int,
    probes_path: str | None,
    capacity: bool,
    steps: str,
) -> None:
    """Throughput and latency of the hot paths, as ratios to a raw UPDATE in the same run."""
    counts = _client_counts(sweep, "--sweep")
    if (rounds > 1 or probes_path) and not peers:
        raise click.UsageError("--rounds and --probes apply to --peers only")
    if capacity:
        if peers or counts or png_path:
            raise click.UsageError("--peers, --sweep and --png do not apply to --capacity")
        ladder = _client_counts(steps, "--steps")
        found = _tool_target_checked(
            lambda: capacity_module.run(url, steps=ladder, seconds=seconds, force=own_database)
        )
        for line in capacity_module.table(found):
            click.echo(line)
        if json_path:
            Path(json_path).write_text(json.dumps(found.as_dict(), indent=2) + "\n")
        return
    if peers:
        if counts:
            raise click.UsageError("--sweep does not apply to --peers")
        script = Path(probes_path).read_text() if probes_path else None
        report = _tool_target_checked(
            lambda: peer_workloads.run(
                url, clients=clients, seconds=seconds, rounds=rounds, probe_script=script, force=own_database
            )
        )
        for line in peer_workloads.table(report):
            click.echo(line)
        if json_path:
            bench_module.write_json(report, json_path)
        if png_path:
            peer_workloads.write_chart(report, png_path)
        return
    report = _tool_target_checked(
        lambda: bench_module.run(
            url, clients=clients, seconds=seconds, out=click.echo, sweep=counts, force=own_database
        )
    )
    if json_path:
        bench_module.write_json(report, json_path)
    if png_path:
        bench_module.write_chart(report, png_path)


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@own_database_option
@click.option("--clients", default=50, show_default=True)
@click.option("--ttl", default=3.0, show_default=True, help="Session lease, seconds.")
@click.option("--seconds", default=30.0, show_default=True)
@click.option("--control/--no-control", default=True, help="Also run the DolphinScheduler 3.1 replica.")
@click.option("--skew", default=5.0, show_default=True, help="Clock skew of one control client, seconds.")
@click.option("--json", "as_json", is_flag=True)
def torture(
    url: str | None,
    own_database: bool,
    clients: int,
    ttl: float,
    seconds: float,
    control: bool,
    skew: float,
    as_json: bool,
) -> None:
    """Heartbeat/reap torture with a loss and zombie checker; dsreg next to the DolphinScheduler 3.1 replica."""
    reports = _tool_target_checked(
        lambda: torture_module.compare(
            url,
            clients=clients,
            ttl_ms=int(ttl * 1000),
            seconds=seconds,
            control=control,
            skew_s=skew,
            force=own_database,
        )
    )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
        return
    for r in reports:
        click.echo(
            f"{r.system:<6} clients {r.clients}  heartbeats {r.heartbeats}  max stall {r.max_stall_ms} ms  "
            f"losses {r.losses} ({r.lost_clients} clients)  zombies {r.zombies}  long stalls {r.long_stalls} "
            f"(told expired: {r.long_stalls_reported}, missed: {r.long_stalls_missed})  samples {r.samples}"
        )


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@own_database_option
@click.option("--ttl", default=3.0, show_default=True, help="Session lease of the simulated nodes, seconds.")
def demo(url: str | None, own_database: bool, ttl: float) -> None:
    """Simulate a DolphinScheduler cluster, kill a worker, time its removal."""
    result = _tool_target_checked(lambda: demo_module.run(url, click.echo, ttl, force=own_database))
    click.echo(f"detection time: {result.detection_seconds:.2f} s")


@main.command("demo-fencing")
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@own_database_option
@click.option("--ttl", default=2.0, show_default=True, help="Session lease of the two masters, seconds.")
def demo_fencing(url: str | None, own_database: bool, ttl: float) -> None:
    """Two masters fail over one dead master; the first pauses past its lease and wakes up.

    Once with fenced writes (dsreg_fence_check inside each write's transaction), once without.
    """
    rounds = _tool_target_checked(lambda: fencing_demo.run(url, click.echo, ttl, force=own_database))
    guarded, control = rounds
    click.echo(f"stale writes: {guarded.stale} with the guard, {control.stale} without")


if __name__ == "__main__":
    main()
