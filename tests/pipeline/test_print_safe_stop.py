"""Every way out of a print sends the safe stop and leaves a record that says why.

A print can end on a firmware error, on the record store failing (disk full, database
locked or unreachable), on Ctrl-C or SIGTERM, or on a bug. Each is injected here against
the virtual printer, whose run log must show the heaters switched off after the failure,
and each must end with the exit code of cli.md and a record (or, when the store itself
failed, a record the next start marks ``interrupted``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from doseprint.comms.transport import SerialTransport
from doseprint.comms.virtual import VirtualMarlin, serve_pty
from doseprint.compile import compile_prescription, write_job
from doseprint.errors import (
    EXIT_BUG,
    EXIT_ENVIRONMENT,
    EXIT_RESULT,
    PrintAbortedError,
    RecordStoreError,
    exit_code_for,
)
from doseprint.printing import print_job
from doseprint.records.store import RecordStore, open_store
from helpers.rx import write_rx

posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")

SAFE_STOP = ["M104 S0", "M140 S0", "M84"]


@pytest.fixture(scope="module")
def small_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1), "generic-marlin-1x175"), out)
    return out


@pytest.fixture
def printer() -> Iterator[tuple[VirtualMarlin, str]]:
    stop = threading.Event()
    marlin = VirtualMarlin(sleep=time.sleep)
    path = serve_pty(marlin, stop=stop)
    yield marlin, path
    stop.set()


def ends_with_safe_stop(marlin: VirtualMarlin) -> bool:
    """The printer ran job lines, then the safe stop, and nothing after it."""
    deadline = time.monotonic() + 5.0
    while marlin.accepted[-3:] != SAFE_STOP and time.monotonic() < deadline:
        time.sleep(0.05)  # the server thread may still be reading the last lines
    return len(marlin.accepted) > 10 and marlin.accepted[-3:] == SAFE_STOP


def last_event(db: Path) -> tuple[str, dict[str, Any]]:
    with open_store(str(db), recover=False) as store:
        (summary,) = store.list_records()
        record = store.get(summary.id)
    event = record.events[-1]
    return event.kind, dict(event.data)


def doseprint(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doseprint", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def failing_appends(start: int, stop: int | None = None) -> Any:
    """The store's ``append_many``, raising as a full disk would from its ``start``-th call
    (until its ``stop``-th, if given)."""
    original = RecordStore.append_many
    calls: list[int] = []

    def append_many(store: RecordStore, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) >= start and (stop is None or len(calls) < stop):
            raise RecordStoreError(f"record store {store.url}: database or disk is full")
        return original(store, *args, **kwargs)

    return append_many


@posix_only
def test_a_store_failing_mid_print_still_switches_the_heaters_off(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    marlin, path = printer
    db = tmp_path / "records.sqlite"
    # Appends 1 and 2 are the started and firmware events; from the 8th on, the print
    # log's flushes fail, a few hundred lines into the job.
    monkeypatch.setattr(RecordStore, "append_many", failing_appends(8))
    monkeypatch.setattr("doseprint.printing.STORE_RETRY_S", 0.01)
    with open_store(str(db)) as store, pytest.raises(RecordStoreError) as info:
        print_job(small_job, path, store, operator="T. Tech", answer_timeout_s=5.0)
    assert exit_code_for(info.value) == EXIT_ENVIRONMENT
    assert ends_with_safe_stop(marlin)
    # The record could not say so itself: the log says what it should have said.
    assert "could not be written" in caplog.text and "marks it interrupted" in caplog.text
    monkeypatch.undo()
    with open_store(str(db), recover=False) as store:
        (summary,) = store.list_records()
    assert summary.status == "printing"  # the next start marks it interrupted (below)


@posix_only
def test_a_store_that_recovers_on_the_retry_gets_the_failed_record(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A database locked for a moment mid-print: the print stops (its log could not be
    # kept as it happened), and the retry writes why.
    marlin, path = printer
    db = tmp_path / "records.sqlite"
    monkeypatch.setattr(RecordStore, "append_many", failing_appends(8, stop=10))
    monkeypatch.setattr("doseprint.printing.STORE_RETRY_S", 0.01)
    with open_store(str(db)) as store, pytest.raises(RecordStoreError) as info:
        print_job(small_job, path, store, operator="T. Tech", answer_timeout_s=5.0)
    assert exit_code_for(info.value) == EXIT_ENVIRONMENT
    assert ends_with_safe_stop(marlin)
    monkeypatch.undo()
    kind, data = last_event(db)
    assert kind == "failed" and data["stage"] == "record store"
    assert "database or disk is full" in data["error"]
    assert data["safe_stop_sent"] == SAFE_STOP and data["error_type"] == "RecordStoreError"


@posix_only
def test_a_full_disk_exits_3_and_the_next_start_marks_the_record_interrupted(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
) -> None:
    # Through the command line in its own process, so that process is gone when the
    # next doseprint opens the store.
    marlin, path = printer
    db = tmp_path / "records.sqlite"
    runner = tmp_path / "full_disk.py"
    runner.write_text(textwrap.dedent("""
        import sys
        from doseprint.errors import RecordStoreError
        from doseprint.records.store import RecordStore
        original = RecordStore.append_many
        calls = []
        def append_many(store, *args, **kwargs):
            calls.append(1)
            if len(calls) >= 8:
                raise RecordStoreError(f"record store {store.url}: database or disk is full")
            return original(store, *args, **kwargs)
        RecordStore.append_many = append_many
        from doseprint.cli.main import main
        main(sys.argv[1:])
    """))
    out = subprocess.run([sys.executable, str(runner), "print", str(small_job), "--port", path,
                          "--db", str(db), "--timeout", "5"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == EXIT_ENVIRONMENT, out.stderr
    assert "Traceback" not in out.stderr and "database or disk is full" in out.stderr
    assert "marks it interrupted" in out.stderr
    assert ends_with_safe_stop(marlin)
    listed = doseprint("record", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    (summary,) = json.loads(listed.stdout)
    assert summary["status"] == "interrupted"


@posix_only
def test_ctrl_c_from_a_progress_callback_aborts_safely(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
) -> None:
    marlin, path = printer
    db = tmp_path / "records.sqlite"

    def progress(acked: int) -> None:
        if acked >= 50:
            raise KeyboardInterrupt

    with open_store(str(db)) as store, pytest.raises(PrintAbortedError) as info:
        print_job(small_job, path, store, operator="T. Tech", on_progress=progress)
    assert exit_code_for(info.value) == EXIT_RESULT
    assert ends_with_safe_stop(marlin)
    kind, data = last_event(db)
    assert kind == "aborted" and data["safe_stop_sent"] == SAFE_STOP
    assert 50 <= data["last_acked"] < data["commands_total"]


@posix_only
def test_ctrl_c_outside_the_stream_loop_aborts_safely(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
) -> None:
    # Between the started event and the first line: once reached the printer with nothing
    # to make it safe.
    marlin, path = printer
    db = tmp_path / "records.sqlite"

    def start(record_id: str, total: int) -> None:
        raise KeyboardInterrupt

    with open_store(str(db)) as store, pytest.raises(PrintAbortedError) as info:
        print_job(small_job, path, store, operator="T. Tech", on_start=start)
    assert exit_code_for(info.value) == EXIT_RESULT
    deadline = time.monotonic() + 5.0
    while marlin.accepted != SAFE_STOP and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marlin.accepted == SAFE_STOP
    kind, data = last_event(db)
    assert kind == "aborted" and "stopped by the operator" in data["error"]
    assert data["last_acked"] == 0 and data["safe_stop_sent"] == SAFE_STOP


class _BuggyTransport(SerialTransport):
    """A transport with a bug: its 400th read raises RuntimeError."""

    reads = 0

    def readline(self, timeout_s: float) -> str | None:
        type(self).reads += 1
        if type(self).reads == 400:
            raise RuntimeError("a bug in the transport")
        return super().readline(timeout_s)


@posix_only
def test_a_bug_in_the_stream_loop_still_switches_the_heaters_off(
    small_job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marlin, path = printer
    db = tmp_path / "records.sqlite"
    monkeypatch.setattr("doseprint.printing.SerialTransport", _BuggyTransport)
    with open_store(str(db)) as store, pytest.raises(RuntimeError) as info:
        print_job(small_job, path, store, operator="T. Tech")
    assert exit_code_for(info.value) == EXIT_BUG
    assert ends_with_safe_stop(marlin)
    kind, data = last_event(db)
    assert kind == "failed" and data["stage"] == "internal error"
    assert data["error_type"] == "RuntimeError" and "a bug in the transport" in data["error"]
    assert data["safe_stop_sent"] == SAFE_STOP and data["last_acked"] > 0
