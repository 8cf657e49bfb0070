"""dsreg-db: a coordination registry inside MySQL/MariaDB (sessions, ephemeral nodes, locks, watches)."""

from dsreg_db.client import Client, Event, Node
from dsreg_db.errors import (
    Compacted,
    Conflict,
    DsregError,
    InvalidArgument,
    NotOwner,
    SessionExpired,
    Unavailable,
)
from dsreg_db.registry import Registry
from dsreg_db.session import LockTimeout, Session, SessionState
from dsreg_db.watch import EventType, WatchEvent

__all__ = [
    "Client",
    "Compacted",
    "Conflict",
    "DsregError",
    "Event",
    "EventType",
    "InvalidArgument",
    "LockTimeout",
    "Node",
    "NotOwner",
    "Registry",
    "Session",
    "SessionExpired",
    "SessionState",
    "Unavailable",
    "WatchEvent",
]
