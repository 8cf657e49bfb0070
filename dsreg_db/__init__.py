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
from dsreg_db.session import Session, SessionState

__all__ = [
    "Client",
    "Compacted",
    "Conflict",
    "DsregError",
    "Event",
    "InvalidArgument",
    "Node",
    "NotOwner",
    "Registry",
    "Session",
    "SessionExpired",
    "SessionState",
    "Unavailable",
]
