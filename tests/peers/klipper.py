"""Klipper's own host (klippy) in batch mode, as a peer that plans doseprint's G-code.

:class:`KlipperHost` copies Klipper's unmodified extract to a temporary folder once, adds
the test-only ``doseprint_probe`` extras module (``klippy_extras/doseprint_probe.py``) and
builds klippy's C helper there. :meth:`KlipperHost.run` writes a ``printer.cfg`` for a
doseprint printer profile (:func:`printer_cfg`), runs

    python klippy/klippy.py printer.cfg -i job.gcode -o out.serial \
        -d linuxprocess.dict -l klippy.log

with the peers' interpreter (see Klipper's docs/Debugging.md, "Translating gcode files to
micro-controller commands") and reads back what Klipper did: its errors, the commands it
does not know, the print time it planned, and the filament each extruder was fed in each
``;TABLET:`` section, counted from the moves Klipper's planner queued (the probe), not from
doseprint's reading of the file.

The strings parsed here come from Klipper's sources: ``Unknown command:"%s"``
(klippy/gcode.py ``cmd_default``), ``!! <message>`` for a command error
(klippy/gcode.py ``_respond_error``), ``Exiting (print time %.3fs)``
(klippy/gcode.py ``request_restart``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from doseprint.models.printer import PrinterProfile

PROBE = Path(__file__).resolve().parent / "klippy_extras" / "doseprint_probe.py"

SectionExtruder = tuple[int | None, int]
"""(tablet index, or None for ``;TABLET:NONE`` and before the first marker; extruder)."""

Overrides = Mapping[str, Mapping[str, object | None] | None]
"""printer.cfg changes: ``{section: None}`` drops a section, ``{section: {option: None}}``
drops an option (Klipper's default applies), any other value sets it."""

_MARKER = re.compile(r";TABLET:([0-9]+|NONE)\s*\Z")
_UNKNOWN = re.compile(r'^// Unknown command:"(.*)"\s*$')
_EXITING = re.compile(r"Exiting \(print time ([0-9.]+)s\)")
_EXTRUDER = re.compile(r"extruder([0-9]*)\Z")
# Log lines of a failed run: exceptions, klippy's own error states and command errors
# that reached the log (klippy/klippy.py, klippy/gcode.py).
_LOG_ERROR = re.compile(
    r"Traceback|Exception|Internal error|Config error|Transition to shutdown|"
    r"MCU error|Protocol error|Unhandled|\bError\b")

RUN_TIMEOUT_S = 600.0
"""A klippy run of the largest example takes a few seconds; this only stops a hang."""


@dataclass(frozen=True)
class KlipperRun:
    """What Klipper's host did with one G-code file.

    Attributes
    ----------
    returncode : int
        klippy's exit status (0 when the whole file planned).
    print_time_s : float or None, s
        Klipper's own figure from ``Exiting (print time …s)``: the planner's clock when
        the last move is queued, counted from klippy's start (homing, dwells and the
        planner's start-up buffer included). None when the run did not get that far.
    homing_s : float, s
        Planned time of the homing moves. Batch mode never sees an endstop trigger, so
        ``G28`` runs each axis over 1.5 times its length at its ``homing_speed``: a figure
        of the test set-up, not of a printer.
    motion_s : float, s
        The sum of the planned durations (accelerate, cruise, decelerate) of every other
        move: the motion time alone.
    first_move_s, last_move_end_s : float, s
        Planner clock at the start of the first move after homing and at the end of the
        last move.
    errors : tuple of str
        Everything that went wrong: ``!!`` responses, error lines of the log, a non-zero
        exit, a run that stopped before the end, filament the planner lost.
    unknown_commands : tuple of str
        Every ``Unknown command:"…"`` Klipper answered, in order.
    filament_mm : dict of (int or None, int) to float, mm
        Net filament the planner queued per (tablet, extruder index), ``extruder`` being
        0 and ``extruderN`` N; None is ``;TABLET:NONE`` and anything before a marker.
    commanded_mm : dict of (int or None, int) to float, mm
        The same, as the G-code layer asked the toolhead for it.
    responses : tuple of str
        Every response line (``// …`` and ``!! …``).
    log : str
        klippy's log.
    """

    returncode: int
    print_time_s: float | None
    homing_s: float
    motion_s: float
    first_move_s: float | None
    last_move_end_s: float
    errors: tuple[str, ...]
    unknown_commands: tuple[str, ...]
    filament_mm: dict[SectionExtruder, float] = field(default_factory=dict)
    commanded_mm: dict[SectionExtruder, float] = field(default_factory=dict)
    responses: tuple[str, ...] = ()
    log: str = ""

    @property
    def job_time_s(self) -> float | None:
        """Klipper's print time less its batch-mode homing: every move, dwell and wait
        of the job as Klipper plans it, plus the planner's start-up buffer (0.25 s,
        klippy/toolhead.py ``BUFFER_TIME_START``)."""
        return None if self.print_time_s is None else self.print_time_s - self.homing_s

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unknown_commands

    def summary(self) -> str:
        """A few lines for an assertion message."""
        return "\n".join([f"exit {self.returncode}, print time {self.print_time_s}",
                          *self.errors, *(f"unknown: {c}" for c in self.unknown_commands)])


def _extruder_name(index: int) -> str:
    return "extruder" if index == 0 else f"extruder{index}"


def printer_cfg(
    profile: PrinterProfile,
    *,
    probe_results: Path,
    probe_responses: Path,
    temperature_dip_c: float = 0.0,
    overrides: Overrides | None = None,
) -> str:
    """A Klipper ``printer.cfg`` for a doseprint printer profile.

    Cartesian kinematics over the profile's bed (``origin = "center"`` puts 0 in the
    middle) and ``max_z_mm``; ``max_velocity`` = ``travel_speed_mm_s``, ``max_accel`` =
    ``acceleration_mm_s2``, ``square_corner_velocity``, ``max_z_velocity`` and
    ``max_z_accel`` from the profile's motion keys; one ``[extruder]``/``[extruderN]``
    per tool with the profile's nozzle and filament, ``max_extrude_only_velocity`` and
    ``max_extrude_only_accel`` when the profile sets them, ``min_extrude_temp`` =
    ``min_extrude_temp_c`` and ``max_temp`` = ``max_nozzle_temp_c``; a heated bed to
    ``max_bed_temp_c``; the ``[gcode_macro T<k>]`` the Klipper profiles document
    (``ACTIVATE_EXTRUDER EXTRUDER=…``) when there is more than one extruder. Pins are
    those of Klipper's Linux-process micro-controller (``linuxprocess.dict``).
    """
    bx, by = profile.bed_mm
    if profile.origin == "center":
        x_range, y_range = (-bx / 2.0, bx / 2.0), (-by / 2.0, by / 2.0)
    else:
        x_range, y_range = (0.0, bx), (0.0, by)
    sections: dict[str, dict[str, object]] = {
        "mcu": {"serial": "/dev/null"},
        "printer": {
            "kinematics": "cartesian",
            "max_velocity": profile.travel_speed_mm_s,
            "max_accel": profile.acceleration_mm_s2,
            "square_corner_velocity": profile.square_corner_velocity_mm_s,
            "max_z_velocity": profile.max_z_speed_mm_s,
            "max_z_accel": profile.max_z_acceleration_mm_s2,
        },
    }
    gpio = iter(range(200))

    def pins(**extra: object) -> dict[str, object]:
        return {"step_pin": f"gpio{next(gpio)}", "dir_pin": f"gpio{next(gpio)}",
                "enable_pin": f"!gpio{next(gpio)}", "microsteps": 16, **extra}

    for axis, (low, high) in (("x", x_range), ("y", y_range)):
        sections[f"stepper_{axis}"] = pins(
            rotation_distance=40, endstop_pin=f"^gpio{next(gpio)}", position_min=low,
            position_endstop=low, position_max=high, homing_speed=50)
    sections["stepper_z"] = pins(rotation_distance=8, endstop_pin=f"^gpio{next(gpio)}",
                                 position_endstop=0, position_max=profile.max_z_mm,
                                 homing_speed=5)
    for k in range(profile.extruders):
        extruder = pins(
            rotation_distance=33.5, nozzle_diameter=profile.nozzle_diameter_mm,
            filament_diameter=profile.filament_diameter_mm,
            heater_pin=f"gpio{next(gpio)}", sensor_type="Generic 3950",
            sensor_pin=f"analog{k}", control="watermark", min_temp=0,
            max_temp=profile.max_nozzle_temp_c, min_extrude_temp=profile.min_extrude_temp_c)
        if profile.max_extrude_only_speed_mm_s is not None:
            extruder["max_extrude_only_velocity"] = profile.max_extrude_only_speed_mm_s
        if profile.max_extrude_only_acceleration_mm_s2 is not None:
            extruder["max_extrude_only_accel"] = profile.max_extrude_only_acceleration_mm_s2
        sections[_extruder_name(k)] = extruder
    sections["heater_bed"] = {"heater_pin": f"gpio{next(gpio)}", "sensor_type": "Generic 3950",
                              "sensor_pin": f"analog{profile.extruders}",
                              "control": "watermark", "min_temp": 0,
                              "max_temp": profile.max_bed_temp_c}
    if profile.extruders > 1:
        for k in range(profile.extruders):
            sections[f"gcode_macro T{k}"] = {
                "gcode": f"\n  ACTIVATE_EXTRUDER EXTRUDER={_extruder_name(k)}"}
    sections["doseprint_probe"] = {"results": str(probe_results),
                                   "responses": str(probe_responses),
                                   "temperature_dip": temperature_dip_c}
    for name, change in (overrides or {}).items():
        if change is None:
            sections.pop(name, None)
            continue
        options = sections.setdefault(name, {})
        for option, value in change.items():
            if value is None:
                options.pop(option, None)
            else:
                options[option] = value
    out = []
    for name, options in sections.items():
        out.append(f"[{name}]")
        out += [f"{option}: {_cfg_value(value)}" for option, value in options.items()]
        out.append("")
    return "\n".join(out)


def _cfg_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    return str(value)


def with_section_commands(gcode: str) -> str:
    """The G-code with every ``;TABLET:<i>`` / ``;TABLET:NONE`` marker line replaced by
    the probe's ``DOSEPRINT_SECTION TABLET=<i>|NONE`` command; nothing else changes."""
    lines = []
    for line in gcode.splitlines():
        marker = _MARKER.match(line)
        lines.append(f"DOSEPRINT_SECTION TABLET={marker[1]}" if marker else line)
    return "\n".join(lines) + "\n"


class KlipperHost:
    """A private, writable copy of Klipper's host with the probe installed.

    Parameters
    ----------
    source : Path
        Klipper's unmodified extract (``klippy/``, ``linuxprocess.dict``), read-only.
    python : Path
        An interpreter with klippy's requirements (cffi, greenlet, jinja2, pyserial).
    workdir : Path
        Where the copy and every run's files go.
    """

    def __init__(self, source: Path, python: Path, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.root = workdir / "klipper"
        shutil.copytree(source, self.root)
        for path in self.root.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        shutil.copy(PROBE, self.root / "klippy" / "extras" / "doseprint_probe.py")
        self._runs = 0

    def build(self, profile: PrinterProfile) -> KlipperRun:
        """Run an empty program once, so klippy builds its C helper before any real run
        (two runs building it at the same time would race)."""
        return self.run_text("G28\n", profile)

    def run(
        self,
        gcode_path: Path | str,
        profile: PrinterProfile,
        *,
        overrides: Overrides | None = None,
        temperature_dip_c: float = 0.0,
    ) -> KlipperRun:
        """Plan ``gcode_path`` on a printer.cfg made from ``profile`` (with ``overrides``)."""
        return self.run_text(Path(gcode_path).read_text(encoding="utf-8"), profile,
                             overrides=overrides, temperature_dip_c=temperature_dip_c)

    def run_text(
        self,
        gcode: str,
        profile: PrinterProfile,
        *,
        overrides: Overrides | None = None,
        temperature_dip_c: float = 0.0,
    ) -> KlipperRun:
        """As :meth:`run`, for G-code given as text."""
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        results, responses = run_dir / "probe.json", run_dir / "responses.txt"
        config = run_dir / "printer.cfg"
        config.write_text(printer_cfg(profile, probe_results=results,
                                      probe_responses=responses,
                                      temperature_dip_c=temperature_dip_c,
                                      overrides=overrides), encoding="utf-8")
        job = run_dir / "job.gcode"
        job.write_text(with_section_commands(gcode), encoding="utf-8")
        log = run_dir / "klippy.log"
        cmd = [str(self.python), str(self.root / "klippy" / "klippy.py"), str(config),
               "-i", str(job), "-o", str(run_dir / "out.serial"),
               "-d", str(self.root / "linuxprocess.dict"), "-l", str(log)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              cwd=run_dir, check=False)
        return read_run(done, log, results, responses)


def read_run(
    done: subprocess.CompletedProcess[str], log_path: Path, results_path: Path,
    responses_path: Path,
) -> KlipperRun:
    """A finished klippy run, from its exit status, its log, the probe's results and the
    responses it sent."""
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    responses = (tuple(responses_path.read_text(encoding="utf-8").splitlines())
                 if responses_path.exists() else ())
    errors = [line for line in responses if line.startswith("!!")]
    errors += _log_errors(log)
    if done.returncode != 0:
        errors.append(f"klippy exited with status {done.returncode}"
                      + (f": {done.stderr.strip()[-2000:]}" if done.stderr.strip() else ""))
    exiting = _EXITING.findall(log)
    print_time = float(exiting[-1]) if exiting else None
    if print_time is None:
        errors.append("klippy did not reach the end of the file (no 'Exiting (print time')")
    unknown = tuple(m[1] for line in responses if (m := _UNKNOWN.match(line)))
    probe: dict[str, object] = {}
    if results_path.exists():
        probe = json.loads(results_path.read_text(encoding="utf-8"))
    else:
        errors.append("the probe wrote no results")
    planned = _table(probe.get("planned_mm", []))
    commanded = _table(probe.get("commanded_mm", []))
    if probe.get("untagged_moves"):
        errors.append(f"{probe['untagged_moves']} moves reached an extruder without being "
                      "checked by it")
    for key in sorted(set(planned) | set(commanded), key=str):
        lost = commanded.get(key, 0.0) - planned.get(key, 0.0)
        if abs(lost) > 1e-6:
            errors.append(f"section {key[0]}, extruder {key[1]}: {lost:.6f} mm of filament "
                          "asked for but never planned")
    first = probe.get("first_move_s")
    return KlipperRun(
        returncode=done.returncode,
        print_time_s=print_time,
        homing_s=float(probe.get("homing_s", 0.0)),  # type: ignore[arg-type]
        motion_s=float(probe.get("motion_s", 0.0)),  # type: ignore[arg-type]
        first_move_s=None if first is None else float(first),  # type: ignore[arg-type]
        last_move_end_s=float(probe.get("last_move_end_s", 0.0)),  # type: ignore[arg-type]
        errors=tuple(errors),
        unknown_commands=unknown,
        filament_mm=planned,
        commanded_mm=commanded,
        responses=responses,
        log=log,
    )


def _log_errors(log: str) -> list[str]:
    """Error lines of klippy's log, outside the echo of printer.cfg it starts with."""
    out = []
    in_config = False
    for line in log.splitlines():
        if line.startswith("===== Config file"):
            in_config = True
        elif line.startswith("======================="):
            in_config = False
        elif not in_config and _LOG_ERROR.search(line):
            out.append(f"log: {line.strip()}")
    return out


def _table(rows: object) -> dict[SectionExtruder, float]:
    out: dict[SectionExtruder, float] = {}
    assert isinstance(rows, list)
    for section, name, mm in rows:
        match = _EXTRUDER.match(str(name))
        if match is None or section == "untagged":
            continue
        key = (None if section is None else int(section), int(match[1] or "0"))
        out[key] = out.get(key, 0.0) + float(mm)
    return out
