"""The comment header of a job's G-code: what the program says it was compiled for.

The header is written by compile (:func:`header_lines`) and read back by
:func:`read_header`. It names the prescription (id, hash, patient reference), the printer
profile (id, hash), the formulation in every tool (id, hash) and, one line per tablet and
API, the prescribed dose::

    ; doseprint 0.1.0
    ; prescription RX-2026-000201 sha256 c15a…
    ; patient P-0042
    ; printer generic-marlin-1x175 sha256 ba25…
    ; tool T0 formulation hydrochlorothiazide-eudragitepo-10 sha256 7520…
    ; dose tablet 0 T0 25.0 mg hydrochlorothiazide
    ; …

So the G-code carries its own prescription: ``print`` and ``gcode check`` compare the dose
read from the moves with the header's, and the header with job.json's, and refuse a job
where any of the three disagree (:func:`doseprint.job.verify.header_problems`).

A dose is written as Python's shortest round-trip form of the float (``repr``), so the
header's dose is exactly the manifest's. Every line is a ``;`` comment whose text
:func:`doseprint.gcode.format.comment_text` has proven cannot end the line. The header is
the run of comment lines before the first command; only lines of the forms above are
read (others, such as the flavour or a flow calibration note, are for people).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from doseprint.errors import InputError
from doseprint.gcode.tokens import command_text

__all__ = ["GcodeHeader", "HeaderDose", "HeaderTool", "header_lines", "read_header"]

_PRESCRIPTION = re.compile(r"prescription (?P<id>\S+) sha256 (?P<sha>[0-9a-f]{64})", re.ASCII)
_PATIENT = re.compile(r"patient (?P<ref>\S+)", re.ASCII)
_PRINTER = re.compile(r"printer (?P<id>\S+) sha256 (?P<sha>[0-9a-f]{64})", re.ASCII)
_TOOL = re.compile(r"tool T(?P<tool>[0-9]+) formulation (?P<id>\S+) sha256 (?P<sha>[0-9a-f]{64})",
                   re.ASCII)
_DOSE = re.compile(r"dose tablet (?P<tablet>[0-9]+) T(?P<tool>[0-9]+) "
                   r"(?P<mg>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?) mg (?P<api>\S.*)", re.ASCII)
_COMMENT = re.compile(r"\s*;\s?(?P<text>.*)")


@dataclass(frozen=True)
class HeaderTool:
    """``; tool T<k> formulation <id> sha256 <hash>``."""

    tool: int
    formulation: str
    sha256: str


@dataclass(frozen=True)
class HeaderDose:
    """``; dose tablet <i> T<k> <mg> mg <api>``: a prescribed dose, not a measured one."""

    tablet: int
    tool: int
    dose_mg: float
    api: str


@dataclass(frozen=True)
class GcodeHeader:
    """What a program's header says; None or empty where it says nothing."""

    prescription_id: str | None = None
    prescription_sha256: str | None = None
    patient: str | None = None
    printer_id: str | None = None
    printer_sha256: str | None = None
    tools: tuple[HeaderTool, ...] = ()
    doses: tuple[HeaderDose, ...] = ()

    def expected_doses(self) -> list[tuple[int, str, int, float]]:
        """(tablet, api, tool, prescribed dose in mg) of every dose line, in order."""
        return [(d.tablet, d.api, d.tool, d.dose_mg) for d in self.doses]


def header_lines(
    *,
    prescription: tuple[str, str],
    patient: str,
    printer: tuple[str, str],
    tools: Sequence[tuple[str, str]],
    doses: Sequence[tuple[int, str, int, float]],
    notes: Sequence[str] = (),
) -> list[str]:
    """The header's lines (without ``; ``): prescription, patient (when given), printer,
    tools, ``notes`` (for people), then a dose line per ``(tablet, api, tool, dose_mg)``.

    Raises
    ------
    InputError
        A dose that is not a positive finite number (a bug upstream: doses are checked
        when the prescription is read).
    """
    lines = [f"prescription {prescription[0]} sha256 {prescription[1]}"]
    if patient:
        lines.append(f"patient {patient}")
    lines.append(f"printer {printer[0]} sha256 {printer[1]}")
    lines += [f"tool T{k} formulation {fid} sha256 {sha}" for k, (fid, sha) in enumerate(tools)]
    lines += list(notes)
    for tablet, api, tool, dose in doses:
        if not (math.isfinite(dose) and dose > 0):
            raise InputError(f"dose {dose!r} mg of {api} cannot be written", key="dose_mg")
        lines.append(f"dose tablet {tablet} T{tool} {float(dose)!r} mg {api}")
    return lines


def read_header(lines: Iterable[str]) -> GcodeHeader:
    """Read the header: the comment lines before the first command.

    ``lines`` are the program's lines (:func:`doseprint.gcode.tokens.split_lines`); the
    reading stops at the first line that holds a command. A line of a known form that
    appears twice keeps its first value for the prescription, patient and printer (a second
    one is a problem :func:`doseprint.job.verify.header_problems` reports through the
    mismatch it makes), and every tool and dose line is kept.
    """
    found: dict[str, str] = {}
    tools: list[HeaderTool] = []
    doses: list[HeaderDose] = []
    conflicting: set[str] = set()

    def keep(key: str, value: str) -> None:
        if key in found and found[key] != value:
            conflicting.add(key)
        found.setdefault(key, value)

    for line in lines:
        if command_text(line):
            break
        comment = _COMMENT.fullmatch(line.rstrip("\r\n"))
        if comment is None:
            continue
        text = comment["text"].rstrip()
        if m := _PRESCRIPTION.fullmatch(text):
            keep("prescription_id", m["id"])
            keep("prescription_sha256", m["sha"])
        elif m := _PATIENT.fullmatch(text):
            keep("patient", m["ref"])
        elif m := _PRINTER.fullmatch(text):
            keep("printer_id", m["id"])
            keep("printer_sha256", m["sha"])
        elif m := _TOOL.fullmatch(text):
            tools.append(HeaderTool(int(m["tool"]), m["id"], m["sha"]))
        elif m := _DOSE.fullmatch(text):
            doses.append(HeaderDose(int(m["tablet"]), int(m["tool"]), float(m["mg"]), m["api"]))
    for key in conflicting:
        found[key] = "<conflicting lines>"
    return GcodeHeader(
        prescription_id=found.get("prescription_id"),
        prescription_sha256=found.get("prescription_sha256"),
        patient=found.get("patient"),
        printer_id=found.get("printer_id"),
        printer_sha256=found.get("printer_sha256"),
        tools=tuple(tools),
        doses=tuple(doses),
    )
