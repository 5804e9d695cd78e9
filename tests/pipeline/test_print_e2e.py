"""Printing through the real command line to the virtual printer, on its happy and its
failure paths: every line arrives once and in order, and the record says what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES
from doseprint.comms.framing import program_from_gcode
from doseprint.comms.preflight import plan_preflight
from doseprint.comms.protocol import commands_from_gcode
from doseprint.comms.virtual import Faults, VirtualMarlin, serve_pty
from doseprint.compile import compile_prescription, write_job
from doseprint.printing import Temperatures
from helpers.rx import write_rx

posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")


def doseprint(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doseprint", *args], capture_output=True,
                          text=True, timeout=timeout)


def records(db: Path) -> list[dict[str, str]]:
    out = doseprint("record", "list", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def show(db: Path, record_id: str) -> dict[str, object]:
    out = doseprint("record", "show", record_id, "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def small_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1), "generic-marlin-1x175"), out)
    return out


@pytest.fixture(scope="module")
def big_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big") / "job"
    write_job(compile_prescription(EXAMPLES / "theophylline-sustained.toml",
                                   "generic-marlin-1x175"), out)
    return out


class VirtualPrinter:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "doseprint", "virtual-printer", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().strip()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def pty_printer(tmp_path: Path) -> Iterator[tuple[VirtualPrinter, Path]]:
    log = tmp_path / "accepted.log"
    printer = VirtualPrinter("--pty", "--log", str(log), "--resend-every", "137",
                             "--advanced-ok")
    yield printer, log
    printer.stop()


@posix_only
def test_print_over_a_pty_delivers_every_line_once_in_order(
    small_job: Path, pty_printer: tuple[VirtualPrinter, Path], tmp_path: Path
) -> None:
    printer, log = pty_printer
    assert printer.address.startswith("/dev/")
    db = tmp_path / "records.sqlite"
    out = doseprint("print", str(small_job), "--port", printer.address, "--db", str(db),
                    "--operator", "A. Pharmacist", "--lot", "T0=LOT-42")
    assert out.returncode == 0, out.stderr
    commands = commands_from_gcode((small_job / "job.gcode").read_text())
    # Exactly once and in order, although every 137th line was asked for again; before the
    # job, the handshake and the pre-flight's probes.
    ran = log.read_text().splitlines()
    probes = [p.command for p in plan_preflight(program_from_gcode(
        (small_job / "job.gcode").read_text()), "marlin").probes]
    assert probes and ran[: 2 + len(probes)] == ["M115", *probes, "M110 N0"]
    assert [c for c in ran[2 + len(probes):] if c != "M105"] == commands
    (summary,) = records(db)
    assert summary["status"] == "completed"
    assert summary["prescription_id"] == "RX-TEST-1"
    record = show(db, summary["id"][:8])
    content = record["content"]
    assert isinstance(content, dict)
    assert content["materials"][0]["lot"] == "LOT-42"
    assert content["operator"] == "A. Pharmacist"
    job = json.loads((small_job / "job.json").read_text())
    assert content["job"]["gcode_sha256"] == job["gcode"]["sha256"]
    assert content["tablets"][0]["actives"][0]["gcode_dose_mg"] == pytest.approx(100.0, rel=0.01)
    events = record["events"]
    assert isinstance(events, list)
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["created", "started"] and kinds[-1] == "completed"
    assert "firmware" in kinds
    completed = events[-1]["data"]
    assert completed["commands_acked"] == len(commands)
    assert completed["resends"] >= len(commands) // 137
    # The printer reported ADVANCED_OK: the profile's four lines went ahead.
    assert completed["window"] == completed["max_in_flight"] == 4
    logged = [entry for e in events if e["kind"] == "lines" for entry in e["data"]["entries"]]
    sent = [entry["n"] for entry in logged if entry["kind"] == "sent"]
    assert set(range(1, len(commands) + 1)) <= set(sent)


@posix_only
def test_a_printer_lost_mid_print_leaves_a_failed_record(
    big_job: Path, tmp_path: Path
) -> None:
    log = tmp_path / "accepted.log"
    port = _free_port()
    vp = subprocess.Popen([sys.executable, "-m", "doseprint", "virtual-printer", "--tcp",
                           str(port), "--log", str(log)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    assert vp.stdout is not None
    vp.stdout.readline()
    db = tmp_path / "records.sqlite"
    job = subprocess.Popen([sys.executable, "-m", "doseprint", "print", str(big_job),
                            "--port", f"socket://127.0.0.1:{port}", "--db", str(db),
                            "--timeout", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and len(log.read_text().splitlines()) > 2000:
                break
            time.sleep(0.02)
        vp.send_signal(signal.SIGKILL)
        vp.wait(timeout=10)
        _, err = job.communicate(timeout=60)
    finally:
        for p in (vp, job):
            if p.poll() is None:
                p.kill()
                p.wait()
        if vp.stdout is not None:
            vp.stdout.close()
    assert job.returncode == 1, err
    assert "Traceback" not in err
    (summary,) = records(db)
    assert summary["status"] == "failed"
    record = show(db, summary["id"])
    events = record["events"]
    assert isinstance(events, list)
    failed = events[-1]
    assert failed["kind"] == "failed"
    accepted = len(log.read_text().splitlines()) - 2  # less M115 and M110
    assert 0 < failed["data"]["last_acked"] <= accepted


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_port_that_cannot_be_opened_exits_3_and_is_recorded(
    small_job: Path, tmp_path: Path
) -> None:
    db = tmp_path / "records.sqlite"
    out = doseprint("print", str(small_job), "--port", str(tmp_path / "no-such-tty"),
                    "--db", str(db))
    assert out.returncode == 3, out.stderr
    assert "no-such-tty" in out.stderr and "Traceback" not in out.stderr
    (summary,) = records(db)
    assert summary["status"] == "failed"


def test_a_changed_job_is_refused_before_any_record(small_job: Path, tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "job"
    shutil.copytree(small_job, job)
    gcode = job / "job.gcode"
    gcode.write_text(gcode.read_text().replace("E0.8 ", "E1.8 ", 1))
    db = tmp_path / "records.sqlite"
    out = doseprint("print", str(job), "--port", "socket://127.0.0.1:9", "--db", str(db))
    assert out.returncode == 2
    assert "job.gcode does not match the SHA-256" in out.stderr
    assert records(db) == []


def test_a_changed_printer_profile_is_refused(small_job: Path, tmp_path: Path) -> None:
    site = tmp_path / "printers"
    site.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "printer_profiles" / "generic-marlin-1x175.toml"
    (site / shipped.name).write_text(shipped.read_text().replace("retract_mm = 0.8",
                                                                 "retract_mm = 1.2"))
    out = doseprint("print", str(small_job), "--port", "socket://127.0.0.1:9",
                    "--db", str(tmp_path / "r.sqlite"), "--printers", str(site))
    assert out.returncode == 2
    assert "printer.sha256" in out.stderr


@pytest.mark.parametrize("lot", ["T0", "X0=1", "T1=LOT", "T0="])
def test_bad_lots_are_input_errors(small_job: Path, tmp_path: Path, lot: str) -> None:
    out = doseprint("print", str(small_job), "--port", "socket://127.0.0.1:9",
                    "--db", str(tmp_path / "r.sqlite"), "--lot", lot)
    assert out.returncode == 2
    assert "--lot" in out.stderr


@pytest.mark.parametrize("db", [":memory:", "sqlite://", "sqlite:///:memory:"])
def test_a_store_that_keeps_nothing_is_refused_for_a_print(
    small_job: Path, tmp_path: Path, db: str
) -> None:
    # The record of a print must outlive it: an in-memory store vanishes at exit.
    for how in ("--db", "DOSEPRINT_DB"):
        args = ["print", str(small_job), "--port", "socket://127.0.0.1:9"]
        env = None
        if how == "--db":
            args += ["--db", db]
        else:
            env = {**os.environ, "DOSEPRINT_DB": db}
        out = subprocess.run([sys.executable, "-m", "doseprint", *args], capture_output=True,
                             text=True, timeout=120, env=env, cwd=tmp_path, check=False)
        assert out.returncode == 2, out.stderr
        assert "--db" in out.stderr and "Traceback" not in out.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == []


def _start_print(job: Path, db: Path, log: Path) -> tuple[subprocess.Popen[str],
                                                           subprocess.Popen[str]]:
    port = _free_port()
    vp = subprocess.Popen([sys.executable, "-m", "doseprint", "virtual-printer", "--tcp",
                           str(port), "--log", str(log)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    assert vp.stdout is not None
    vp.stdout.readline()
    pr = subprocess.Popen([sys.executable, "-m", "doseprint", "print", str(job), "--port",
                           f"socket://127.0.0.1:{port}", "--db", str(db)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) > 2000:
            break
        time.sleep(0.02)
    return vp, pr


def _end(*processes: subprocess.Popen[str]) -> None:
    for p in processes:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=30)


@posix_only
def test_sigterm_aborts_the_print_safely(big_job: Path, tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    log = tmp_path / "accepted.log"
    vp, pr = _start_print(big_job, db, log)
    try:
        pr.send_signal(signal.SIGTERM)
        _, err = pr.communicate(timeout=60)
    finally:
        _end(vp, pr)
    assert pr.returncode == 1 and "Traceback" not in err
    (summary,) = records(db)
    assert summary["status"] == "aborted"
    # The safe stop reached the printer after the last job line.
    assert log.read_text().splitlines()[-3:] == ["M104 S0", "M140 S0", "M84"]


@posix_only
def test_sigkill_leaves_an_interrupted_record_on_the_next_start(
    big_job: Path, tmp_path: Path
) -> None:
    db = tmp_path / "records.sqlite"
    log = tmp_path / "accepted.log"
    vp, pr = _start_print(big_job, db, log)
    try:
        pr.send_signal(signal.SIGKILL)
        pr.wait(timeout=30)
    finally:
        _end(vp, pr)
    (summary,) = records(db)
    assert summary["status"] == "interrupted"
    record = show(db, summary["id"])
    events = record["events"]
    assert isinstance(events, list)
    assert events[-1]["kind"] == "interrupted"
    assert events[-1]["data"]["last_acked"] > 0


def test_release_reject_verify_export(small_job: Path, tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    log = tmp_path / "accepted.log"
    port = _free_port()
    vp = VirtualPrinter("--tcp", str(port), "--log", str(log))
    try:
        out = doseprint("print", str(small_job), "--port", f"socket://127.0.0.1:{port}",
                        "--db", str(db), "--operator", "A. Pharmacist")
        assert out.returncode == 0, out.stderr
    finally:
        vp.stop()
    (summary,) = records(db)
    rid = summary["id"]
    assert doseprint("record", "verify", "--db", str(db)).returncode == 0
    export = tmp_path / "record.json"
    assert doseprint("record", "export", rid, "--out", str(export), "--db", str(db)).returncode == 0
    assert json.loads(export.read_text())["id"] == rid
    assert doseprint("record", "export", rid, "--out", str(tmp_path / "r.txt"),
                     "--db", str(db)).returncode == 2
    refused = doseprint("record", "release", rid[:8], "--by", "B. Pharmacist", "--meaning",
                        "QA release for dispensing", "--db", str(db))
    assert refused.returncode == 1 and "has no QC" in refused.stderr
    weighed = json.loads((small_job / "job.json").read_text())
    designed = sum(a["design_volume_mm3"] for a in weighed["tablets"][0]["actives"]) * \
        weighed["tools"][0]["density_g_cm3"]
    targets = doseprint("record", "qc", rid, "--targets", "--db", str(db))
    assert targets.returncode == 0 and f"{designed:.1f}" in targets.stdout, targets.stderr
    # A mass typed in grams is refused, nothing written.
    grams = doseprint("record", "qc", rid, "--mass-mg", f"{designed / 1000:.4f}", "--by",
                      "T. Tech", "--db", str(db))
    assert grams.returncode == 2 and "--mass-mg[0]" in grams.stderr, grams.stderr
    failing = doseprint("record", "qc", rid, "--mass-mg", f"{designed * 0.8:.1f}", "--by",
                        "T. Tech", "--db", str(db))
    # One tablet is always uniform with itself; its estimated dose (80 % of the
    # prescription) is what fails it. The failure is recorded, and the command exits 1.
    assert failing.returncode == 1, failing.stderr
    assert "QC FAILED" in failing.stdout and "of the prescribed" in failing.stderr
    # A failed QC is final: weighing again needs an investigation.
    again = doseprint("record", "qc", rid, "--mass-mg", f"{designed * 1.01:.1f}", "--by",
                      "T. Tech", "--db", str(db))
    assert again.returncode == 2 and "failed QC is final" in again.stderr
    opened = doseprint("record", "investigate", rid, "--by", "Q. Person", "--reason",
                       "tablet weighed on a dirty pan", "--db", str(db))
    assert opened.returncode == 0, opened.stderr
    qc = doseprint("record", "qc", rid, "--mass-mg", f"{designed * 1.01:.1f}", "--by",
                   "T. Tech", "--db", str(db))
    assert qc.returncode == 0 and "QC PASSED" in qc.stdout, qc.stdout + qc.stderr
    bad = doseprint("record", "qc", rid, "--mass-mg", "heavy", "--by", "T. Tech",
                    "--db", str(db))
    assert bad.returncode == 2
    closed = doseprint("record", "investigate", rid, "--close", "--by", "Q. Person",
                       "--outcome", "pan cleaned; re-weighed within limits", "--db", str(db))
    assert closed.returncode == 0, closed.stderr
    report = tmp_path / "batch.html"
    assert doseprint("record", "export", rid, "--out", str(report), "--db",
                     str(db)).returncode == 0
    assert rid in report.read_text() and "https://" not in report.read_text()
    rel = doseprint("record", "release", rid[:8], "--by", "B. Pharmacist", "--meaning",
                    "QA release for dispensing", "--db", str(db))
    assert rel.returncode == 0, rel.stderr
    shown = doseprint("record", "show", rid, "--db", str(db)).stdout
    assert "B. Pharmacist" in shown and "QA release for dispensing" in shown
    assert records(db)[0]["status"] == "released"
    # Alter the store behind doseprint's back: verify must fail with exit 1.
    import sqlite3

    with sqlite3.connect(db) as conn:
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                               "WHERE type = 'trigger'")]
        for name in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("UPDATE events SET actor = 'someone else' WHERE seq = 0")
    bad = doseprint("record", "verify", "--db", str(db))
    assert bad.returncode == 1
    assert rid in bad.stderr


def test_release_of_a_failed_print_is_refused(small_job: Path, tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    out = doseprint("print", str(small_job), "--port", str(tmp_path / "no-such-tty"),
                    "--db", str(db))
    assert out.returncode == 3
    (summary,) = records(db)
    refused = doseprint("record", "release", summary["id"], "--by", "B. Pharmacist",
                        "--meaning", "release", "--db", str(db))
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr


@posix_only
@pytest.mark.parametrize(("fault", "words"), [("--halt-after", "halt"),
                                              ("--reset-after", "restart")])
def test_a_firmware_halt_or_reset_ends_with_exit_1_and_a_failed_record(
    small_job: Path, tmp_path: Path, fault: str, words: str
) -> None:
    log = tmp_path / "accepted.log"
    printer = VirtualPrinter("--pty", "--log", str(log), fault, "300")
    try:
        db = tmp_path / "records.sqlite"
        out = doseprint("print", str(small_job), "--port", printer.address, "--db", str(db),
                        "--timeout", "5")
    finally:
        printer.stop()
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (summary,) = records(db)
    assert summary["status"] == "failed"
    events = show(db, summary["id"])["events"]
    assert isinstance(events, list)
    last = events[-1]
    assert last["kind"] == "failed" and words in last["data"]["error"].lower()
    assert 290 <= last["data"]["last_acked"] <= 300
    assert last["data"]["safe_stop_sent"][:1] == ["M104 S0"]


# Each fault over a real pseudo-terminal, through the command line. The virtual printer
# runs in this process (its accepted list is the proof of delivery); the print is a
# `doseprint print` process, so exit codes and the record are the real ones.


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _print_to(printer: VirtualMarlin, stop: threading.Event, job: Path, db: Path,
              timeout_s: float) -> subprocess.CompletedProcess[str]:
    path = serve_pty(printer, stop=stop)
    return doseprint("print", str(job), "--port", path, "--db", str(db),
                     "--timeout", str(timeout_s))


def _host_lines(job: Path) -> set[str]:
    """What the host sends besides the job: the handshake, the numbering reset, pings and
    temperature polls (M105: the test jobs use none) and the pre-flight's probes."""
    program = program_from_gcode((job / "job.gcode").read_text())
    assert "M105" not in program.commands
    probes = {probe.command for probe in plan_preflight(program, "marlin").probes}
    assert not probes & set(program.commands)
    return {"M115", "M110 N0", "M105", *probes}


