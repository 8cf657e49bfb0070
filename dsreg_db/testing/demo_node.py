"""One simulated DolphinScheduler server for ``dsreg demo``: a process that
registers ``/nodes/<role>/<host:port>`` and heartbeats its load as JSON
every second until it gets SIGTERM (clean close) or SIGKILL (a crash).

    python -m dsreg_db.testing.demo_node URL ROLE HOST:PORT TTL_SECONDS
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading

from dsreg_db.registry import Registry


def main(argv: list[str]) -> int:
    url, role, address, ttl = argv[0], argv[1], argv[2], float(argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    path = f"/nodes/{role}/{address}"
    with Registry(url) as registry, registry.session(f"{role}@{address}", ttl=ttl) as session:
        while True:
            load = {
                "cpu": round(random.uniform(0.05, 0.9), 2),
                "memory": round(random.uniform(0.2, 0.8), 2),
                "pid": os.getpid(),
            }
            session.register(path, json.dumps(load, sort_keys=True))
            if stop.wait(1.0):
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
