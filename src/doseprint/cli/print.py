"""``doseprint print``: stream a job to a printer and record the print, with a progress
bar on a terminal."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from doseprint.cli.options import FiniteFloatRange, log
from doseprint.cli.refusals import REFUSALS, record_refusal
from doseprint.cli.signing import sign_for
from doseprint.cli.terminal import echo_line
from doseprint.job.folder import read_job
from doseprint.printing import print_job
from doseprint.records.store import open_store


@click.command("print")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--port", required=True,
              help="Serial device (/dev/ttyUSB0) or pyserial URL (socket://127.0.0.1:5555).")
@click.option("--baud", type=click.IntRange(min=1), default=None,
              help="Baud rate, a positive whole number (default: the profile's).")
@click.option("--db", default=None, help="Record store: a SQLite path or postgresql://… URL "
              "(default: DOSEPRINT_DB, else a SQLite file in the user's data directory).")
@click.option("--operator", default="operator", show_default=True,
              help="Who runs the print: in a store with accounts a user id, who signs in "
                   "(the password is asked for, or read from standard input); else a name "
                   "written into the record.")
@click.option("--lot", "lots", multiple=True,
              help="Material lot loaded in a tool, as T0=LOT-123 (repeatable).")
@click.option("--supersede-reason", default="",
              help="Why a prescription printed before is printed again; its earlier "
                   "records are then superseded and can never be released (in a store "
                   "with accounts the operator needs the site policy's 'supersede': "
                   "pharmacists by default).")
@click.option("--printers", "printer_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Extra printer profile folder (also DOSEPRINT_PRINTERS).")
@click.option("--timeout", "answer_timeout_s", type=FiniteFloatRange(min=0.0, min_open=True),
              default=30.0, show_default=True,
              help="Seconds without any answer before the printer is pinged, and after the "
                   "ping counts as lost; twice it is part of every line's hard bound for "
                   "its ok (docs/firmware-recovery.md).")
def print_cmd(
    job_dir: Path, port: str, baud: int | None, db: str | None, operator: str,
    lots: tuple[str, ...], printer_dirs: tuple[Path, ...], answer_timeout_s: float,
    supersede_reason: str,
) -> None:
    """Stream JOB_DIR/job.gcode to the printer on PORT and record the print.

    A prescription is printed once: printing it again while an earlier record of it
    stands (neither rejected nor superseded) needs --supersede-reason. A refused print
    is recorded (`doseprint record refusals`).

    \b
    Example:
      doseprint print job-123 --port /dev/ttyUSB0 --operator "A. Pharmacist" --lot T0=L42
      doseprint print job-123b --port /dev/ttyUSB0 --operator bp \\
          --supersede-reason "first batch dropped before QC"
    """

    stopping: list[int] = []

    def _terminate(signum: int, frame: object) -> None:
        # A stop request (SIGTERM, e.g. from a service manager) ends the print the way
        # Ctrl-C does: safe stop sent, record marked aborted. Only the first one: a
        # service manager that asks again must not cut the safe stop short.
        if stopping:
            log.warning("already stopping the print")
            return
        stopping.append(signum)
        raise KeyboardInterrupt

    # The job is read (seal and hashes checked) before the record store is opened, so a
    # job that is refused makes no store; print_job checks it again itself. A refusal is
    # recorded in the store when there is one (cli/refusals.py).
    try:
        job = read_job(job_dir)
    except REFUSALS as exc:
        record_refusal(job_dir, operator, exc, db=db)
        raise
    previous = signal.signal(signal.SIGTERM, _terminate)
    progress = _Progress(job.gcode.estimated_print_s or 0.0)
    try:
        with open_store(db) as store:
            sign_for(store, operator, "print")
            try:
                outcome = print_job(job_dir, port, store, operator=operator, lots=lots,
                                    baud=baud, printer_dirs=printer_dirs,
                                    answer_timeout_s=answer_timeout_s,
                                    on_start=progress.start, on_progress=progress.update,
                                    on_temperatures=progress.temperatures,
                                    supersede_reason=supersede_reason)
            except REFUSALS as exc:
                record_refusal(job_dir, operator, exc, store=store)
                raise
            finally:
                progress.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    r = outcome.result
    echo_line(f"completed: {r.commands_acked}/{r.commands_total} commands acknowledged, "
              f"{r.resends} resent, {r.elapsed_s:.1f} s; record {outcome.record_id}")


class _Progress:
    """A progress bar on a terminal; plain log lines every 10 % otherwise. The time left
    comes from the job's own estimate (job.json ``gcode.estimated_print_s``), scaled by
    the share of commands still to be acknowledged; the temperatures are the latest the
    printer reported (hot end per tool and bed, actual/target)."""

    def __init__(self, estimated_print_s: float = 0.0) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.total = 0
        self.next_log = 0.0
        self.estimated_s = estimated_print_s
        self.temps = ""

    def temperatures(self, summary: str) -> None:
        self.temps = summary
        if self.bar is not None:
            self.bar.update(self.task, temps=summary)

    def _left(self, acked: int) -> str:
        if self.estimated_s <= 0:
            return ""
        minutes = self.estimated_s * (1.0 - acked / self.total) / 60.0
        return f"about {minutes:.0f} min left"

    def start(self, record_id: str, total: int) -> None:
        self.total = max(total, 1)
        log.info("record %s: printing %d commands", record_id, total)
        if sys.stderr.isatty():
            self.bar = Progress("printing", BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.percentage:>3.0f} %"),
                                TextColumn("{task.fields[left]}"),
                                TextColumn("{task.fields[temps]}"), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("print", total=total, left=self._left(0),
                                          temps=self.temps)

    def update(self, acked: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=acked, left=self._left(acked))
        elif acked / self.total >= self.next_log:
            notes = "; ".join(n for n in (self._left(acked), self.temps) if n)
            log.info("printed %d/%d commands (%.0f %%)%s", acked, self.total,
                     100.0 * acked / self.total, f"; {notes}" if notes else "")
            self.next_log += 0.1

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