def _program(printer: VirtualMarlin, job: Path) -> list[str]:
    """What the printer ran, less what the host sent besides the job."""
    host = _host_lines(job)
    return [c for c in printer.accepted if c not in host]


@posix_only
@pytest.mark.parametrize(
    ("faults", "timeout_s"),
    [
        ({"resend_every": 50}, 5.0),
        ({"resend_every": 150, "advanced_ok": True}, 5.0),
        # Fractions of the job's length: each fault fires once, two thirds of the way in.
        ({"drop_ok_every": 0.67}, 1.0),
        ({"corrupt_ok_every": 0.67}, 1.0),
        ({"busy_every": 0.67, "busy_s": 2.5}, 2.5),
    ],
    ids=["resend-every", "resend-every-window-4", "drop-ok", "corrupt-ok", "busy"],
)
def test_recoverable_faults_over_a_pty_deliver_every_line_once_in_order(
    small_job: Path, tmp_path: Path, stop: threading.Event, faults: dict[str, Any],
    timeout_s: float,
) -> None:
    commands = commands_from_gcode((small_job / "job.gcode").read_text())
    faults = {k: int(v * len(commands)) if k.endswith("_every") and v < 1 else v
              for k, v in faults.items()}
    advanced_ok = bool(faults.pop("advanced_ok", False))
    printer = VirtualMarlin(sleep=time.sleep, advanced_ok=advanced_ok, faults=Faults(**faults))
    db = tmp_path / "records.sqlite"
    out = _print_to(printer, stop, small_job, db, timeout_s)
    assert out.returncode == 0, out.stderr
    assert _program(printer, small_job) == commands
    assert printer.overflows == 0 and printer.rx_peak <= printer.rx_buffer_lines
    (summary,) = records(db)
    assert summary["status"] == "completed"
    events = show(db, summary["id"])["events"]
    assert isinstance(events, list)
    completed = events[-1]["data"]
    assert completed["commands_acked"] == len(commands)
    assert completed["window"] == (4 if advanced_ok else 1)
    assert completed["max_in_flight"] == completed["window"]
    logged = [entry for e in events if e["kind"] == "lines" for entry in e["data"]["entries"]]
    kinds = {entry["kind"] for entry in logged}
    if "resend_every" in faults:
        assert completed["resends"] >= len(commands) // faults["resend_every"]
    if "drop_ok_every" in faults or "corrupt_ok_every" in faults:
        assert "timeout" in kinds  # found by the ping, recovered without running twice
    if "busy_every" in faults:
        assert "busy" in kinds


