"""One DolphinScheduler-like master for ``dsreg demo-fencing``: it takes the failover lock of a
dead master and writes its failover rows with the lock's fence, until SIGTERM or a refused write.

    python -m dsreg_db.testing.fencing_master URL NAME TTL_SECONDS GUARD(1|0)

Each write is one application transaction on the demo's own table; with GUARD=1 it runs
inside ``session.fenced`` (dsreg_fence_check first), with 0 it is a plain INSERT (the control).
"""

from __future__ import annotations

import signal
import sys
import threading

from sqlalchemy import create_engine, text

from dsreg_db.errors import DsregError
from dsreg_db.registry import Registry
from dsreg_db.urls import normalize

LOCK = "/locks/failover/master-3"
TABLE = "dsreg_demo_failover"
INSERT = text(f"INSERT INTO {TABLE} (writer, fence, guarded) VALUES (:writer, :fence, :guarded)")


def main(argv: list[str]) -> int:
    url, name, ttl, guard = argv[0], argv[1], float(argv[2]), argv[3] == "1"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = create_engine(normalize(url))
    try:
        with Registry(url) as registry, registry.session(name, ttl=ttl) as session:
            fence = session.acquire_lock(LOCK)
            assert fence is not None
            print(f"{name}: took the failover lock, fence {fence}", flush=True)
            row = {"writer": name, "fence": fence, "guarded": guard}
            while not stop.wait(0.4):
                try:
                    if guard:
                        with session.fenced(engine, LOCK, fence) as conn:
                            conn.execute(INSERT, row)
                    else:
                        with engine.begin() as conn:
                            conn.execute(INSERT, row)
                except DsregError as exc:
                    print(f"{name}: write refused, rolled back: {exc}", flush=True)
                    return 3
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
