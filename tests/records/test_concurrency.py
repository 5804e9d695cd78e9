"""Four printing processes write into one store at once and lose nothing.

Each process opens the store, waits until all four are ready, then appends events to
one shared record (the worst case for a hash chain: every append races for the same
head) and runs a print of its own (create, start, log, complete). Afterwards the store
verifies and every event is there exactly once. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter

from doseprint.records.store import open_store

from .helpers import Backend, run_together, sample_content

WRITERS = 4
APPENDS = 20

WRITER = """
import json, sys
from doseprint.records.store import open_store

url, shared, writer, appends = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_store(url, timeout_s=30)
print("ready", flush=True)
sys.stdin.readline()  # everybody starts together
own = store.create({"prescription": {"id": f"RX-{writer}", "patient": "PT"}}, "Ana Operator")
store.append(own, "started", {"port": f"/dev/ttyUSB{writer}"}, "Ana Operator")
for n in range(appends):
    store.append(shared, "progress", {"writer": writer, "n": n}, f"printer-{writer}")
    store.append(own, "lines", {"entries": [[n, "G1 X1", "ok"]], "last_acked": n}, "doseprint")
store.append(own, "completed", {"last_acked": appends - 1}, "Ana Operator")
store.close()
print(json.dumps({"own": own}), flush=True)
"""


def test_four_writers_lose_nothing(backend: Backend) -> None:
    with open_store(backend.url) as store:
        shared = store.create(sample_content(), "Ana Operator")
        store.append(shared, "started", {"port": "/dev/ttyUSB9"}, "Ana Operator")
    outputs = [json.loads(out) for out in run_together(
        WRITER, [[backend.url, shared, str(w), str(APPENDS)] for w in range(WRITERS)])]

    with open_store(backend.url) as store:
        assert store.verify() == []
        events = store.get(shared).events
        assert [e.seq for e in events] == list(range(len(events)))
        seen = Counter(
            (e.data["writer"], e.data["n"]) for e in events if e.kind == "progress"
        )
        assert seen == Counter({(w, n): 1 for w in range(WRITERS) for n in range(APPENDS)})
        # Each writer's own appends kept their order within the shared chain.
        for w in range(WRITERS):
            mine = [e.data["n"] for e in events if e.data.get("writer") == w]
            assert mine == list(range(APPENDS))
        own_ids = {o["own"] for o in outputs}
        assert len(own_ids) == WRITERS
        for record_id in own_ids:
            record = store.get(record_id)
            assert record.status == "completed"
            assert [e.data["last_acked"] for e in record.events if e.kind == "lines"] == list(
                range(APPENDS)
            )
        assert len(store.list_records()) == WRITERS + 1