@posix_only
def test_slow_heating_over_a_pty_shows_temperatures(
    small_job: Path, tmp_path: Path, stop: threading.Event
) -> None:
    # The start G-code heats the bed and the nozzle (170 °C for this job): about 3 s here,
    # longer than the no-answer timeout, kept alive by the reports M109 prints each second.
    printer = VirtualMarlin(heat_rate_c_s=60.0, cool_rate_c_s=60.0, sleep=time.sleep)
    db = tmp_path / "records.sqlite"
    out = _print_to(printer, stop, small_job, db, 1.8)
    assert out.returncode == 0, out.stderr
    commands = commands_from_gcode((small_job / "job.gcode").read_text())
    assert _program(printer, small_job) == commands
    (summary,) = records(db)
    events = show(db, summary["id"])["events"]
    assert isinstance(events, list)
    logged = [entry for e in events if e["kind"] == "lines" for entry in e["data"]["entries"]]
    assert sum(entry["kind"] == "temperature" for entry in logged) >= 2
    assert events[-1]["kind"] == "completed"
    assert events[-1]["data"]["temperatures"].startswith("T0 ")
    nozzle = next(c for c in commands if c.startswith("M109")).split("S")[-1]
    # Not a terminal: plain progress lines, with the temperatures.
    progress = [line for line in out.stderr.splitlines() if "printed" in line]
    assert progress and f"/{float(nozzle):.0f} °C" in progress[-1] and "B " in progress[-1]


