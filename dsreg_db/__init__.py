"""dsreg-db: a coordination registry inside MySQL/MariaDB (sessions, ephemeral nodes, locks, watches)."""

from dsreg_db.client import Client, Contender, Event, Node
from dsreg_db.errors import (
    Compacted,
    Conflict,
    DsregError,
    InvalidArgument,
    LimitExceeded,
    LockTimeout,
    NotOwner,
    SchemaMissing,
    SessionExpired,
    Unavailable,
)
from dsreg_db.registry import Registry
from dsreg_db.session import Session, SessionState
from dsreg_db.watch import EventType, WatchEvent

__all__ = [
    "Client",
    "Compacted",
    "Conflict",
    "Contender",
    "DsregError",
    "Event",
    "EventType",
    "InvalidArgument",
    "LimitExceeded",
    "LockTimeout",
    "Node",
    "NotOwner",
    "Registry",
    "SchemaMissing",
    "Session",
    "SessionExpired",
    "SessionState",
    "Unavailable",
    "WatchEvent",
]
