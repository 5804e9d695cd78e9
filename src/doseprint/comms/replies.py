"""What printer firmware answers, line by line, as the firmwares' own sources print it.

:func:`parse_reply` turns one reply line into a frozen value. The forms come from the
sources of the three firmware families doseprint prints on, and of OctoPrint's virtual
printer, which OctoPrint users treat as Marlin; each family's forms are distinct, so one
classifier reads them all:

* **Marlin** (``Marlin/src/core/language.h``, ``Marlin/src/gcode/queue.cpp``,
  ``Marlin/src/gcode/gcode.cpp``, ``Marlin/src/module/temperature.cpp``): ``ok`` (with
  ``N<n> P<planner> B<queue>`` under ``ADVANCED_OK``); a refused line as
  ``Error:checksum mismatch, Last Line: <n>`` (or ``Line Number is not Last Line
  Number+1``, ``No Checksum with line number``), then ``Resend: <n+1>``, then (from
  Marlin 2.1 on, and in 1.x) ``ok``; ``echo:busy: processing`` keep-alives; ``echo:Unknown
  command: "<cmd>"``; ``echo:T<n> Invalid extruder``; ``echo: cold extrusion prevented``;
  fatal ``Error:Printer halted. kill() called!``, ``Error:Thermal Runaway…``,
  ``Error:MAXTEMP triggered…``, a bare ``Printer stopped due to errors…`` and ``!!``.
* **OctoPrint's virtual printer** (``octoprint/plugins/virtual_printer/__init__.py``
  ``errors`` and ``virtual.py``): ``Error: Checksum mismatch``, ``Error: Missing checksum``,
  ``Error: expected line <n> got <m>``, ``Error: No Line Number with checksum, Last Line:
  <n>`` (none of which names the last line the way Marlin does), ``Resend:<n>``, ``ok``;
  ``Error: Unknown command <cmd>``; ``busy:processing``.
* **Klipper** (``klippy/gcode.py``): ``ok``, information as ``// …``, errors and
  shutdowns as ``!! …``, ``// Unknown command:"<cmd>"``, and the ``M115`` answer in the
  ``ok`` line itself (``ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:…``).
* **RepRapFirmware** in its Marlin emulation (``src/GCodes/GCodes.cpp``
  ``HandleReplyPreserveResult``, ``src/GCodes/GCodes2.cpp``): the reply, then ``ok``;
  failures as ``Error: …`` (an unknown command is ``Error: Bad command: <cmd>``), warnings
  as ``Warning: …``.

Communication errors (a line garbled or out of order on the wire) are told apart from
failures of the firmware by their wording, as OctoPrint's own host does
(``octoprint/util/comm.py``, ``_resend_request_communication_errors``): the former are
recovered by sending the line again, the latter stop a print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from doseprint.typed import Flavor

__all__ = [
    "BUSY_RE",
    "CAPABILITY_RE",
    "COMM_ERROR_RE",
    "DOSE_WARNING_RE",
    "ECHO_RE",
    "ERROR_RE",
    "FATAL_RE",
    "FIRMWARE_FIELD_RE",
    "FIRMWARE_NAME_RE",
    "HALT_RE",
    "HOST_ACTION_RE",
    "INFO_RE",
    "LINE_ERROR_RE",
    "OK_BUFFER_FREE_RE",
    "OK_LINE_NO_RE",
    "OK_PLANNER_FREE_RE",
    "OK_RE",
    "RESEND_RE",
    "START_RE",
    "TEMPERATURE_RE",
    "TEMPERATURE_REPORT_RE",
    "UNKNOWN_COMMAND_RES",
    "WAIT_RE",
    "WARNING_RE",
    "Busy",
    "Capability",
    "Echo",
    "ErrorKind",
    "FirmwareError",
    "FirmwareInfo",
    "Flavor",
    "Halt",
    "HeaterReading",
    "HostAction",
    "Ok",
    "Reply",
    "Resend",
    "Start",
    "TemperatureReport",
    "UnknownCommand",
    "Unrecognised",
    "Wait",
    "firmware_flavor",
    "parse_firmware_fields",
    "parse_reply",
    "parse_temperatures",
    "shows_life",
]

# Reply regexes. Each is matched against one reply line with surrounding whitespace removed.

OK_RE = re.compile(r"^ok\b\s*(?P<rest>.*)$", re.IGNORECASE)
"""``ok`` with whatever follows it.