@posix_only
@pytest.mark.parametrize(
    ("fault", "error_type", "words"),
    [("disconnect_after", "PrintFailedError", "lost the connection"),
     ("hang_after", "PrinterTimeoutError", "stopped answering")],
)
def test_a_lost_or_silent_printer_over_a_pty_ends_with_exit_1_and_a_failed_record(
    small_job: Path, tmp_path: Path, stop: threading.Event, fault: str, error_type: str,
    words: str,
) -> None:
    commands = commands_from_gcode((small_job / "job.gcode").read_text())
    after = len(commands) // 2
    printer = VirtualMarlin(faults=Faults(**dict[str, Any]({fault: after})))
    db = tmp_path / "records.sqlite"
    out = _print_to(printer, stop, small_job, db, 0.5)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and words in out.stderr
    assert _program(printer, small_job) == commands[:after]
    (summary,) = records(db)
    assert summary["status"] == "failed"
    events = show(db, summary["id"])["events"]
    assert isinstance(events, list)
    failed = events[-1]
    assert failed["kind"] == "failed"
    assert failed["data"]["error_type"] == error_type
    # The printer's last ok may be lost with the link; never a line it did not run.
    assert after - 1 <= failed["data"]["last_acked"] <= after
    if fault == "hang_after":
        # The link is still there: the safe stop goes out, although nobody answers it.
        assert failed["data"]["safe_stop_sent"] == ["M104 S0", "M140 S0", "M84"]


