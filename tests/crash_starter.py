"""A process that starts runs on request: ``python crash_starter.py DB_URL``.

It opens a client, prints ``ready``, then for each stdin line ``RUN_ID X`` starts
``crash_app.start_target(X)`` under that run id and prints one JSON line: the run id it got
back, or the type of the error it raised. The idempotent-start test drives several of these
at once, releasing them together by writing to all their stdins.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spokehub import Client, Settings
from tests import crash_app


def main(db_url: str) -> None:
    client = Client(settings=Settings(database_url=db_url, poll_interval=0.05))
    print("ready", flush=True)
    for line in sys.stdin:
        run_id, x = line.split()
        try:
            handle = client.start(crash_app.start_target.options(run_id=run_id), int(x))
        except Exception as exc:  # reported to the test, which asserts on the type
            out = {"error": type(exc).__name__, "message": str(exc)}
        else:
            out = {"id": handle.id}
        print(json.dumps(out), flush=True)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1])