Groups: ``rest``, the text after ``ok``: empty, ``N12 P15 B3`` (``ADVANCED_OK``), a
temperature report (the answer to ``M105``), or Klipper's ``M115`` answer.
"""

OK_LINE_NO_RE = re.compile(r"(?:^|\s)N(?P<line_no>\d+)\b")
"""The line number an ``ADVANCED_OK`` reply names. Groups: ``line_no``."""

OK_PLANNER_FREE_RE = re.compile(r"(?:^|\s)P(?P<free>\d+)\b")
"""Free planner (move) slots in an ``ADVANCED_OK`` reply (``ok N12 P15 B3``). Groups: ``free``."""

OK_BUFFER_FREE_RE = re.compile(r"(?:^|\s)B(?P<free>\d+)\b")
"""Free command-queue slots in an ``ADVANCED_OK`` reply (``ok N12 P15 B3``).

Groups: ``free``. The bed's ``B:40.2`` in a temperature report has a colon and never matches.
"""

RESEND_RE = re.compile(r"^(?:resend|rs)\s*:?\s*(?:N\s*:?\s*)?(?P<line_no>\d+)", re.IGNORECASE)
"""A resend request in any dialect: ``Resend: 12`` (Marlin ``STR_RESEND``), ``Resend:12``
(OctoPrint's virtual printer), ``rs N12``, ``Resend:N:12``.

Groups: ``line_no``, the first line the firmware wants again.
"""

BUSY_RE = re.compile(r"^(?:echo:\s*)?busy(?::\s*|\s+)(?P<reason>.*)$", re.IGNORECASE)
"""A host keep-alive: Marlin's ``echo:busy: processing`` (``STR_BUSY_PROCESSING``, printed
every ``DEFAULT_KEEPALIVE_INTERVAL`` of 2 s while a command blocks), ``busy:processing`` and
``echo:busy paused for user`` (OctoPrint's virtual printer).

Groups: ``reason`` (``processing``, ``paused for user`` …).
"""

UNKNOWN_COMMAND_RES: tuple[re.Pattern[str], ...] = (
    re.compile(r'^echo:\s*Unknown command:\s*"(?P<command>[^"]*)"?', re.IGNORECASE),
    re.compile(r'^//\s*Unknown command:\s*"(?P<command>[^"]*)"?', re.IGNORECASE),
    re.compile(r"^Error:\s*Bad command:\s*(?P<command>.*)$", re.IGNORECASE),
    re.compile(r"^Error:\s*Unknown command:?\s*(?P<command>.*)$", re.IGNORECASE),
    re.compile(r"^echo:\s*(?P<command>[TM]\d+)\s+Invalid extruder\b(?P<rest>.*)$", re.IGNORECASE),
)
"""A firmware saying it does not have a command, so the command did not run.

In order: Marlin ``echo:Unknown command: "T3"`` (``STR_UNKNOWN_COMMAND``,
``GCodeParser::unknown_command_warning``); Klipper ``// Unknown command:"T1"``
(``GCodeDispatch.cmd_default``); RepRapFirmware ``Error: Bad command: T1``
(``GCodes::ActOnCode``); OctoPrint's virtual printer ``Error: Unknown command T1``; and
Marlin's ``echo:T3 Invalid extruder`` / ``echo:M104 Invalid extruder 3`` for a tool the
printer lacks (``invalid_extruder_error``, ``get_target_extruder_from_command``).

Groups: ``command`` (the command as the firmware quotes it; its first word is the word the
firmware lacks), and in the last form ``rest``.
"""

HOST_ACTION_RE = re.compile(r"^//\s*action:\s*(?P<action>[a-z_]+)\b\s*(?P<text>.*)$", re.IGNORECASE)
"""A host action request (Marlin ``HOST_ACTION_COMMANDS``, ``feature/host_actions.cpp``):
``//action:cancel``, ``//action:pause``, ``//action:paused``, ``//action:resume``,
``//action:disconnect``, ``//action:prompt_…``.

Groups: ``action``, ``text``.
"""

INFO_RE = re.compile(r"^//\s?(?P<message>.*)$")
"""Klipper's informational ``// …`` line (``GCodeDispatch.respond_info``). Groups: ``message``."""

ECHO_RE = re.compile(r"^echo:\s?(?P<message>.*)$", re.IGNORECASE)
"""An informational ``echo:`` line. Groups: ``message``."""

WARNING_RE = re.compile(r"^warning:\s*(?P<message>.*)$", re.IGNORECASE)
"""RepRapFirmware's ``Warning: …`` (a ``WarningMessage``). Groups: ``message``."""

START_RE = re.compile(r"^start$", re.IGNORECASE)
"""The first line Marlin prints after a reset. No groups."""

ERROR_RE = re.compile(r"^error\s*:\s*(?P<message>.*)$", re.IGNORECASE)
"""An ``Error:`` line. Groups: ``message``, the text after the colon."""

LINE_ERROR_RE = re.compile(r"Last Line:\s*(?P<last_line>-?\d+)\s*$", re.IGNORECASE)
"""The tail of Marlin's transmission errors (``STR_ERR_LINE_NO``,
``STR_ERR_CHECKSUM_MISMATCH``, ``STR_ERR_NO_CHECKSUM``, and older Marlin's ``No Line Number
with checksum``): ``…, Last Line: 5``.

Groups: ``last_line``, the last line the firmware accepted.
"""

COMM_ERROR_RE = re.compile(r"checksum|line ?number|expected line|format error", re.IGNORECASE)
"""Words that make an ``Error:`` a communication error, not a failure of the printer.

From Marlin's messages (checksum, line number), OctoPrint's virtual printer (``Missing
checksum``, ``expected line N got M``) and the list OctoPrint's host keeps
(``octoprint/util/comm.py``: ``_recoverable_communication_errors``,
``_resend_request_communication_errors``). Marlin's ``RX BUF overflow, increase
RX_BUFFER_SIZE`` is not one: the host sent more than the firmware holds, a fault of the
set-up that resending does not cure. No groups.
"""

FATAL_RE = re.compile(
    r"^(?:fatal:\s*|Printer stopped due to errors)(?P<message>.*)$", re.IGNORECASE
)
"""A stop announced without ``Error:``: Marlin prints ``STR_ERR_STOPPED`` (``Printer stopped
due to errors. Fix the error and use M999 to restart…``) bare for moves sent while it is
stopped (``queue.cpp``); Repetier prints ``fatal: …``. Groups: ``message``."""

HALT_RE = re.compile(r"^!!\s*(?P<message>.*)$")
"""A ``!!`` line: Marlin's kill, Klipper's command errors and shutdowns
(``GCodeDispatch._respond_error``). Groups: ``message``."""

FIRMWARE_NAME_RE = re.compile(r"^FIRMWARE_NAME:")
"""The first line of the ``M115`` answer. No groups; see :data:`FIRMWARE_FIELD_RE`."""

FIRMWARE_FIELD_RE = re.compile(r"(?:^|\s)(?P<key>[A-Z][A-Z0-9_]+):")
"""One ``KEY:`` of an ``M115`` line; its value runs to the next key. Groups: ``key``."""

CAPABILITY_RE = re.compile(r"^Cap:(?P<name>[A-Z0-9_]+):(?P<value>\d+)\s*$")
"""One ``Cap:NAME:0|1`` line of the ``M115`` answer. Groups: ``name``, ``value``."""

TEMPERATURE_REPORT_RE = re.compile(r"^(?:T\d*|B|C):\s*-?\d")
"""A line that is a temperature report (``T:210.5 /210.0 B:40.2 /40.0 @:127``). No groups."""

TEMPERATURE_RE = re.compile(
    r"(?:^|\s)(?P<heater>T\d*|B|C|P|L|R|M):\s*(?P<actual>-?\d+(?:\.\d*)?)"
    r"(?:\s*/\s*(?P<target>-?\d+(?:\.\d*)?))?"
)
"""One heater's reading in a report.

Groups: ``heater`` (``T`` active tool, ``T0``/``T1`` … tools, ``B`` bed, ``C`` chamber,
``P`` probe, ``L`` cooler, ``R`` redundant, ``M`` board), ``actual`` (°C), ``target``
(°C, absent in the reports Marlin prints while it waits in ``M109``).
Power fields (``@:127``, ``B@:0``) and wait fields (``E:0``, ``W:?``) are not heaters.
"""

WAIT_RE = re.compile(r"^wait$", re.IGNORECASE)
"""Marlin's idle marker (``STR_WAIT``, with ``NO_TIMEOUTS``): its command queue is empty and
it waits for the host. No groups."""

DOSE_WARNING_RE = re.compile(
    r"(?P<reason>cold extrusion prevented|too long extrusion prevented"
    r"|was not driven because its heater temperatures were not high enough)",
    re.IGNORECASE,
)
"""An ``echo:`` or ``Warning:`` that means the firmware skipped an extrusion, so a tablet
misses its dose: Marlin ``STR_ERR_COLD_EXTRUDE_STOP`` / ``STR_ERR_LONG_EXTRUDE_STOP``
(``echo: cold extrusion prevented``, the move runs without its E), RepRapFirmware's
``Tool %u was not driven because its heater temperatures were not high enough…``
(``Tool::DisplayColdExtrusionWarnings``). Klipper refuses with ``!! Extrude below minimum
temp``, a halt. Groups: ``reason``.
"""

ErrorKind = Literal["communication", "failure"]
"""``communication``: a line was garbled or out of order on the wire, and is sent again;
``failure``: the printer failed a command or stopped."""


# Replies: one frozen value per kind of line the firmware prints.


@dataclass(frozen=True)
class HeaterReading:
    """One heater in a temperature report.

    Attributes
    ----------
    actual_c : float
        Measured temperature, °C.
    target_c : float or None
        Set point, °C; None where the report leaves it out.
    """

    actual_c: float
    target_c: float | None


@dataclass(frozen=True)
class Ok:
    """``ok``: the firmware processed a line (or answered a rejected one).

    ``line_no``, ``planner_free`` and ``buffer_free`` are the ``N``, ``P`` and ``B`` of an
    ``ADVANCED_OK`` reply (``ok N12 P15 B3``), None when the firmware leaves them out.
    ``firmware`` holds the ``M115`` fields Klipper prints in its ``ok`` line.
    """

    text: str
    line_no: int | None = None
    temperatures: dict[str, HeaterReading] = field(default_factory=dict)
    planner_free: int | None = None
    buffer_free: int | None = None
    firmware: dict[str, str] = field(default_factory=dict)

    @property
    def bare(self) -> bool:
        """True for an ``ok`` with nothing after it."""
        return self.text.strip().lower() == "ok"


@dataclass(frozen=True)
class Resend:
    """``Resend: <n>``: the firmware took every line before ``line_no`` and wants it again."""

    text: str
    line_no: int


@dataclass(frozen=True)
class Busy:
    """``busy: processing``: the firmware is alive and still working on a command."""

    text: str
    reason: str


@dataclass(frozen=True)
class Echo:
    """An ``echo:``, ``// …`` or ``Warning:`` line: information, not an answer."""

    text: str
    message: str


@dataclass(frozen=True)
class UnknownCommand:
    """The firmware does not have a command (or the tool it names), so it did not run it.

    ``word`` is the command word (``T1``, ``M106``, ``ACTIVATE_EXTRUDER``) upper-cased.
    """

    text: str
    word: str


@dataclass(frozen=True)
class HostAction:
    """``//action:<action>``: the printer asks its host to do something (``cancel`` …)."""

    text: str
    action: str


@dataclass(frozen=True)
class Start:
    """``start``: the firmware has just (re)booted."""

    text: str


@dataclass(frozen=True)
class FirmwareError:
    """An ``Error:`` line.

    ``kind`` says whether it is a communication error (the line is sent again) or a failure;
    ``last_line`` is the last line the firmware accepted, where it says so (Marlin).
    """

    text: str
    message: str
    last_line: int | None = None
    kind: ErrorKind = "failure"

    @property
    def requests_resend(self) -> bool:
        """True for the line-number and checksum errors a firmware recovers by a resend."""
        return self.kind == "communication"


@dataclass(frozen=True)
class Halt:
    """A ``!!`` or bare stop line: the firmware has stopped or refused a command."""

    text: str
    message: str


@dataclass(frozen=True)
class TemperatureReport:
    """An unsolicited temperature report, e.g. each second while ``M109`` waits."""

    text: str
    temperatures: dict[str, HeaterReading]


@dataclass(frozen=True)
class FirmwareInfo:
    """The ``FIRMWARE_NAME:…`` line of the ``M115`` answer, split into its fields."""

    text: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Capability:
    """One ``Cap:NAME:0|1`` line of the ``M115`` answer."""

    text: str
    name: str
    enabled: bool


@dataclass(frozen=True)
class Wait:
    """``wait``: the firmware's queue is empty and it waits for the host."""

    text: str


@dataclass(frozen=True)
class Unrecognised:
    """Any other line (boot chatter, ``Grbl``, noise after a reset)."""

    text: str


Reply: TypeAlias = (
    Ok
    | Resend
    | Busy
    | Echo
    | UnknownCommand
    | HostAction
    | Start
    | FirmwareError
    | Halt
    | TemperatureReport
    | FirmwareInfo
    | Capability
    | Wait
    | Unrecognised
)


def parse_temperatures(text: str) -> dict[str, HeaterReading]:
    """Read every heater of a temperature report.

    Parameters
    ----------
    text : str
        A report such as ``T:210.5 /210.0 B:40.2 /40.0 @:127`` or the part of an
        ``ok T:…`` line after ``ok``.

    Returns
    -------
    dict of str to HeaterReading
        Keyed by heater name (``T``, ``T0``, ``T1``, ``B`` …), in the order printed; empty
        when the text holds no reading.
    """
    readings: dict[str, HeaterReading] = {}
    for match in TEMPERATURE_RE.finditer(text):
        target = match["target"]
        readings[match["heater"]] = HeaterReading(
            actual_c=float(match["actual"]),
            target_c=float(target) if target is not None else None,
        )
    return readings


def parse_firmware_fields(text: str) -> dict[str, str]:
    """Split an ``M115`` line into its ``KEY:value`` fields.

    Parameters
    ----------
    text : str
        ``FIRMWARE_NAME:Marlin 2.1.2 (Github) SOURCE_CODE_URL:… PROTOCOL_VERSION:1.0 …``

    Returns
    -------
    dict of str to str
        ``{"FIRMWARE_NAME": "Marlin 2.1.2 (Github)", "PROTOCOL_VERSION": "1.0", …}``; a value
        runs to the next upper-case key, so values may hold spaces.
    """
    keys = list(FIRMWARE_FIELD_RE.finditer(text))
    fields: dict[str, str] = {}
    for key, following in zip(keys, [*keys[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        fields[key["key"]] = text[key.end() : end].strip()
    return fields


def firmware_flavor(fields: dict[str, str]) -> Flavor | None:
    """The firmware family an ``M115`` answer names, or None when it names none we know.

    ``FIRMWARE_NAME:Marlin …`` (and Marlin's derivatives that say so, such as
    ``Prusa-Firmware … based on Marlin`` and OctoPrint's ``Virtual Marlin``) is Marlin;
    ``FIRMWARE_NAME:Klipper`` is Klipper; ``FIRMWARE_NAME: RepRapFirmware for …`` is
    RepRapFirmware.

    Parameters
    ----------
    fields : dict of str to str
        From :func:`parse_firmware_fields`.

    Returns
    -------
    Flavor or None
    """
    name = fields.get("FIRMWARE_NAME", "").lower()
    if "klipper" in name:
        return "klipper"
    if "reprapfirmware" in name:
        return "reprapfirmware"
    if "marlin" in name:
        return "marlin"
    return None


def _unknown_command(text: str) -> UnknownCommand | None:
    for pattern in UNKNOWN_COMMAND_RES:
        if match := pattern.match(text):
            command = match["command"].strip()
            word = command.split()[0].upper() if command.split() else ""
            return UnknownCommand(text=text, word=word)
    return None


def parse_reply(line: str) -> Reply:
    """Classify one line the firmware printed.

    Parameters
    ----------
    line : str
        One reply line, with or without its line ending.

    Returns
    -------
    Reply
        One of :class:`Ok`, :class:`Resend`, :class:`Busy`, :class:`Echo`,
        :class:`UnknownCommand`, :class:`HostAction`, :class:`Start`,
        :class:`FirmwareError`, :class:`Halt`, :class:`TemperatureReport`,
        :class:`FirmwareInfo`, :class:`Capability`, :class:`Wait`, :class:`Unrecognised`.
    """
    text = line.strip()
    # Order matters: "echo:busy:" is a keep-alive before it is an echo, "ok T:…" is an ok,
    # and "echo:Unknown command" / "Error: Bad command" are unknown commands first.
    if match := OK_RE.match(text):
        rest = match["rest"]
        if not rest:
            return Ok(text=text)
        if FIRMWARE_NAME_RE.match(rest):
            return Ok(text=text, firmware=parse_firmware_fields(rest))
        n = OK_LINE_NO_RE.search(rest)
        planner = OK_PLANNER_FREE_RE.search(rest)
        buffer = OK_BUFFER_FREE_RE.search(rest)
        return Ok(
            text=text,
            line_no=int(n["line_no"]) if n is not None else None,
            temperatures=parse_temperatures(rest),
            planner_free=int(planner["free"]) if planner is not None else None,
            buffer_free=int(buffer["free"]) if buffer is not None else None,
        )
    if match := RESEND_RE.match(text):
        return Resend(text=text, line_no=int(match["line_no"]))
    if match := BUSY_RE.match(text):
        return Busy(text=text, reason=match["reason"].strip())
    if (unknown := _unknown_command(text)) is not None:
        return unknown
    if match := HOST_ACTION_RE.match(text):
        return HostAction(text=text, action=match["action"].lower())
    if match := ECHO_RE.match(text):
        return Echo(text=text, message=match["message"])
    if match := INFO_RE.match(text):
        return Echo(text=text, message=match["message"])
    if match := WARNING_RE.match(text):
        return Echo(text=text, message=match["message"])
    if START_RE.match(text):
        return Start(text=text)
    if match := ERROR_RE.match(text):
        message = match["message"].strip()
        last = LINE_ERROR_RE.search(message)
        communication = last is not None or COMM_ERROR_RE.search(message) is not None
        return FirmwareError(
            text=text,
            message=message,
            last_line=int(last["last_line"]) if last is not None else None,
            kind="communication" if communication else "failure",
        )
    if match := HALT_RE.match(text):
        return Halt(text=text, message=match["message"].strip())
    if match := FATAL_RE.match(text):
        return Halt(text=text, message=text)
    if FIRMWARE_NAME_RE.match(text):
        return FirmwareInfo(text=text, fields=parse_firmware_fields(text))
    if match := CAPABILITY_RE.match(text):
        return Capability(text=text, name=match["name"], enabled=match["value"] != "0")
    if TEMPERATURE_REPORT_RE.match(text):
        return TemperatureReport(text=text, temperatures=parse_temperatures(text))
    if WAIT_RE.match(text):
        return Wait(text=text)
    return Unrecognised(text=text)


def shows_life(reply: Reply) -> bool:
    """Whether a reply proves the firmware is still working for us (restarts the no-answer clock).

    Everything does except ``wait``, which Marlin prints precisely when it has nothing to do:
    if an ``ok`` is overdue, ``wait`` means a line or its answer was lost.

    Parameters
    ----------
    reply : Reply
        A parsed reply.

    Returns
    -------
    bool
    """
    return not isinstance(reply, Wait)