@posix_only
def test_a_printer_whose_firmware_is_not_the_profile_s_is_refused_before_the_job(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, stop: threading.Event
) -> None:
    folder = tmp_path_factory.mktemp("klipper")
    job = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1), "generic-klipper-1x175"), job)
    printer = VirtualMarlin(sleep=time.sleep)  # a Marlin on a Klipper profile's port
    db = tmp_path / "records.sqlite"
    out = _print_to(printer, stop, job, db, 5.0)
    assert out.returncode == 1
    assert "firmware is Marlin" in out.stderr and "Klipper printer profile" in out.stderr
    # Only the handshake and the safe stop reached the printer: nothing of the job.
    assert printer.accepted == ["M115", "M104 S0", "M140 S0", "M84"]
    (summary,) = records(db)
    assert summary["status"] == "failed"
    events = show(db, summary["id"])["events"]
    assert isinstance(events, list)
    started, failed = events[1], events[-1]
    assert started["kind"] == "started" and started["data"]["flavor"] == "klipper"
    assert failed["kind"] == "failed"
    assert failed["data"]["error_type"] == "FirmwareRefusedError"
    assert failed["data"]["stage"] == "pre-flight" and failed["data"]["last_acked"] == 0


@posix_only
def test_a_printer_lacking_a_command_of_the_job_is_refused_by_the_pre_flight(
    small_job: Path, tmp_path: Path, stop: threading.Event
) -> None:
    # A Marlin built without a heated bed answers M140 'Unknown command' (gcode.cpp,
    # HAS_HEATED_BED): the bed's set point would be skipped. Stand it in with a printer
    # whose handler for M140 is gone.
    printer = VirtualMarlin(sleep=time.sleep)
    printer._cmd_M140 = None  # type: ignore[assignment, method-assign]
    printer._cmd_M190 = None  # type: ignore[assignment, method-assign]
    db = tmp_path / "records.sqlite"
    out = _print_to(printer, stop, small_job, db, 5.0)
    assert out.returncode == 1
    program = program_from_gcode((small_job / "job.gcode").read_text())
    line = program.source_lines[[c.split()[0] for c in program.commands].index("M140")]
    assert "does not have M140" in out.stderr and f"line {line} of job.gcode" in out.stderr
    # The handshake, the probes of the words the job uses before M140 (its start's M302),
    # then M140's probe, refused: no job line after it, only the safe stop.
    probed = printer.accepted.index("M140")
    assert printer.accepted[0] == "M115"
    assert set(printer.accepted[1:probed]) <= {c.split()[0] for c in program.commands}
    assert printer.accepted[probed + 1:] == ["M104 S0", "M140 S0", "M84"]
    assert "M110 N0" not in printer.accepted
    (summary,) = records(db)
    failed = show(db, summary["id"])["events"][-1]  # type: ignore[index]
    assert failed["kind"] == "failed" and failed["data"]["stage"] == "pre-flight"
    assert "Configuration.h" in failed["data"]["hint"]


