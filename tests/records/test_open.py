"""Opening a store: what goes wrong, migrations, and prints found dead on the next start.

Where a store is (URLs, the default file) is in test_location.py."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from doseprint.errors import EXIT_ENVIRONMENT, RecordStoreError
from doseprint.records.store import SCHEMA_VERSION, SYSTEM_ACTOR, open_store

from .helpers import Backend, FakeClock, dead_pid, pass_qc, pg_server_url, printed, sample_content

# Servers that cannot be used


def refused(url: str, secret: str) -> RecordStoreError:
    """Opening ``url`` fails with exit 3, naming the URL without its password."""
    with pytest.raises(RecordStoreError) as info:
        open_store(url, timeout_s=2)
    error = info.value
    text = f"{error} {error.hint}"
    assert error.exit_code == EXIT_ENVIRONMENT
    assert secret not in text
    assert url.replace(secret, "***") in str(error)
    return error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_postgresql_server_down() -> None:
    url = f"postgresql://pharmacy:s3cret-pw@127.0.0.1:{free_port()}/records"
    error = refused(url, "s3cret-pw")
    assert error.hint is not None and "server" in error.hint


def test_postgresql_unknown_host() -> None:
    refused("postgresql://pharmacy:s3cret-pw@no-such-host.invalid/records", "s3cret-pw")


def test_postgresql_wrong_password() -> None:
    server = pg_server_url()
    user = server.split("//", 1)[1].split(":", 1)[0]
    host = server.split("@", 1)[1]
    error = refused(f"postgresql://{user}:wrong-s3cret@{host}", "wrong-s3cret")
    assert "password" in str(error)


def test_cli_masks_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    from doseprint.cli import main

    url = f"postgresql://pharmacy:s3cret-pw@127.0.0.1:{free_port()}/records"
    with pytest.raises(SystemExit) as done:
        main(["record", "list", "--db", url])
    captured = capsys.readouterr()
    assert done.value.code == EXIT_ENVIRONMENT
    assert "postgresql://pharmacy:***@127.0.0.1" in captured.err
    assert "s3cret-pw" not in captured.out + captured.err
    assert "Traceback" not in captured.err


# Schema versions and migrations


def test_older_store_is_migrated(backend: Backend) -> None:
    """A store made with the first migration only is brought up to date on open."""
    with open_store(backend.url, clock=FakeClock(), schema_version=1) as old:
        assert old.schema_version() == 1
        record_id = printed(old)
        pass_qc(old, record_id)
    assert "events_by_kind" not in backend.indexes()
    with open_store(backend.url, clock=FakeClock()) as store:
        assert store.schema_version() == SCHEMA_VERSION == 3
        assert store.get(record_id).status == "completed"
        store.release(record_id, "Dr Q. Person", "QA release")
        assert store.verify() == []
        assert store.migrate() == []  # idempotent
    assert "events_by_kind" in backend.indexes()
    versions = [row[0] for row in backend.query("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == [1, 2, 3]


def test_migrations_stop_at_the_failing_one(backend: Backend, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """A migration that fails leaves the store as it was (one transaction)."""
    from doseprint.records import store as store_module

    real = store_module.migration_files

    def broken(dialect: str) -> list[str]:
        scripts = real(dialect)
        return [*scripts[:-1], "CREATE INDEX events_by_kind ON no_such_table (x);"]

    open_store(backend.url, schema_version=1).close()
    monkeypatch.setattr(store_module, "migration_files", broken)
    with pytest.raises(RecordStoreError):
        open_store(backend.url)
    monkeypatch.setattr(store_module, "migration_files", real)
    assert [row[0] for row in backend.query("SELECT version FROM schema_version")] == [1]
    with open_store(backend.url) as store:
        assert store.schema_version() == SCHEMA_VERSION


# What goes wrong


def test_folder_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = str(blocker / "records.sqlite")
    with pytest.raises(RecordStoreError, match="unable to open") as info:
        open_store(url)
    assert url in str(info.value)
    assert info.value.hint is not None


def test_not_a_database(db_path: Path) -> None:
    db_path.write_bytes(b"this is a prescription, not a database" * 100)
    with pytest.raises(RecordStoreError, match="not a database") as info:
        open_store(str(db_path))
    assert str(db_path) in str(info.value)


def test_foreign_database(backend: Backend) -> None:
    backend.execute(("CREATE TABLE patients (name TEXT)", ()))
    with pytest.raises(RecordStoreError, match="not a doseprint record store"):
        open_store(backend.url)


def test_newer_schema(backend: Backend) -> None:
    open_store(backend.url).close()
    backend.execute(("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00.000Z')", ()))
    with pytest.raises(RecordStoreError, match="newer doseprint") as info:
        open_store(backend.url)
    assert info.value.exit_code == EXIT_ENVIRONMENT


def test_locked_new_store(db_path: Path) -> None:
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RecordStoreError, match="locked") as info:
            open_store(str(db_path), timeout_s=0.05)
        assert str(db_path) in str(info.value)
    finally:
        holder.close()


def test_write_while_another_holds_the_lock(db_path: Path) -> None:
    with open_store(str(db_path), timeout_s=0.05) as store:
        record_id = store.create(sample_content(), "Ana Operator")
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            assert store.get(record_id).status == "created"  # readers go on (WAL)
            with pytest.raises(RecordStoreError, match="locked"):
                store.append(record_id, "started", {}, "Ana Operator")
        finally:
            holder.close()
        # Once the other writer is gone, the store works again.
        store.append(record_id, "started", {}, "Ana Operator")
        assert store.verify() == []


def test_postgresql_writer_waits_for_the_chain_lock(pg_url: str) -> None:
    """An append waits for another writer of the same record, then gives up (exit 3)."""
    import psycopg

    from doseprint.records.dialect import _lock_key

    with open_store(pg_url, timeout_s=0.3) as store:
        record_id = store.create(sample_content(), "Ana Operator")
        other = store.create(sample_content(), "Ana Operator")
        with psycopg.connect(pg_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(record_id),))
            with pytest.raises(RecordStoreError, match="lock timeout") as info:
                store.append(record_id, "started", {}, "Ana Operator")
            assert info.value.exit_code == EXIT_ENVIRONMENT
            assert info.value.hint is not None and "Another program" in info.value.hint
            # Other records are not held up, and reading goes on.
            store.append(other, "started", {}, "Ana Operator")
            assert store.get(record_id).status == "created"
            holder.rollback()
        store.append(record_id, "started", {}, "Ana Operator")
        assert store.verify() == []


# Prints whose process died


def start_print(url: str, process: dict[str, object] | None, last_acked: int = 41) -> str:
    with open_store(url, clock=FakeClock()) as store:
        record_id = store.create(sample_content(), "Ana Operator")
        data: dict[str, object] = {"port": "/dev/ttyUSB0"}
        if process is not None:
            data["process"] = process
        store.append(record_id, "started", data, "Ana Operator")
        store.append(record_id, "lines", {"entries": [], "last_acked": last_acked}, "doseprint")
        store.append(record_id, "lines", {"entries": []}, "doseprint")
    return record_id


def test_dead_print_is_interrupted_on_next_open(backend: Backend) -> None:
    identity = {"pid": dead_pid(), "host": socket.gethostname()}
    record_id = start_print(backend.url, identity, last_acked=41)
    with open_store(backend.url) as store:
        record = store.get(record_id)
        assert record.status == "interrupted"
        event = record.events[-1]
        assert (event.kind, event.actor) == ("interrupted", SYSTEM_ACTOR)
        assert event.data["last_acked"] == 41
        assert event.data["process"] == identity
        assert store.verify() == []
        # Found once: the next open adds nothing.
        assert store.mark_interrupted_stale() == []


def test_running_print_is_left_alone(backend: Backend) -> None:
    record_id = start_print(backend.url, None)  # the store names this (live) process
    with open_store(backend.url) as store:
        assert store.get(record_id).status == "printing"


def test_print_on_another_host_is_left_alone(backend: Backend) -> None:
    elsewhere = {"pid": dead_pid(), "host": "another-" + socket.gethostname()}
    record_id = start_print(backend.url, elsewhere)
    with open_store(backend.url) as store:
        assert store.get(record_id).status == "printing"


def test_recover_can_be_turned_off(backend: Backend) -> None:
    record_id = start_print(backend.url, {"pid": dead_pid(), "host": socket.gethostname()})
    with open_store(backend.url, recover=False) as store:
        assert store.get(record_id).status == "printing"
        assert store.mark_interrupted_stale() == [record_id]
        assert store.get(record_id).status == "interrupted"


def test_a_print_that_died_before_it_started_is_interrupted(backend: Backend) -> None:
    # The store failed on the started event (and its retry): the record stayed created.
    # The process that made it is named in its content, so the next open finds it.
    identity = {"pid": dead_pid(), "host": socket.gethostname()}
    content = {**sample_content(), "machine": {"printer": "p", "process": identity}}
    with open_store(backend.url, clock=FakeClock()) as store:
        record_id = store.create(content, "Ana Operator")
        alive = store.create({**sample_content(), "machine": {
            "process": {**identity, "pid": os.getpid()}}}, "Ana Operator")
        unnamed = store.create(sample_content(), "Ana Operator")
    with open_store(backend.url) as store:
        record = store.get(record_id)
        assert record.status == "interrupted"
        assert record.events[-1].data["process"] == identity
        assert store.get(alive).status == "created"  # still being set up
        assert store.get(unnamed).status == "created"  # nobody to ask
        assert store.verify() == []
        assert store.mark_interrupted_stale() == []


KILLED_PRINT = """
import sys, time
from doseprint.records.store import open_store
store = open_store(sys.argv[1])
record_id = store.create({"prescription": {"id": "RX-K", "patient": "PT-K"}}, "Ana Operator")
store.append(record_id, "started", {"port": "/dev/ttyUSB0"}, "Ana Operator")
store.append(record_id, "lines", {"entries": [[17, "G1 X1", "ok"]], "last_acked": 17}, "doseprint")
print(record_id, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_print_is_found_interrupted(backend: Backend) -> None:
    """What a kill -9 (or a power cut) leaves behind is on disk and found on the next start."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PRINT, backend.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        record_id = child.stdout.readline().strip()
        with open_store(backend.url) as store:
            assert store.get(record_id).status == "printing"  # still running
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with open_store(backend.url) as store:
        record = store.get(record_id)
        assert record.status == "interrupted"
        assert record.events[-1].data["last_acked"] == 17
        assert store.verify() == []


def test_unreadable_start_is_left_to_verify(backend: Backend) -> None:
    """A started event whose data was altered cannot name a process: nothing is marked,
    and `record verify` reports it."""
    record_id = start_print(backend.url, {"pid": dead_pid(), "host": socket.gethostname()})
    backend.tamper(
        ("UPDATE events SET data = 'not json' WHERE record_id = ? AND seq = 1", (record_id,))
    )
    with open_store(backend.url) as store:
        assert store.mark_interrupted_stale() == []
        (problem,) = store.verify(record_id)
    assert problem.startswith(f"record {record_id}: event 1 (started at ")
    assert problem.endswith("): data is not JSON (altered)")
