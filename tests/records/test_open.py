"""Opening a store: where it is, what goes wrong, and prints found dead on the next start."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from doseprint.errors import EXIT_ENVIRONMENT, InputError, RecordStoreError
from doseprint.records.store import (
    SYSTEM_ACTOR,
    open_store,
    process_alive,
    process_identity,
    resolve_store_url,
)

from .helpers import FakeClock, sample_content

# URLs and defaults


def test_dose_print_db_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "from-env.sqlite"
    monkeypatch.setenv("DOSEPRINT_DB", str(path))
    with open_store() as store:
        assert store.url == str(path)
        store.create(sample_content(), "Ana Operator")
    assert path.is_file()
    # An explicit URL wins over the environment.
    other = tmp_path / "explicit.sqlite"
    with open_store(str(other)) as store:
        assert store.url == str(other)
        assert store.list_records() == []


def test_default_store_in_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOSEPRINT_DB", raising=False)
    data_dir = tmp_path / "data" / "doseprint"
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *args, **kwargs: str(data_dir))
    with open_store(None) as store:
        assert store.url == str(data_dir / "records.sqlite")
    assert (data_dir / "records.sqlite").is_file()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_store_url("sqlite:///rel.sqlite") == ("sqlite:///rel.sqlite", "rel.sqlite")
    absolute = tmp_path / "abs.sqlite"
    assert resolve_store_url(f"sqlite:///{absolute}")[1] == str(absolute)
    assert resolve_store_url(":memory:")[1] == ":memory:"
    assert resolve_store_url("sqlite://")[1] == ":memory:"
    with open_store("sqlite:///rel.sqlite") as store:
        store.create(sample_content(), "Ana Operator")
    assert (tmp_path / "rel.sqlite").is_file()


def test_postgresql_not_in_this_version() -> None:
    with pytest.raises(RecordStoreError, match="PostgreSQL") as info:
        open_store("postgresql://pharmacy:s3cret@db.example.org/records")
    assert info.value.exit_code == EXIT_ENVIRONMENT
    assert "s3cret" not in str(info.value)
    assert "postgresql://pharmacy:***@db.example.org/records" in str(info.value)


def test_unknown_scheme() -> None:
    with pytest.raises(InputError, match="mysql://"):
        open_store("mysql://host/records")


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


def test_foreign_database(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE patients (name TEXT)")
    conn.close()
    with pytest.raises(RecordStoreError, match="not a doseprint record store"):
        open_store(str(db_path))


def test_newer_schema(db_path: Path) -> None:
    open_store(str(db_path)).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00.000Z')")
    conn.commit()
    conn.close()
    with pytest.raises(RecordStoreError, match="newer doseprint"):
        open_store(str(db_path))


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


# Prints whose process died


def dead_pid() -> int:
    """The pid of a process that has ended and been collected."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def start_print(db_path: Path, process: dict[str, object] | None, last_acked: int = 41) -> str:
    with open_store(str(db_path), clock=FakeClock()) as store:
        record_id = store.create(sample_content(), "Ana Operator")
        data: dict[str, object] = {"port": "/dev/ttyUSB0"}
        if process is not None:
            data["process"] = process
        store.append(record_id, "started", data, "Ana Operator")
        store.append(record_id, "lines", {"entries": [], "last_acked": last_acked}, "doseprint")
        store.append(record_id, "lines", {"entries": []}, "doseprint")
    return record_id


def test_dead_print_is_interrupted_on_next_open(db_path: Path) -> None:
    identity = {"pid": dead_pid(), "host": socket.gethostname()}
    record_id = start_print(db_path, identity, last_acked=41)
    with open_store(str(db_path)) as store:
        record = store.get(record_id)
        assert record.status == "interrupted"
        event = record.events[-1]
        assert (event.kind, event.actor) == ("interrupted", SYSTEM_ACTOR)
        assert event.data["last_acked"] == 41
        assert event.data["process"] == identity
        assert store.verify() == []
        # Found once: the next open adds nothing.
        assert store.mark_interrupted_stale() == []


def test_running_print_is_left_alone(db_path: Path) -> None:
    record_id = start_print(db_path, None)  # the store names this (live) process
    with open_store(str(db_path)) as store:
        assert store.get(record_id).status == "printing"


def test_print_on_another_host_is_left_alone(db_path: Path) -> None:
    record_id = start_print(db_path, {"pid": dead_pid(), "host": "another-" + socket.gethostname()})
    with open_store(str(db_path)) as store:
        assert store.get(record_id).status == "printing"


def test_recover_can_be_turned_off(db_path: Path) -> None:
    record_id = start_print(db_path, {"pid": dead_pid(), "host": socket.gethostname()})
    with open_store(str(db_path), recover=False) as store:
        assert store.get(record_id).status == "printing"
        assert store.mark_interrupted_stale() == [record_id]
        assert store.get(record_id).status == "interrupted"


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
def test_killed_print_is_found_interrupted(db_path: Path) -> None:
    """What a kill -9 (or a power cut) leaves behind is on disk and found on the next start."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PRINT, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        record_id = child.stdout.readline().strip()
        with open_store(str(db_path)) as store:
            assert store.get(record_id).status == "printing"  # still running
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with open_store(str(db_path)) as store:
        record = store.get(record_id)
        assert record.status == "interrupted"
        assert record.events[-1].data["last_acked"] == 17
        assert store.verify() == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_reused_pid_and_reboot_count_as_dead() -> None:
    mine = process_identity()
    assert process_alive(mine) is True
    assert process_alive({**mine, "proc_start": mine["proc_start"] + 1}) is False
    assert process_alive({**mine, "boot_id": "another-boot"}) is False
    assert process_alive({"pid": mine["pid"]}) is None
    assert process_alive({**mine, "pid": dead_pid()}) is False
