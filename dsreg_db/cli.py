"""``dsreg``: the command line. Every command takes ``--url`` (or ``$DSREG_URL``).

Errors print one line on stderr and exit 1 (server-side) or 2 (bad usage);
never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlalchemy.exc

from dsreg_db import admin, apidoc, doctor, grants, migrate
from dsreg_db import bench as bench_module
from dsreg_db import demo as demo_module
from dsreg_db import revision as revision_module
from dsreg_db import torture as torture_module
from dsreg_db.client import Client
from dsreg_db.errors import DsregError
from dsreg_db.metrics import exposition
from dsreg_db.registry import Registry
from dsreg_db.server import ServerFailed, ServerNotFound
from dsreg_db.sqlobjects import ROOT
from dsreg_db.tree import render
from dsreg_db.urls import NoUrl, from_env

F = TypeVar("F", bound=Callable[..., Any])

url_option = click.option("--url", envvar="DSREG_URL", help="Database URL, e.g. mysql://user:pw@host/db ($DSREG_URL).")


class _Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DsregError, NoUrl, ServerNotFound, ServerFailed) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlalchemy.exc.DBAPIError as exc:
            raise click.ClickException(f"database error: {exc.orig}") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {exc}") from None


@click.group(cls=_Cli)
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does.")
def main(verbose: bool) -> None:
    """dsreg-db: a coordination registry inside MySQL/MariaDB."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _client(url: str | None) -> Client:
    return Client(from_env(url), retry_seconds=2.0)


# -- schema --------------------------------------------------------------
definer_option = click.option(
    "--definer", envvar="DSREG_DEFINER", help="Account (user@host) to own the procedures and events ($DSREG_DEFINER)."
)


@main.command()
@url_option
@definer_option
@click.argument("revision", default="head")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL script instead (for the mysql/mariadb client).")
def upgrade(url: str | None, definer: str | None, revision: str, as_sql: bool) -> None:
    """Apply migrations up to REVISION (default: head); safe to run from several hosts at once.

    With --sql, REVISION may be a range FROM:TO (e.g. 0001:head).
    """
    if as_sql:
        click.echo(migrate.offline_sql(revision, definer=definer), nl=False)
        return
    target = from_env(url)
    applied = migrate.upgrade(target, revision, definer=definer)
    click.echo(f"applied {', '.join(applied) if applied else 'nothing'}; at revision {migrate.current(target)}")


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


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 if docs/sql-api.md is out of date instead of writing it.")
def docs(check: bool) -> None:
    """Write docs/sql-api.md from the header comments in sql/ (run in a checkout)."""
    text = apidoc.render()
    if check:
        if not apidoc.DOC.exists() or apidoc.DOC.read_text() != text:
            raise click.ClickException(f"{apidoc.DOC} is out of date: run dsreg docs")
        return
    apidoc.DOC.parent.mkdir(exist_ok=True)
    apidoc.DOC.write_text(text)
    click.echo(f"wrote {apidoc.DOC}")


@main.command()
@click.option("-m", "--message", required=True, help="What the revision changes.")
def revision(message: str) -> None:
    """Freeze what changed in sql/ into a new migration (run in a checkout)."""
    try:
        rev_id, keys = revision_module.write(ROOT, message)
    except revision_module.RevisionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revision {rev_id}: {', '.join(keys)}")


@main.command()
@url_option
@click.argument("account")
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
    """Stream change events under PREFIX, in revision order (45004 if --from is compacted)."""
    client = _client(url)
    rev = client.list_nodes(prefix)[0] if after is None else after
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    while deadline is None or time.monotonic() < deadline:
        for event in client.watch(prefix, rev, 1000):
            rev = event.rev
            if as_json:
                click.echo(json.dumps(event.__dict__))
            else:
                click.echo(f"{event.rev} {event.kind} {event.path} {event.value}")
            seen += 1
            if count is not None and seen >= count:
                return
        time.sleep(interval)