def test_temperatures_from_every_kind_of_report() -> None:
    temps = Temperatures(extruders=2)
    assert temps.summary() == "" and not temps.update("ok")
    assert temps.update("ok T:25.0 /0.0 B:24.5 /0.0 T0:25.0 /0.0 T1:26.0 /0.0 @:0 B@:0")
    assert temps.summary() == "T0 25.0/0 °C, T1 26.0/0 °C, B 24.5/0 °C"
    # M109's wait reports name the tool with E: and leave the set point out.
    assert temps.update("T:150.2 E:1 W:?")
    assert temps.summary() == "T0 25.0/0 °C, T1 150.2/0 °C, B 24.5/0 °C"
    temps.update("T0:200 /210 T1:150 /200 B:60 /60")
    temps.update("T:205.5 E:0 W:?")
    assert temps.summary() == "T0 205.5/210 °C, T1 150.0/200 °C, B 60.0/60 °C"
    assert not temps.update("echo:busy: processing")
    one = Temperatures()
    assert one.update("ok T:170.0 /170.0 B:40.0 /40.0 @:0 B@:0")
    assert one.summary() == "T0 170.0/170 °C, B 40.0/40 °C"


@posix_only
@pytest.mark.parametrize(
    ("fault", "words"),
    [("busy_forever_after", "busy keep-alives"),
     ("reports_only_after", "temperature reports"),
     ("noise_after", "other lines")],
    ids=["busy", "temperatures", "noise"],
)
def test_a_printer_that_talks_but_never_answers_ends_with_exit_1_and_a_failed_record(
    small_job: Path, tmp_path: Path, stop: threading.Event, fault: str, words: str,
) -> None:
    # Busy keep-alives, temperature reports or noise keep the no-answer clock from running
    # out, but not a line's bound: only an ok moves the print on.
    commands = commands_from_gcode((small_job / "job.gcode").read_text())
    after = len(commands) // 2
    printer = VirtualMarlin(sleep=time.sleep, faults=Faults(**dict[str, Any]({fault: after})))
    db = tmp_path / "records.sqlite"
    started = time.monotonic()
    # A no-answer timeout longer than the chatter's interval (busy: every 2 s), so only
    # the line's bound can end the wait: twice the timeout plus four times a move's plan.
    out = _print_to(printer, stop, small_job, db, 3.0)
    took = time.monotonic() - started
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and words in out.stderr
    assert f"no ok for line {after + 1}" in out.stderr
    assert took < 90.0
    assert _program(printer, small_job) == commands[:after]
    (summary,) = records(db)
    assert summary["status"] == "failed"
    failed = show(db, summary["id"])["events"][-1]  # type: ignore[index]
    assert failed["kind"] == "failed"
    assert failed["data"]["error_type"] == "PrinterTimeoutError"
    assert words in failed["data"]["error"] and failed["data"]["last_acked"] == after
    assert failed["data"]["safe_stop_sent"] == ["M104 S0", "M140 S0", "M84"]


