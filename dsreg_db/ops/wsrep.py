"""What ``dsreg doctor`` reads from a Galera node's ``wsrep_provider_options``: the two provider settings
dsreg's guarantees depend on, each measured on a 3-node loopback cluster (tests/test_galera.py).

* ``gcs.fc_limit``: with Galera's default (16) 30 heartbeating clients froze the whole cluster for about
  50 s in 3 of 3 runs: an applier waited on a row lock held by a local transaction whose write set was
  still queued to be sent, the receive queue passed the limit, flow control paused sending, and that
  write set never went out to fail certification and release the lock. With 256: 0 of 3.
* ``evs.suspect_timeout``: a lost node stalls every commit of the cluster until the view change evicts
  it, which takes this long (5 s by default) and a little more. A session whose ttl is shorter cannot be
  renewed through the stall, so its client must treat it as lost, as a ZooKeeper session whose timeout is
  shorter than a leader election expires."""

from __future__ import annotations

import re

FC_LIMIT_MIN = 256
#: a node loss stalls commits for evs.suspect_timeout plus the view change: 6.0-6.4 s measured with PT5S
VIEW_CHANGE_SECONDS = 1.5
DEFAULT_SUSPECT_TIMEOUT = 5.0

_DURATION = re.compile(r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")


def parse_options(raw: str | None) -> dict[str, str]:
    """``"a.b = 1; c = x"`` as ``{"a.b": "1", "c": "x"}`` (the format of wsrep_provider_options)."""
    options: dict[str, str] = {}
    for item in (raw or "").split(";"):
        key, sep, value = item.partition("=")
        if sep:
            options[key.strip()] = value.strip()
    return options


def seconds(duration: str) -> float | None:
    """An ISO 8601 duration as Galera writes them (``PT5S``, ``PT1.5S``, ``P1D``), in seconds."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    d, h, m, s = (match.group(k) for k in ("d", "h", "m", "s"))
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def flow_control_problem(options: dict[str, str]) -> str | None:
    """Why this node's flow control may freeze the cluster under dsreg's load, or None."""
    raw = options.get("gcs.fc_limit")
    try:
        limit = int(raw) if raw is not None else None
    except ValueError:
        return f"gcs.fc_limit={raw} is not a number"
    if limit is not None and limit >= FC_LIMIT_MIN:
        return None
    return (
        f"gcs.fc_limit={raw}: with concurrent heartbeats flow control froze a test cluster for ~50 s "
        f"(3 of 3 runs at 16, 0 of 3 at {FC_LIMIT_MIN}); set wsrep_provider_options='gcs.fc_limit={FC_LIMIT_MIN}' "
        "in my.cnf (SET GLOBAL changes it until the restart)"
    )


def stall_seconds(options: dict[str, str]) -> float:
    """How long a lost node stalls the cluster's commits: its eviction time plus the view change."""
    raw = options.get("evs.suspect_timeout")
    suspect = seconds(raw) if raw is not None else None
    return (suspect if suspect is not None else DEFAULT_SUSPECT_TIMEOUT) + VIEW_CHANGE_SECONDS


def failure_detection_problem(options: dict[str, str], shortest_ttl_ms: int | None) -> tuple[bool, str]:
    """(problem?, detail): whether live sessions have a ttl the commit stall of a node loss outlasts."""
    stall = stall_seconds(options)
    advice = (
        f"a lost node stalls every commit for ~{stall:.1f} s (evs.suspect_timeout="
        f"{options.get('evs.suspect_timeout', 'PT5S')} + the view change), so give sessions a ttl above "
        f"{stall:.1f} s or lower evs.suspect_timeout"
    )
    if shortest_ttl_ms is None:
        return False, f"no live sessions; {advice}"
    if shortest_ttl_ms / 1000 <= stall:
        return (
            True,
            f"the shortest live session ttl is {shortest_ttl_ms} ms: its client will treat it as lost when a "
            f"node is; {advice}",
        )
    return False, f"the shortest live session ttl is {shortest_ttl_ms} ms; {advice}"