@main.command(context_settings={"ignore_unknown_options": True})
@url_option
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@click.option("--ttl", default=10.0, show_default=True, help="Session lease while holding the lock.")
def lock(url: str | None, name: str, command: tuple[str, ...], timeout: float | None, ttl: float) -> None:
    """Run COMMAND while holding lock NAME: dsreg lock /locks/x -- cmd args...

    Prints the fencing token and passes it to the command as $DSREG_FENCE;
    exits with the command's status.
    """
    with Registry(from_env(url)) as registry, registry.session(f"dsreg-lock@{socket.gethostname()}", ttl) as session:
        fence = session.acquire_lock(name, timeout)
        if fence is None:
            raise click.ClickException(f"lock {name} not acquired within {timeout} s")
        click.echo(f"fence {fence}")
        try:
            status = subprocess.call(list(command), env={**os.environ, "DSREG_FENCE": str(fence)})
        finally:
            session.release_lock(name)
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
    state = admin.status(_client(url).engine)
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


@main.command()
@url_option
def metrics(url: str | None) -> None:
    """Print Prometheus text exposition of the registry's health."""
    click.echo(exposition(_client(url).engine), nl=False)


@main.command("doctor")
@url_option
@click.option("--json", "as_json", is_flag=True)
def doctor_command(url: str | None, as_json: bool) -> None:
    """Check the server settings dsreg depends on."""
    checks = doctor.run(_client(url).engine)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"[{c.level:>4}] {c.name}: {c.detail}")
    if any(c.level == "FAIL" for c in checks):
        sys.exit(1)


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
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
    help="Also draw a chart here: throughput by clients (needs --sweep) and latency (matplotlib).",
)
def bench(
    url: str | None, clients: int, seconds: float, json_path: str | None, sweep: str, png_path: str | None
) -> None:
    """Throughput and latency of the hot paths, as ratios to a raw UPDATE in the same run."""
    try:
        counts = tuple(int(n) for n in sweep.split(",") if n.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {sweep!r}", param_hint="--sweep") from None
    if any(n < 1 for n in counts):
        raise click.BadParameter("client counts must be at least 1", param_hint="--sweep")
    report = bench_module.run(url, clients=clients, seconds=seconds, out=click.echo, sweep=counts)
    if json_path:
        bench_module.write_json(report, json_path)
    if png_path:
        bench_module.write_chart(report, png_path)


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@click.option("--clients", default=50, show_default=True)
@click.option("--ttl", default=3.0, show_default=True, help="Session lease, seconds.")
@click.option("--seconds", default=30.0, show_default=True)
@click.option("--control/--no-control", default=True, help="Also run the DolphinScheduler 3.1 replica.")
@click.option("--skew", default=5.0, show_default=True, help="Clock skew of one control client, seconds.")
@click.option("--json", "as_json", is_flag=True)
def torture(
    url: str | None, clients: int, ttl: float, seconds: float, control: bool, skew: float, as_json: bool
) -> None:
    """Heartbeat/reap torture with a loss and zombie checker; dsreg next to the DolphinScheduler 3.1 replica."""
    reports = torture_module.compare(
        url, clients=clients, ttl_ms=int(ttl * 1000), seconds=seconds, control=control, skew_s=skew
    )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
        return
    for r in reports:
        click.echo(
            f"{r.system:<6} clients {r.clients}  heartbeats {r.heartbeats}  max stall {r.max_stall_ms} ms  "
            f"losses {r.losses} ({r.lost_clients} clients)  zombies {r.zombies}  long stalls {r.long_stalls} "
            f"(told expired: {r.long_stalls_reported})  samples {r.samples}"
        )


@main.command()
@click.option("--url", envvar="DSREG_URL", help="Run against this database instead of a throwaway server.")
@click.option("--ttl", default=3.0, show_default=True, help="Session lease of the simulated nodes, seconds.")
def demo(url: str | None, ttl: float) -> None:
    """Simulate a DolphinScheduler cluster, kill a worker, time its removal."""
    result = demo_module.run(url, click.echo, ttl)
    click.echo(f"detection time: {result.detection_seconds:.2f} s")


if __name__ == "__main__":
    main()
