"""Helpers for the record store tests: a deterministic clock, a sample content, a printed
record, raw access to a store's database, and the PostgreSQL test server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doseprint.records.states import EventKind
from doseprint.records.store import RecordStore


class FakeClock:
    """A clock that moves on by one millisecond each time it is read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def sample_content(rx: str = "RX-2026-000123", patient: str = "PT-7F3A") -> dict[str, Any]:
    """A small record content of the shape the print command builds."""
    return {
        "schema": "doseprint.record-content/1",
        "doseprint_version": "0.1.0",
        "prescription": {"id": rx, "sha256": "ab" * 32, "patient": patient},
        "job": {"json_sha256": "cd" * 32, "gcode_sha256": "ef" * 32},
        "tablets": [{"index": 0, "actives": [{"api": "theophylline", "dose_mg": 125.0}]}],
        "materials": [{"tool": 0, "formulation": "theophylline-hpc-30", "lot": "ABC123"}],
        "machine": {"printer": "marlin-dual-175", "port": "socket://127.0.0.1:5555"},
        "note": "Tablette für Frau Müller",  # non-ASCII survives canonical JSON
    }


def printed(store: RecordStore, end: EventKind = "completed") -> str:
    """A record whose print started, logged some lines and ended with ``end``."""
    record_id = store.create(sample_content(), actor="Ana Operator")
    store.append(record_id, "started", {"port": "socket://127.0.0.1:5555"}, "Ana Operator")
    store.append(record_id, "firmware", {"FIRMWARE_NAME": "Marlin 2.1.2"}, "doseprint")
    store.append_many(
        record_id,
        [
            ("lines", {"entries": [[1, "G28", "ok"], [2, "G1 X1", "ok"]], "last_acked": 2}),
            ("progress", {"lines_sent": 3, "last_acked": 3}),
        ],
        "doseprint",
    )
    store.append(record_id, end, {"last_acked": 3}, "doseprint")
    return record_id


def run_together(script: str, argvs: list[list[str]], timeout_s: float = 120) -> list[str]:
    """Run ``python -c script ARGV`` once per argv, all starting at the same moment: each
    child prints ``ready`` once set up and then waits for a line on stdin. Returns each
    child's standard output after ``ready``; a child that fails fails the test."""
    children = [
        subprocess.Popen([sys.executable, "-c", script, *argv], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    outputs = []
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = child.communicate(timeout=timeout_s)
            assert child.returncode == 0, err
            outputs.append(out)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return outputs


def dead_pid() -> int:
    """The pid of a process that has ended and been collected."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def pg_server_url() -> str:
    """The test server's URL; skips (or fails when it is required) without one."""
    url = os.environ.get("DOSEPRINT_TEST_PG", "").strip()
    if not url:
        if os.environ.get("DOSEPRINT_REQUIRE_PG") == "1":
            pytest.fail("DOSEPRINT_REQUIRE_PG=1 but DOSEPRINT_TEST_PG names no PostgreSQL server")
        pytest.skip("no PostgreSQL test server (set DOSEPRINT_TEST_PG or run `make test`)")
    return url


def pass_qc(store: Any, record_id: str) -> None:
    """Record a passed QC (weighed masses within Ph. Eur. 2.9.5), which release needs."""
    store.append(record_id, "qc", {"passed": True, "masses_mg": [400.0, 401.0, 399.0]},
                 "Tess Technician")


def fail_qc(store: Any, record_id: str) -> None:
    store.append(record_id, "qc", {"passed": False, "masses_mg": [400.0, 480.0, 320.0]},
                 "Tess Technician")


class Backend:
    """A record store's URL and a raw connection to its database, for any back end.

    ``execute`` and ``tamper`` change the database directly, as someone with the file
    or a database login could: statements use ``?`` placeholders on both back ends.
    """

    def __init__(self, name: str, url: str, path: str = "") -> None:
        self.name = name
        self.url = url
        self.path = path

    def connect(self) -> Any:
        """A raw DB-API connection (sqlite3 or psycopg), not in autocommit."""
        if self.name == "sqlite":
            import sqlite3

            return sqlite3.connect(self.path)
        import psycopg

        return psycopg.connect(self.url)

    def _sql(self, sql: str) -> str:
        return sql if self.name == "sqlite" else sql.replace("?", "%s")

    def execute(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        """Run statements in one committed transaction."""
        conn = self.connect()
        try:
            for sql, params in statements:
                conn.execute(self._sql(sql), params)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            return [tuple(row) for row in conn.execute(self._sql(sql), params).fetchall()]
        finally:
            conn.close()

    def tamper(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        """Drop the append-only guards, then change the database."""
        drops: list[tuple[str, tuple[object, ...]]] = [
            (f"DROP TRIGGER {guard}" + ("" if self.name == "sqlite" else f" ON {table}"), ())
            for guard, table in GUARDS
        ]
        self.execute(*drops, *statements)

    def indexes(self) -> set[str]:
        if self.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        return {str(row[0]) for row in self.query(sql)}


GUARDS = (
    ("records_no_update", "records"),
    ("records_no_delete", "records"),
    ("events_no_update", "events"),
    ("events_no_delete", "events"),
    ("site_events_no_update", "site_events"),
    ("site_events_no_delete", "site_events"),
    ("event_signatures_no_update", "event_signatures"),
    ("event_signatures_no_delete", "event_signatures"),
)
