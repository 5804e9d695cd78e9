"""`doseprint print`: pre-flight a job, stream it, and record everything as it happens.

The record is created before the port is opened, so even a print that never starts
leaves a record saying why. Print-log entries are buffered and flushed to the store at
least every :data:`FLUSH_S` seconds or :data:`FLUSH_LINES` entries, and every status
change is written at once, so a killed process loses at most that much of the log and
never the fact that the print was running.

However a print ends short of ``completed`` (a firmware error, a lost link, the record
store failing, Ctrl-C, SIGTERM, a bug), the printer is made safe first and the record
says why after (:class:`_Ending`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from doseprint import __version__
from doseprint.comms.framing import program_from_gcode
from doseprint.comms.preflight import plan_preflight
from doseprint.comms.replies import Capability, HeaterReading, parse_reply, parse_temperatures
from doseprint.comms.streamer import StreamEvent, StreamResult, safe_stop, stream_gcode
from doseprint.comms.transport import SerialTransport
from doseprint.dispensing import print_materials
from doseprint.errors import (
    DoseCheckError,
    DoseprintError,
    FirmwareRefusedError,
    InputError,
    JobIntegrityError,
    PortOpenError,
    PrintAbortedError,
    PrintFailedError,
    Problem,
    RecordStoreError,
)
from doseprint.gcode.commands import template_problems
from doseprint.gcode.header import read_header
from doseprint.gcode.motion import motion_limits, plan_commands
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.tokens import split_lines
from doseprint.job.folder import read_job, sha256_bytes
from doseprint.job.manifest import JobManifest, thaw_json
from doseprint.job.verify import Verification, verify_job
from doseprint.library import load_printers
from doseprint.records.liveness import process_identity
from doseprint.records.lots import check_lot_id
from doseprint.records.states import EventKind
from doseprint.records.store import RecordStore

log = logging.getLogger(__name__)

FLUSH_S = 0.5
TEMPERATURE_POLL_S = 5.0
"""How often the print asks the firmware for its temperatures (M105 between lines)."""
FLUSH_LINES = 200
STORE_RETRY_S = 0.5
"""After the record store fails to take a print's last events, how long to wait before the
one retry (a database locked by another writer, a network blip to PostgreSQL)."""


WAIT_TOOL_RE = re.compile(r"(?:^|\s)E:(?P<tool>\d+)\b")
"""The tool an ``M109`` wait report is about (``T:205.3 E:0 W:?``). Groups: ``tool``."""


class Temperatures:
    """The latest hot-end (per tool) and bed temperatures seen in a print's replies.

    Fed every reply that may carry a report: ``M105`` answers (``ok T:… B:…``), the
    reports ``M109``/``M190`` print while they wait, and a firmware's automatic reports.
    A report without set points keeps the last known ones.

    Parameters
    ----------
    extruders : int
        Tools the printer has; a bare ``T:`` is tool 0 on a one-tool printer and the
        tool named by ``E:`` (or else the active tool) on a multi-tool one.
    """

    def __init__(self, extruders: int = 1) -> None:
        self.extruders = max(extruders, 1)
        self.tools: dict[int, HeaterReading] = {}
        self.bed: HeaterReading | None = None

    def update(self, text: str) -> bool:
        """Take one reply line; True when it carried a temperature.

        Parameters
        ----------
        text : str
            A reply line as the firmware printed it.

        Returns
        -------
        bool
        """
        if ":" not in text or ("T" not in text and "B:" not in text):
            return False
        readings = parse_temperatures(text.removeprefix("ok").strip())
        if not readings:
            return False
        numbered = {int(k[1:]): r for k, r in readings.items() if k[:1] == "T" and k[1:]}
        if not numbered and "T" in readings:
            wait = WAIT_TOOL_RE.search(text)
            numbered = {int(wait["tool"]) if wait is not None else 0: readings["T"]}
        for tool, reading in numbered.items():
            self.tools[tool] = self._merge(self.tools.get(tool), reading)
        if "B" in readings:
            self.bed = self._merge(self.bed, readings["B"])
        return bool(numbered) or "B" in readings

    @staticmethod
    def _merge(old: HeaterReading | None, new: HeaterReading) -> HeaterReading:
        if new.target_c is None and old is not None:
            return HeaterReading(new.actual_c, old.target_c)
        return new

    def summary(self) -> str:
        """``T0 204.8/210 °C, B 59.7/60 °C``; empty before the first report."""

        def one(name: str, reading: HeaterReading) -> str:
            target = f"/{reading.target_c:.0f}" if reading.target_c is not None else ""
            return f"{name} {reading.actual_c:.1f}{target} °C"

        parts = [one(f"T{tool}", self.tools[tool]) for tool in sorted(self.tools)]
        if self.bed is not None:
            parts.append(one("B", self.bed))
        return ", ".join(parts)


@dataclass(frozen=True)
class PrintOutcome:
    record_id: str
    result: StreamResult


def parse_lots(lots: Sequence[str], tools: int) -> dict[int, str]:
    """``["T0=ABC123", …]`` -> ``{0: "ABC123"}``, each tool of the job at most once.

    Raises
    ------
    InputError
        A lot is not ``T<k>=<lot>``, names a tool the job does not use, or repeats one.
    """
    out: dict[int, str] = {}
    problems = []
    for text in lots:
        tool_text, sep, lot = text.partition("=")
        tool_text = tool_text.strip().upper()
        well_formed = sep and tool_text.startswith("T") and tool_text[1:].isdigit()
        if not well_formed or not lot.strip():
            problems.append(Problem("command line", "--lot",
                                    f"{text!r} must look like T0=LOT-123"))
            continue
        tool = int(tool_text[1:])
        try:
            check_lot_id(lot, key="--lot")
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if tool >= tools:
            problems.append(Problem("command line", "--lot",
                                    f"{text!r}: the job uses tools T0..T{tools - 1}"))
        elif tool in out:
            problems.append(Problem("command line", "--lot", f"T{tool} is given twice"))
        else:
            out[tool] = lot.strip()
    if problems:
        raise InputError(problems)
    return out


def _sealed_gcode_text(path: Path, sha256: str) -> str:
    """The G-code about to be proved and sent, read once and checked against the hash the
    sealed job.json gives (the file could have been swapped since :func:`read_job`
    checked it).

    Raises
    ------
    JobIntegrityError
        The bytes read are not the ones job.json vouches for.
    InputError
        The file cannot be read, or is not UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None
    if sha256_bytes(data) != sha256:
        raise JobIntegrityError("changed since its job was checked: it no longer matches "
                                "the SHA-256 in job.json; nothing was sent", file=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                         file=str(path)) from None