@posix_only
def test_repeated_sigterms_do_not_cut_the_safe_stop_short(big_job: Path, tmp_path: Path) -> None:
    # A service manager that asks again and again while the print is being made safe.
    db = tmp_path / "records.sqlite"
    log = tmp_path / "accepted.log"
    vp, pr = _start_print(big_job, db, log)
    try:
        for _ in range(5):
            pr.send_signal(signal.SIGTERM)
            time.sleep(0.02)
        _, err = pr.communicate(timeout=60)
    finally:
        _end(vp, pr)
    assert pr.returncode == 1 and "Traceback" not in err
    (summary,) = records(db)
    assert summary["status"] == "aborted"
    assert log.read_text().splitlines()[-3:] == ["M104 S0", "M140 S0", "M84"]


def test_a_refused_job_leaves_no_record_store_behind(small_job: Path, tmp_path: Path) -> None:
    # The job is checked before the store is opened: a refused job must not create the
    # default store in the user's data folder.
    job = tmp_path / "job"
    import shutil

    shutil.copytree(small_job, job)
    (job / "job.seal").unlink()
    env = {k: v for k, v in os.environ.items() if k != "DOSEPRINT_DB"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-m", "doseprint", "print", str(job), "--port",
                          "socket://127.0.0.1:9"], capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert out.returncode == 2, out.stderr
    assert "job.seal" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()