def record_content(
    job_dir: Path, job: JobManifest, port: str, baud: int, operator: str,
    lots: Mapping[int, str], verification: Verification,
    lot_links: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The immutable content of a print's record (record.md "What a record holds").

    ``lot_links`` adds to a tool's ``materials`` entry what it links of a lot the store
    holds (:func:`doseprint.dispensing.print_materials`).

    Each tablet's doses are the ones proved from the G-code about to be sent
    (``verification``, the header's prescribed dose and the dose read from the moves),
    not the figures job.json claims; the two have been compared and agree by then."""
    job_json = (job_dir / "job.json").read_bytes()
    proved = {(c.tablet, c.api, c.tool): c for c in verification.doses}
    return {
        "schema": "doseprint.record-content/1",
        "doseprint_version": __version__,
        "prescription": {"id": job.prescription.id,
                         "sha256": job.prescription.sha256,
                         "patient": job.prescription.patient},
        "job": {"folder": str(job_dir), "json_sha256": sha256_bytes(job_json),
                "gcode_sha256": job.gcode.sha256, "gcode_lines": job.gcode.lines,
                "doseprint_version": job.doseprint_version,
                "created_utc": job.created_utc},
        "tablets": [
            {"index": t.index, "design": thaw_json(t.design),
             **({"shell": {"tool": t.shell.tool,
                           "design_volume_mm3": t.shell.design_volume_mm3}}
                if t.shell is not None else {}),
             "actives": [{"api": a.api, "tool": a.tool,
                          "dose_mg": proved[(t.index, a.api, a.tool)].prescribed_mg,
                          "design_volume_mm3": a.design_volume_mm3,
                          "gcode_dose_mg":
                              round(proved[(t.index, a.api, a.tool)].gcode_mg, 4),
                          "dose_error_pct":
                              round(proved[(t.index, a.api, a.tool)].error_pct, 4),
                          "release": {"kind": a.release.kind,
                                      "target": thaw_json(a.release.target),
                                      "t50_h": a.release.t50_h, "t80_h": a.release.t80_h,
                                      "f2": a.release.f2, "met": a.release.met}}
                         for a in t.actives]}
            for t in job.tablets
        ],
        "materials": [{"tool": t.tool, "formulation": t.formulation, "api": t.api,
                       "formulation_sha256": t.formulation_sha256,
                       "density_g_cm3": t.density_g_cm3,
                       "drug_loading": t.drug_loading,
                       "lot": lots.get(t.tool), **(lot_links or {}).get(t.tool, {})}
                      for t in job.tools],
        "machine": {"printer": job.printer.id, "printer_sha256": job.printer.sha256,
                    "port": port, "baud": baud,
                    # Who prints: lets a later start mark the record interrupted even if
                    # the print ended before its started event could be written.
                    "process": process_identity()},
        "operator": operator,
        "warnings": list(job.warnings),
    }


class _LogBuffer:
    """Collects stream events and flushes them to the record in batches."""

    def __init__(self, store: RecordStore, record_id: str, actor: str,
                 on_progress: Callable[[int], None] | None,
                 on_temperatures: Callable[[str], None] | None = None,
                 extruders: int = 1) -> None:
        self.store = store
        self.record_id = record_id
        self.actor = actor
        self.entries: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.last_acked = 0
        self.on_progress = on_progress
        self.t0 = time.monotonic()
        self.firmware: list[str] = []
        self.capabilities: dict[str, bool] = {}
        """The ``Cap:`` lines of the ``M115`` answer, for the safe stop."""
        self.temperatures = Temperatures(extruders)
        self.on_temperatures = on_temperatures

    def __call__(self, event: StreamEvent) -> None:
        if event.kind == "ok" and event.line_no is not None:
            self.last_acked = max(self.last_acked, event.line_no)
            if self.on_progress is not None:
                self.on_progress(self.last_acked)
        if event.kind in ("ok", "temperature") and self.temperatures.update(event.text) \
                and self.on_temperatures is not None:
            self.on_temperatures(self.temperatures.summary())
        entry = {"t_s": round(event.monotonic_s - self.t0, 4), "kind": event.kind,
                 "n": event.line_no, "text": event.text,
                 "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        self.entries.append(entry)
        if event.kind == "firmware":
            self.firmware.append(event.text)
            reply = parse_reply(event.text)
            if isinstance(reply, Capability):
                self.capabilities[reply.name] = reply.enabled
            return
        if self.firmware:
            # The M115 answer is complete: keep the firmware's identity as one event.
            lines, self.firmware = self.firmware, []
            self.flush()
            self.store.append(self.record_id, "firmware", {"lines": lines}, self.actor)
        now = time.monotonic()
        if len(self.entries) >= FLUSH_LINES or now - self.last_flush >= FLUSH_S:
            self.flush()

    def pending(self) -> list[tuple[EventKind, dict[str, Any]]]:
        if not self.entries:
            return []
        batch: list[tuple[EventKind, dict[str, Any]]] = [
            ("lines", {"entries": self.entries, "last_acked": self.last_acked})]
        self.entries = []
        self.last_flush = time.monotonic()
        return batch

    def flush(self) -> None:
        batch = self.pending()
        if batch:
            self.store.append_many(self.record_id, batch, self.actor)


def print_job(
    job_dir: Path,
    port: str,
    store: RecordStore,
    *,
    operator: str,
    lots: Sequence[str] = (),
    baud: int | None = None,
    printer_dirs: Sequence[Path] = (),
    answer_timeout_s: float = 30.0,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_temperatures: Callable[[str], None] | None = None,
    supersede_reason: str = "",
) -> PrintOutcome:
    """Print a job folder to ``port`` and keep its record in ``store``.

    A prescription printed before is printed again only with ``supersede_reason``, and
    its earlier records are then superseded (:mod:`doseprint.records.prescriptions`).

    The send-ahead window is the profile's ``rx_buffer_lines`` when the firmware reports
    ``Cap:ADVANCED_OK:1`` (capped by the free queue slots its ``ok`` replies report) and 1
    otherwise (see :func:`~doseprint.comms.streamer.stream_gcode`); the ``completed`` event
    records the window used. The firmware must name the profile's ``flavor`` in its
    ``M115`` answer and pass the pre-flight (:mod:`~doseprint.comms.preflight`) before the
    first command is sent. Each command's planned motion time (:mod:`doseprint.gcode.motion`,
    with the profile's limits) bounds the wait for its ``ok``, so a lost line or reply is
    noticed within about a second mid-tablet. ``on_progress`` gets the commands acknowledged so far,
    ``on_temperatures`` a summary of the latest temperatures (:meth:`Temperatures.summary`)
    whenever a reply carried one.

    Raises
    ------
    InputError
        The job is invalid or changed since compile, its printer profile changed, a lot is
        malformed or refused (:func:`~doseprint.dispensing.print_materials`: in a store
        with accounts a tool without a received, unexpired, unblocked lot of its
        formulation, or a formulation version not approved), the store keeps nothing once
        closed (``:memory:``), or the job uses a
        command inside a tablet that the pre-flight cannot check on the profile's firmware
        (no record is created: nothing was attempted). Also a prescription printed
        before without ``supersede_reason``, or being printed now
        (:func:`~doseprint.records.prescriptions.review_reprint`);
        :class:`~doseprint.records.people.PermissionRefusedError` when the operator may
        not supersede.
    DoseCheckError
        The G-code, read back, misses a dose by the check compile ran (no record: nothing
        was sent).
    PortOpenError
        The port cannot be opened (the record says ``failed``).
    PrintFailedError
        The print stopped (the record says ``failed`` or ``aborted`` and how far it got);
        :class:`~doseprint.errors.FirmwareRefusedError` when the firmware is not the
        profile's or lacks a command of the job (the record says ``failed`` at the stage
        ``pre-flight``, before any command of the job was sent);
        :class:`~doseprint.errors.PrintAbortedError` for Ctrl-C or SIGTERM
        (``KeyboardInterrupt``) wherever it strikes.
    RecordStoreError
        The record store failed during the print. The record says ``failed`` at the stage
        ``record store`` if the store took that on the one retry; otherwise it stays
        ``printing`` until the next start marks it ``interrupted``, and what it should
        have said is logged.
    Exception
        Anything else is a bug; it propagates after the safe stop, and the record says
        ``failed`` at the stage ``internal error``.

    Every way out but a completed print sends the safe stop first
    (:func:`~doseprint.comms.streamer.safe_stop`: heaters and motors off, led by ``M108``
    when the firmware has ``EMERGENCY_PARSER``), while the port takes writes; a second
    Ctrl-C or SIGTERM meanwhile is noted and does not cut it short.
    """
    if not (math.isfinite(answer_timeout_s) and answer_timeout_s > 0):
        raise InputError(f"{answer_timeout_s!r} is not a time: give a number of seconds above 0",
                         file="command line", key="--timeout")
    if baud is not None and baud < 1:
        # Baud 0 on a POSIX terminal means "hang up" (B0), not a speed.
        raise InputError(f"{baud!r} is not a baud rate: give a positive whole number",
                         file="command line", key="--baud")
    job = read_job(job_dir)  # refuses a job whose files no longer match its hashes
    printers = load_printers(printer_dirs)
    pid = job.printer.id
    if pid not in printers:
        raise InputError(f"the job was compiled for printer {pid!r}, which is not in the "
                         "printer library", file=str(job_dir / "job.json"), key="printer.id")
    profile = printers[pid]
    if profile.sha256 != job.printer.sha256:
        raise InputError(f"printer profile {pid} has changed since the job was compiled "
                         f"({profile.path}); compile the job again",
                         file=str(job_dir / "job.json"), key="printer.sha256")
    problems = template_problems(profile)  # its safe stop is sent from its templates
    if problems:
        raise InputError(problems)
    lot_map = parse_lots(lots, len(job.tools))
    if not operator.strip():
        raise InputError("must name the operator", file="command line", key="--operator")
    if not store.durable:
        raise InputError(f"record store {store.url} keeps nothing once the print ends, so "
                         "its record would be lost", file="command line", key="--db",
                         hint="Give a SQLite file or a postgresql:// URL (--db or "
                              "DOSEPRINT_DB).")
    # Approved formulations and good lots, before the G-code is read or anything sent.
    links = print_materials(store, job, str(job_dir / "job.json"), lot_map)
    baud = profile.baud if baud is None else baud
    gcode_path = job_dir / job.gcode.file
    text = _sealed_gcode_text(gcode_path, job.gcode.sha256)
    # The dose is proved again from the file about to be sent, by the check compile ran.
    lines = split_lines(text)
    verification = verify_job(read_gcode(lines, source=str(gcode_path),
                                         flavor=profile.flavor), job,
                              read_header(lines))
    if not verification.ok:
        raise DoseCheckError(f"{gcode_path}: the G-code fails its dose check; nothing was "
                             "sent:", details=verification.problems,
                             hint="compile the prescription again; do not print this job")
    program = program_from_gcode(text)
    commands = list(program.commands)
    preflight = plan_preflight(program, profile.flavor)
    durations_s = plan_commands(commands, motion_limits(profile)).durations_s

    content = record_content(job_dir, job, port, baud, operator, lot_map, verification,
                             links)
    record_id = store.create_print(content, operator, supersede_reason)
    log.info("record %s created", record_id)
    transport = SerialTransport(port, baud)
    try:
        transport.open()
    except PortOpenError as exc:
        store.append(record_id, "failed", {"error": exc.message, "last_acked": 0,
                                           "stage": "open port"}, operator)
        raise
    buffer = _LogBuffer(store, record_id, operator, on_progress, on_temperatures,
                        profile.extruders)
    ending = _Ending(store, record_id, operator, transport, buffer, profile.extruders,
                     len(commands))
    try:
        store.append(record_id, "started", {"port": port, "baud": baud,
                                            "commands_total": len(commands),
                                            "flavor": profile.flavor,
                                            "preflight": [p.command for p in preflight.probes]},
                     operator)
        if on_start is not None:
            on_start(record_id, len(commands))
        result = stream_gcode(commands, transport, window=profile.rx_buffer_lines,
                              on_event=buffer, answer_timeout_s=answer_timeout_s,
                              poll_interval_s=TEMPERATURE_POLL_S, flavor=profile.flavor,
                              preflight=preflight, durations_s=durations_s)
        ending.completed = result
        ending.record([*buffer.pending(), ("completed", {
            "commands_total": result.commands_total, "commands_acked": result.commands_acked,
            "lines_sent": result.lines_sent, "resends": result.resends,
            "elapsed_s": round(result.elapsed_s, 3), "firmware": result.firmware,
            "capabilities": result.capabilities, "last_acked": result.commands_acked,
            "window": result.window, "max_in_flight": result.max_in_flight,
            "overdue_pings": result.overdue_pings, "recoveries": result.recoveries,
            "probes_sent": result.probes_sent,
            "temperatures": buffer.temperatures.summary()})])
        return PrintOutcome(record_id, result)
    except BaseException as exc:
        # Every way out of a print that is not a written `completed` comes here: a
        # firmware error, the record store failing, Ctrl-C or SIGTERM, a bug. The printer
        # is made safe first, then the record says what happened.
        ending.fail(exc)
    finally:
        transport.close()



@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM are noted, not acted on, while a print is being made safe and
    recorded: a second stop request must not cut the safe stop or the record short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: object) -> None:
        log.warning("already stopping the print: switching the heaters off and writing "
                    "the record")

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Ending:
    """How a print ends when it does not complete: the safe stop, then the record.

    Whatever ends the print (a firmware error, a lost link, the record store failing,
    Ctrl-C or SIGTERM, a bug), the heaters and motors are switched off first while the
    port still takes writes, then the record gets ``failed`` or ``aborted`` saying why.
    A store that fails to take that is tried once more; if it fails again the record is
    left ``printing`` (the next ``doseprint`` start on this computer finds the process
    gone and marks it ``interrupted``) and what it should have said goes to the log.
    """

    def __init__(self, store: RecordStore, record_id: str, actor: str, transport: Any,
                 buffer: _LogBuffer, extruders: int, commands_total: int) -> None:
        self.store = store
        self.record_id = record_id
        self.actor = actor
        self.transport = transport
        self.buffer = buffer
        self.extruders = extruders
        self.commands_total = commands_total
        self.stopped: list[str] | None = None
        self.completed: StreamResult | None = None
        """Set once every command was acknowledged, before ``completed`` is written."""

    def safe_stop(self) -> list[str]:
        """Send the safe stop once; the commands written."""
        if self.stopped is None:
            self.stopped = []
            self.stopped = safe_stop(self.transport, extruders=self.extruders,
                                     capabilities=self.buffer.capabilities)
        return self.stopped

    def record(self, events: Sequence[tuple[EventKind, Mapping[str, Any]]]) -> None:
        """Write the print's last events, trying once more if the store fails."""
        try:
            self.store.append_many(self.record_id, events, self.actor)
        except RecordStoreError as exc:
            log.warning("record %s: the record store failed (%s); trying once more",
                        self.record_id, exc.message)
            time.sleep(STORE_RETRY_S)
            self.store.append_many(self.record_id, events, self.actor)

    def fail(self, exc: BaseException) -> NoReturn:
        """Make the printer safe, record why the print ended, raise what the caller sees."""
        with _signals_deferred():
            stopped = self.safe_stop()
            kind, data, raised = self._describe(exc)
            data["safe_stop_sent"] = stopped
            try:
                self.record([*self.buffer.pending(), (kind, data)])
            except RecordStoreError as store_exc:
                log.error(
                    "record %s could not be written (%s). It should say: %s: %s (last "
                    "command acknowledged %s of %s; safe stop sent: %s). The next doseprint "
                    "start on this computer marks it interrupted.",
                    self.record_id, store_exc.message, kind, data["error"],
                    data["last_acked"], self.commands_total, ", ".join(stopped) or "none")
                if isinstance(raised, RecordStoreError):
                    raise raised from None
                raise RecordStoreError(
                    f"{data['error']}; and record {self.record_id} could not be written: "
                    f"{store_exc.message}",
                    hint="free disk space or make the record store reachable; the record "
                    "stays 'printing' until the next doseprint start marks it interrupted. "
                    "These tablets cannot be released",
                ) from exc
            except Exception as other:  # the store refused the event: keep the first error
                log.error("record %s: could not write its %r event: %s", self.record_id, kind,
                          other)
        if raised is exc:
            raise exc
        raise raised from exc

    def _describe(self, exc: BaseException) -> tuple[EventKind, dict[str, Any], BaseException]:
        last = max(exc.last_acked if isinstance(exc, PrintFailedError) else 0,
                   self.buffer.last_acked)
        of = f"after command {last} of {self.commands_total}"
        kind: EventKind = "failed"
        raised: BaseException = exc
        extra: dict[str, Any] = {}
        if isinstance(exc, PrintAbortedError):
            kind = "aborted"
            error = exc.message
        elif isinstance(exc, FirmwareRefusedError):
            error, extra = exc.message, {"stage": "pre-flight"}
        elif isinstance(exc, DoseprintError):
            error = exc.message
            if isinstance(exc, RecordStoreError):
                error = f"the record store failed {of}: {exc.message}"
                if self.completed is not None:
                    error = (f"every command was acknowledged ({last} of "
                             f"{self.commands_total}), but the record store failed to take "
                             f"the completed event: {exc.message}")
                extra = {"stage": "record store"}
        elif isinstance(exc, KeyboardInterrupt):
            kind = "aborted"
            error = f"the print was stopped by the operator {of}"
            raised = PrintAbortedError(
                error, last_acked=last,
                hint="these tablets cannot be released; heaters and motors were switched off")
        elif isinstance(exc, Exception):
            error = f"internal error {of}: {type(exc).__name__}: {exc}"
            extra = {"stage": "internal error"}
        else:  # SystemExit and the like: the process is being ended
            kind = "aborted"
            error = f"the print was ended ({type(exc).__name__}) {of}"
        data: dict[str, Any] = {"error": error, "error_type": type(exc).__name__, **extra}
        hint = getattr(raised, "hint", None)
        if hint:
            data["hint"] = hint
        data.update({"last_acked": last, "commands_total": self.commands_total})
        return kind, data, raised
