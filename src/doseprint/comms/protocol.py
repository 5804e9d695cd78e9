"""The Marlin host protocol as pure logic: numbered lines, reply parsing, resends.

Nothing here reads a port, starts a thread or sleeps. :class:`MarlinProtocol` is fed the
printer's reply lines one at a time and asked which line to send next, so a test can drive a
whole print line by line and :mod:`doseprint.comms.streamer` only adds the clock and the port.

The conversation it implements, as Marlin hosts hold it:

1. ``M115`` (unnumbered): the firmware answers ``FIRMWARE_NAME:…``, ``Cap:…`` lines and
   ``ok``. A fresh USB connection resets most boards, so a ``start`` line may come first and
   an ``M115`` sent into the boot loader is lost; it is sent again after a quiet period.
2. ``N0 M110 N0*<xor>``: line numbering restarts, so command *k* (1-based) is line ``N<k>``.
3. Every command as ``N<k> <command>*<xor>``, where ``<xor>`` is the XOR of every byte before
   ``*``. The firmware checks that *k* is its last line + 1 and that the checksum matches;
   otherwise it answers ``Error:…, Last Line: <k-1>``, ``Resend: <k>``, ``ok`` and drops the
   line. Every accepted line is answered by one ``ok`` once it has been processed, in order.

Line numbers make delivery exactly-once: the firmware refuses a line whose number it has
already taken, so sending a line twice can never run it twice.

Lines are sent one at a time unless the ``M115`` answer includes ``Cap:ADVANCED_OK:1``: such
a firmware answers ``ok N<k> P<planner free> B<queue free>``, and the host keeps up to the
printer profile's ``rx_buffer_lines`` lines in flight, never more than the most free queue
slots it has reported (see :class:`MarlinProtocol`).
"""

from __future__ import annotations

import enum
import functools
import logging
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn, TypeAlias, assert_never

from doseprint.errors import InputError, PrinterHaltedError, PrinterTimeoutError, ResendLimitError

__all__ = [
    "BUSY_RE",
    "CAPABILITY_RE",
    "DOSE_WARNING_RE",
    "ECHO_RE",
    "ERROR_RE",
    "FIRMWARE_FIELD_RE",
    "FIRMWARE_NAME_RE",
    "HALT_RE",
    "HANDSHAKE_COMMAND",
    "LINE_ERROR_RE",
    "MAX_LINE_BYTES",
    "OK_BUFFER_FREE_RE",
    "OK_LINE_NO_RE",
    "OK_PLANNER_FREE_RE",
    "OK_RE",
    "PING_COMMAND",
    "RESEND_RE",
    "RESET_COMMAND",
    "START_RE",
    "TEMPERATURE_RE",
    "TEMPERATURE_REPORT_RE",
    "WAIT_RE",
    "Busy",
    "Capability",
    "Echo",
    "Event",
    "EventKind",
    "FirmwareError",
    "FirmwareInfo",
    "Halt",
    "HeaterReading",
    "HostLine",
    "MarlinProtocol",
    "Ok",
    "ProtocolState",
    "Reply",
    "Resend",
    "SendAhead",
    "Start",
    "TemperatureReport",
    "Unrecognised",
    "Wait",
    "checksum",
    "commands_from_gcode",
    "format_line",
    "parse_firmware_fields",
    "parse_host_line",
    "parse_reply",
    "parse_temperatures",
    "shows_life",
]

logger = logging.getLogger(__name__)

RESET_COMMAND = "M110 N0"
"""Sent as line 0 of every print: the firmware's next expected line becomes ``N1``."""

HANDSHAKE_COMMAND = "M115"
"""Asks the firmware who it is; its ``ok`` tells us it is up and listening."""

PING_COMMAND = "M105"
"""Sent once, unnumbered, when the firmware has been silent too long (as Marlin hosts do)."""

MAX_LINE_BYTES = 95
"""Longest numbered line Marlin takes: its ``MAX_CMD_SIZE`` of 96 bytes holds a final NUL."""

# Reply regexes. Each is matched against one reply line with surrounding whitespace removed.

OK_RE = re.compile(r"^ok\b\s*(?P<rest>.*)$", re.IGNORECASE)
"""``ok`` with whatever follows it.

Groups: ``rest``, the text after ``ok``: empty, ``N12 P15 B3`` (``ADVANCED_OK``), or a
temperature report (the answer to ``M105``).
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
"""A resend request in any dialect: ``Resend: 12``, ``Resend:12``, ``rs N12``, ``Resend:N:12``.

Groups: ``line_no``, the first line the firmware wants again.
"""

BUSY_RE = re.compile(r"^(?:echo:\s*)?busy:\s*(?P<reason>.*)$", re.IGNORECASE)
"""Marlin's host keep-alive, ``busy: processing`` (printed as ``echo:busy: …`` by Marlin 2).

Groups: ``reason`` (``processing``, ``paused for user`` …).
"""

ECHO_RE = re.compile(r"^echo:\s?(?P<message>.*)$", re.IGNORECASE)
"""An informational ``echo:`` line. Groups: ``message``."""

START_RE = re.compile(r"^start$", re.IGNORECASE)
"""The first line Marlin prints after a reset. No groups."""

ERROR_RE = re.compile(r"^error\s*:\s*(?P<message>.*)$", re.IGNORECASE)
"""An ``Error:`` line. Groups: ``message``, the text after the colon."""

LINE_ERROR_RE = re.compile(r"Last Line:\s*(?P<last_line>-?\d+)\s*$", re.IGNORECASE)
"""The tail of a transmission error that Marlin follows with a resend request.

``Error:Line Number is not Last Line Number+1, Last Line: 5``, ``Error:checksum mismatch,
Last Line: 5``, ``Error:No Checksum with line number, Last Line: 5`` and ``Error:No Line
Number with checksum, Last Line: 5`` all end so. Groups: ``last_line``, the last line the
firmware accepted.
"""

HALT_RE = re.compile(r"^!!\s*(?P<message>.*)$")
"""A fatal ``!!`` line (the firmware has stopped). Groups: ``message``."""

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
"""Marlin's idle marker: its queue is empty and it waits for the host. No groups."""

DOSE_WARNING_RE = re.compile(
    r"(?P<reason>cold extrusion prevented|too long extrusion prevented)", re.IGNORECASE
)
"""An ``echo:`` that means the firmware skipped an extrusion, so a tablet misses its dose.

Groups: ``reason``.
"""

HOST_N_RE = re.compile(r"^N(?P<line_no>-?\d+)\s*(?P<command>.*)$")
"""A host line's ``N<n>`` prefix. Groups: ``line_no``, ``command`` (the rest)."""

GCODE_N_RE = re.compile(r"^N\d+\s+")
"""An ``N<n>`` prefix already present in a G-code file. No groups."""

GCODE_CHECKSUM_RE = re.compile(r"\*\d*\s*$")
"""A ``*<xor>`` suffix already present in a G-code file. No groups."""


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
    """

    text: str
    line_no: int | None = None
    temperatures: dict[str, HeaterReading] = field(default_factory=dict)
    planner_free: int | None = None
    buffer_free: int | None = None


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
    """An ``echo:`` line: information, not an answer."""

    text: str
    message: str


@dataclass(frozen=True)
class Start:
    """``start``: the firmware has just (re)booted."""

    text: str


@dataclass(frozen=True)
class FirmwareError:
    """An ``Error:`` line. ``last_line`` is set for transmission errors, which get a resend."""

    text: str
    message: str
    last_line: int | None = None

    @property
    def requests_resend(self) -> bool:
        """True for the line-number and checksum errors that Marlin follows with a resend."""
        return self.last_line is not None


@dataclass(frozen=True)
class Halt:
    """A ``!!`` line: the firmware has stopped."""

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


def parse_reply(line: str) -> Reply:
    """Classify one line the firmware printed.

    Parameters
    ----------
    line : str
        One reply line, with or without its line ending.

    Returns
    -------
    Reply
        One of :class:`Ok`, :class:`Resend`, :class:`Busy`, :class:`Echo`, :class:`Start`,
        :class:`FirmwareError`, :class:`Halt`, :class:`TemperatureReport`,
        :class:`FirmwareInfo`, :class:`Capability`, :class:`Wait`, :class:`Unrecognised`.
    """
    text = line.strip()
    # Order matters: "echo:busy:" is a keep-alive before it is an echo, and "ok T:…" is an ok.
    if match := OK_RE.match(text):
        rest = match["rest"]
        if not rest:
            return Ok(text=text)
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
    if match := ECHO_RE.match(text):
        return Echo(text=text, message=match["message"])
    if START_RE.match(text):
        return Start(text=text)
    if match := ERROR_RE.match(text):
        message = match["message"].strip()
        last = LINE_ERROR_RE.search(message)
        return FirmwareError(
            text=text,
            message=message,
            last_line=int(last["last_line"]) if last is not None else None,
        )
    if match := HALT_RE.match(text):
        return Halt(text=text, message=match["message"].strip())
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


# Host lines.


def checksum(body: str) -> int:
    """XOR of every byte of ``body`` (UTF-8), the checksum Marlin checks after ``*``.

    Parameters
    ----------
    body : str
        Everything before ``*``: ``N12 G1 X10``.

    Returns
    -------
    int
        0..255.
    """
    return functools.reduce(operator.xor, body.encode("utf-8"), 0)


def format_line(line_no: int, command: str) -> str:
    """The wire form of a numbered command: ``N<n> <command>*<xor>`` (no line ending).

    Parameters
    ----------
    line_no : int
        Line number; 0 for the ``M110 N0`` that starts a print.
    command : str
        One G-code command without comment, line number or checksum.

    Returns
    -------
    str
    """
    body = f"N{line_no} {command}"
    return f"{body}*{checksum(body)}"


@dataclass(frozen=True)
class HostLine:
    """A line as the host sent it, split the way the firmware reads it.

    Attributes
    ----------
    line_no : int or None
        ``N`` number; None for an unnumbered line.
    command : str
        The command alone (``G1 X10``).
    checksum : int or None
        The number after ``*``; None when there is none.
    body : str
        Everything before ``*``: the bytes the checksum covers.
    """

    line_no: int | None
    command: str
    checksum: int | None
    body: str

    @property
    def checksum_ok(self) -> bool:
        """True when the line has a checksum and it matches its body."""
        return self.checksum is not None and self.checksum == checksum(self.body)


def parse_host_line(raw: str) -> HostLine:
    """Split a host line into line number, command and checksum.

    Parameters
    ----------
    raw : str
        ``N12 G1 X10*87``, ``M105`` …, with or without its line ending.

    Returns
    -------
    HostLine
    """
    text = raw.strip()
    body, star, tail = text.rpartition("*")
    if star and tail.strip().isdigit():
        sum_value: int | None = int(tail)
    else:
        body, sum_value = text, None
    match = HOST_N_RE.match(body)
    if match is not None:
        return HostLine(int(match["line_no"]), match["command"].strip(), sum_value, body)
    return HostLine(None, body.strip(), sum_value, body)


def commands_from_gcode(text: str) -> list[str]:
    """The commands of a G-code program, in order, ready to number and send.

    Drops comments (from ``;`` to the end of the line, so ``;TABLET:`` markers are not
    sent), blank lines, and any ``N<n>`` prefix or ``*<xor>`` suffix the file already has.

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    list of str
        One command per entry, stripped of surrounding whitespace.
    """
    commands: list[str] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        line = GCODE_N_RE.sub("", line)
        line = GCODE_CHECKSUM_RE.sub("", line).strip()
        if line:
            commands.append(line)
    return commands


# Events: what happened, for the streamer to time-stamp and the record to keep.

EventKind = Literal[
    "firmware", "sent", "ok", "resend", "busy", "temperature", "echo", "error", "timeout"
]


@dataclass(frozen=True)
class Event:
    """One thing that happened in the conversation.

    Attributes
    ----------
    kind : EventKind
        ``ok`` events carry the line they acknowledge; ``resend`` the line asked for.
    line_no : int or None
        Protocol line number (``N``); command *k* is line *k*, the ``M110`` is line 0.
    text : str
        The reply line as printed, or a note for events the protocol infers.
    """

    kind: EventKind
    line_no: int | None
    text: str


SendAhead = Literal["advanced_ok", "always"]
"""When a print may keep more than one line awaiting its ``ok`` (see :class:`MarlinProtocol`)."""


class ProtocolState(enum.Enum):
    """Where a :class:`MarlinProtocol` is in a print."""

    HANDSHAKE = "handshake"
    """Waiting for the answer to ``M115``."""
    STREAMING = "streaming"
    """Sending numbered lines and collecting their ``ok``."""
    DONE = "done"
    """Every line has been acknowledged."""


class MarlinProtocol:
    """The host side of one print, as a state machine without I/O.

    Call :meth:`next_to_send` until it returns None and write each line; feed every reply
    line to :meth:`on_reply`; when nothing has arrived for too long call :meth:`on_timeout`
    and write the line it returns. :attr:`done` turns True when the firmware has
    acknowledged the last command.

    Parameters
    ----------
    commands : sequence of str
        The print's commands, without comments, blank lines, numbers or checksums (see
        :func:`commands_from_gcode`).
    window : int
        Most numbered lines that may await their ``ok`` at once (send-ahead); 1 is
        ping-pong. The printer profile's ``rx_buffer_lines``: at most the firmware's command
        queue length (Marlin's ``BUFSIZE``, 4 by default).
    send_ahead : {"advanced_ok", "always"}
        ``advanced_ok`` (the default) uses ``window`` only once the ``M115`` answer says
        ``Cap:ADVANCED_OK:1``; a firmware that does not (or answers ``M115`` with no
        capabilities at all) gets one line at a time, since nothing says how many lines it
        can queue. ``always`` trusts ``window`` whatever the firmware says. Either way, when
        ``ok`` replies carry ``B<n>`` (free command-queue slots), the window never exceeds
        the most free slots the firmware has reported, so the host can never send more
        lines than the firmware has room for.
    max_resends_per_line : int
        Resend requests honoured for one line before the print stops with
        :class:`~doseprint.errors.ResendLimitError`.
    handshake_attempts : int
        ``M115`` sent at most this many times before giving up.
    max_line_bytes : int or None
        Longest numbered line the firmware takes; None skips the check.

    Raises
    ------
    doseprint.errors.InputError
        A command is too long for the firmware or holds a character that would break the
        line's framing (``*``, a line break).
    """

    def __init__(
        self,
        commands: Sequence[str],
        *,
        window: int = 1,
        send_ahead: SendAhead = "advanced_ok",
        max_resends_per_line: int = 10,
        handshake_attempts: int = 5,
        max_line_bytes: int | None = MAX_LINE_BYTES,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        if send_ahead not in ("advanced_ok", "always"):
            raise ValueError(f"send_ahead must be 'advanced_ok' or 'always', not {send_ahead!r}")
        if max_resends_per_line < 0 or handshake_attempts < 1:
            raise ValueError("max_resends_per_line must be >= 0 and handshake_attempts >= 1")
        self._commands = [RESET_COMMAND, *commands]
        self._wire = [format_line(n, c) for n, c in enumerate(self._commands)]
        _check_lines(self._commands, self._wire, max_line_bytes)
        self.window = window
        self.send_ahead: SendAhead = send_ahead
        self.max_resends_per_line = max_resends_per_line
        self.handshake_attempts = handshake_attempts
        self.state = ProtocolState.HANDSHAKE
        self.firmware: dict[str, str] = {}
        self.capabilities: dict[str, bool] = {}
        self.lines_sent = 0
        self.resends = 0
        self.max_in_flight = 0
        """Most numbered lines that awaited their ``ok`` at once, so far."""
        self.buffer_free_max: int | None = None
        """Most free command-queue slots any ``ok`` reported (its ``B``); None if none did."""
        # Line numbers: `_next` is sent next, `_acked` has its ok, `_sent_max` went out last.
        self._next = 0
        self._acked = -1
        self._sent_max = -1
        self._resend_counts: dict[int, int] = {}
        # Oks that answer rejected or unnumbered lines and so acknowledge nothing.
        self._swallow_oks = 0
        # After a resend request for `_stale_for`, the lines already in flight behind it are
        # refused with the same request; that many repeats are expected and not acted on.
        self._stale_for: int | None = None
        self._stale_resends = 0
        # One line at a time until this line is acknowledged (after a resend or recovery).
        self._throttle_until: int | None = None
        # While a ping is out: the first line sent after it. After its answer, unanswered
        # lines below it were lost; a resend request then also proves them processed.
        self._ping_mark: int | None = None
        self._recover_below: int | None = None
        # Temperature poll: asked for by the host's clock (request_poll), sent as an
        # unnumbered M105 once no numbered line is in flight, so the next ok is its answer.
        self._poll_due = False
        self._poll_pending = False
        self._late_poll_oks = 0
        self._polled_at = -2  # _sent_max when the last poll went out: one per line at most
        self.polls = 0
        """Temperature polls sent."""
        # Handshake bookkeeping.
        self._handshake_due = True
        self._m115_sent = 0
        self._m115_answered = 0
        self._saw_firmware_name = False
        self._round_has_name = False
        self._swallow_m115_ok = False

    # Read-outs

    @property
    def done(self) -> bool:
        """True once the firmware has acknowledged every command."""
        return self.state is ProtocolState.DONE

    @property
    def commands_total(self) -> int:
        """Number of commands in the print (the ``M110`` not counted)."""
        return len(self._commands) - 1

    @property
    def last_acked(self) -> int:
        """Number (1-based, = its ``N``) of the last command acknowledged; 0 for none.

        Commands are acknowledged in order, so this is also how many were, and
        ``commands[last_acked:]`` are the ones the firmware has not confirmed.
        """
        return max(self._acked, 0)

    @property
    def effective_window(self) -> int:
        """Numbered lines that may await their ``ok`` at once now (see ``send_ahead``)."""
        if self.send_ahead == "advanced_ok" and not self.capabilities.get("ADVANCED_OK"):
            return 1
        if self.buffer_free_max is not None:
            return max(1, min(self.window, self.buffer_free_max))
        return self.window

    @property
    def ping_pending(self) -> bool:
        """True while an ``M105`` ping awaits its answer."""
        return self._ping_mark is not None

    def request_poll(self) -> None:
        """Ask for the temperatures: an unnumbered ``M105`` goes out as soon as no numbered
        line awaits its ``ok`` (no new line is sent meanwhile), and its ``ok T:…`` is
        reported as a ``temperature`` event, acknowledging nothing. At most one poll goes
        out per numbered line sent, so polling never starves the print. Ignored outside
        streaming and while a poll is out already."""
        if self.state is ProtocolState.STREAMING and not self._poll_pending:
            self._poll_due = True

    def command(self, line_no: int) -> str:
        """The command sent as line ``line_no`` (0 is the ``M110``)."""
        return self._commands[line_no]

    # Sending

    def next_to_send(self) -> str | None:
        """The next line to write, or None when the window is full or nothing is left.

        Returns
        -------
        str or None
            A wire line without line ending (``N12 G1 X10*87`` or ``M115``). The protocol
            counts it as sent.
        """
        if self.state is ProtocolState.HANDSHAKE:
            if not self._handshake_due:
                return None
            self._handshake_due = False
            return self._send_m115()
        if self.state is ProtocolState.DONE:
            return None
        if self._poll_pending:
            return None  # its answer must come before any numbered line's
        if self._poll_due:
            quiet = (self._next - 1 - self._acked <= 0 and self._ping_mark is None
                     and self._recover_below is None and self._swallow_oks == 0
                     and not self._swallow_m115_ok and self._late_poll_oks == 0
                     and self._sent_max > self._polled_at)
            if quiet:
                self._poll_due = False
                self._poll_pending = True
                self._polled_at = self._sent_max
                self.polls += 1
                self.lines_sent += 1
                return PING_COMMAND
            if self._next >= len(self._wire):
                return None
            if self._next - 1 - self._acked > 0 and self._sent_max > self._polled_at:
                return None  # let the lines in flight drain first
        if self._next >= len(self._wire):
            return None
        if self._throttle_until is not None and self._acked >= self._throttle_until:
            self._throttle_until = None
        slow = self._throttle_until is not None or self._recover_below is not None
        limit = 1 if slow else self.effective_window
        in_flight = self._next - 1 - self._acked
        if in_flight >= limit:
            return None
        line_no = self._next
        if line_no <= self._sent_max:
            self.resends += 1
        self._sent_max = max(self._sent_max, line_no)
        self._next += 1
        self.lines_sent += 1
        self.max_in_flight = max(self.max_in_flight, in_flight + 1)
        return self._wire[line_no]

    def on_timeout(self, waited_s: float) -> str:
        """React to a silence: the line to write now.

        In the handshake ``M115`` is repeated (a board that reset on connecting lost the
        first); during the print one ``M105`` ping is sent. A second silence gives up.

        Parameters
        ----------
        waited_s : float
            How long nothing arrived, s (for the message).

        Returns
        -------
        str
            The line to write.

        Raises
        ------
        doseprint.errors.PrinterTimeoutError
            The firmware did not answer the handshake, or stayed silent after the ping.
        """
        if self.state is ProtocolState.HANDSHAKE:
            if self._m115_sent >= self.handshake_attempts:
                raise PrinterTimeoutError(
                    f"the printer did not answer M115 ({self._m115_sent} tries, "
                    f"{waited_s:.1f} s of silence after the last)",
                    last_acked=0,
                    hint="check that the printer is on, that PORT is its port and that "
                    "--baud matches the firmware (Marlin's default is 115200)",
                )
            return self._send_m115()
        if self._poll_pending:
            # The poll's answer is overdue: the ping replaces it; should the poll's ok come
            # after all, it is not taken for a line's.
            self._poll_pending = False
            self._late_poll_oks += 1
        if self._ping_mark is None:
            self._ping_mark = self._sent_max + 1
            self.lines_sent += 1
            return PING_COMMAND
        waiting_for = self._acked + 1
        raise PrinterTimeoutError(
            f"the printer stopped answering: no reply for {waited_s:.1f} s to line "
            f"{waiting_for} ({self._describe(waiting_for)}) nor to an M105 ping",
            last_acked=self.last_acked,
            hint="check the printer's display and its USB cable; heaters and motors are "
            "being switched off. The batch record shows how far the print got; these "
            "tablets cannot be released",
        )

    def _send_m115(self) -> str:
        self._m115_sent += 1
        self._round_has_name = False
        self.lines_sent += 1
        return HANDSHAKE_COMMAND

    # Receiving

    def on_reply(self, line: str | Reply) -> list[Event]:
        """Take one reply line; return what it meant.

        Parameters
        ----------
        line : str or Reply
            The line as read (or already parsed with :func:`parse_reply`).

        Returns
        -------
        list of Event
            Usually one; a resend that proves lines processed adds their ``ok`` events.

        Raises
        ------
        doseprint.errors.PrinterHaltedError
            ``Error:`` (other than a transmission error), ``!!``, a skipped extrusion, a
            reset after the first command went out, or line numbers out of step.
        doseprint.errors.ResendLimitError
            One line was asked for again more than ``max_resends_per_line`` times.
        """
        reply = parse_reply(line) if isinstance(line, str) else line
        text = reply.text
        match reply:
            case Ok():
                return self._on_ok(reply)
            case Resend():
                return self._on_resend(reply)
            case Busy():
                return [Event("busy", None, text)]
            case Echo():
                dose = DOSE_WARNING_RE.search(reply.message)
                if dose is not None and self.state is ProtocolState.STREAMING:
                    self._halt(
                        f"the firmware skipped an extrusion ({dose['reason']})",
                        text,
                        hint="a tablet printed so misses part of its dose; check the nozzle "
                        "temperature in the printer profile and the start template",
                    )
                return [Event("echo", None, text)]
            case Start():
                return self._on_start(reply)
            case FirmwareError():
                if reply.requests_resend:
                    return [Event("error", None, text)]
                self._halt("the printer reported an error", text)
            case Halt():
                self._halt("the printer halted", text)
            case TemperatureReport():
                return [Event("temperature", None, text)]
            case FirmwareInfo():
                return self._on_firmware_info(reply)
            case Capability():
                self.capabilities[reply.name] = reply.enabled
                return [Event("firmware", None, text)]
            case Wait() | Unrecognised():
                return [Event("echo", None, text)]
            case _:
                assert_never(reply)

    def _on_firmware_info(self, reply: FirmwareInfo) -> list[Event]:
        self._m115_answered += 1
        self._saw_firmware_name = True
        if self.state is ProtocolState.HANDSHAKE or not self.firmware:
            self._round_has_name = True
            self.firmware = dict(reply.fields)
        if self.state is not ProtocolState.HANDSHAKE and self._m115_answered <= self._m115_sent:
            # The late answer to a repeated handshake M115: its ok acknowledges no line.
            self._swallow_m115_ok = True
        return [Event("firmware", None, reply.text)]

    def _on_ok(self, reply: Ok) -> list[Event]:
        event = Event("ok", None, reply.text)
        if reply.buffer_free is not None and (
            self.buffer_free_max is None or reply.buffer_free > self.buffer_free_max
        ):
            # Every ok counts, even one that acknowledges nothing: each says how much room
            # the firmware's queue has, and the most it ever had bounds the window.
            self.buffer_free_max = reply.buffer_free
        if self.state is ProtocolState.HANDSHAKE:
            # Once the firmware has shown it answers M115 with its name, only an ok after
            # the name ends the handshake; a stray ok from before a reset does not.
            if self._saw_firmware_name and not self._round_has_name:
                return [event]
            self.state = ProtocolState.STREAMING
            return [event]
        if self.state is ProtocolState.DONE:
            return [event]
        if self._swallow_oks > 0:
            self._swallow_oks -= 1
            return [event]
        if self._swallow_m115_ok:
            self._swallow_m115_ok = False
            return [event]
        if self._poll_pending and self._next - 1 - self._acked <= 0:
            self._poll_pending = False
            return [Event("temperature", None, reply.text)]
        if self._late_poll_oks > 0 and reply.temperatures and not self._oldest_is_ping():
            self._late_poll_oks -= 1
            return [Event("temperature", None, reply.text)]
        if self._ping_mark is not None and reply.temperatures and not self._oldest_is_ping():
            return self._on_pong(reply)
        if self._acked + 1 >= self._next:
            logger.warning("ok with no line awaiting one: %r", reply.text)
            return [event]
        self._acknowledge(self._acked + 1)
        self._recover_below = None
        return [Event("ok", self._acked, reply.text)]

    def _oldest_is_ping(self) -> bool:
        # An M105 in the job, sent before the ping, is answered first: that ok is its ack.
        oldest = self._acked + 1
        return oldest < self._next and self._commands[oldest].split()[0].upper() == "M105"

    def _on_pong(self, reply: Ok) -> list[Event]:
        mark = self._ping_mark
        assert mark is not None
        self._ping_mark = None
        oldest = self._acked + 1
        if oldest < min(self._next, mark):
            # The firmware answered a ping sent after these lines, so it has seen all it ever
            # will of them: they or their oks were lost. Send them again; the firmware's line
            # check refuses any it already ran and says where it is.
            logger.warning("no ok for line %d although the ping was answered; resending", oldest)
            self._rewind(oldest)
            self._recover_below = mark
        return [Event("temperature", None, reply.text)]

    def _on_resend(self, reply: Resend) -> list[Event]:
        n = reply.line_no
        events = [Event("resend", n, reply.text)]
        if self.state is not ProtocolState.STREAMING:
            return events
        # Marlin follows every resend request with an ok that acknowledges nothing.
        self._swallow_oks += 1
        if n > self._sent_max + 1:
            self._halt(f"the printer asked for line {n}, which was never sent", reply.text)
        if n <= self._acked:
            self._halt(
                f"the printer asked again for line {n}, which it had already acknowledged: "
                "its line numbering is out of step (did it reset?)",
                reply.text,
            )
        if self._stale_resends > 0 and n == self._stale_for:
            self._stale_resends -= 1
            return events
        if self._recover_below is not None:
            # Recovery after a ping: everything below the ping that the firmware says it
            # took has been processed (the ping was answered after it), so it is acked.
            for line_no in range(self._acked + 1, min(n, self._recover_below)):
                self._acknowledge(line_no)
                events.append(Event("ok", line_no, f"ok (implied by {reply.text!r})"))
            self._recover_below = None
        in_flight_behind = self._next - 1 - n
        self._rewind(n)
        self._stale_for = n
        self._stale_resends = max(in_flight_behind, 0)
        return events

    def _on_start(self, reply: Start) -> list[Event]:
        event = Event("echo", None, reply.text)
        if self.state is ProtocolState.HANDSHAKE:
            return [event]
        if self.state is ProtocolState.STREAMING and self._sent_max <= 0:
            # Reset straight after connecting, before any command went out: start over.
            logger.warning("the printer reset before the first command; repeating the handshake")
            self.state = ProtocolState.HANDSHAKE
            self._handshake_due = True
            self._next, self._acked, self._sent_max = 0, -1, -1
            self._swallow_oks = 0
            self._ping_mark = None
            return [event]
        self._halt("the printer restarted during the print", reply.text)

    # Bookkeeping helpers

    def _acknowledge(self, line_no: int) -> None:
        self._acked = line_no
        if self._stale_for is not None and line_no >= self._stale_for:
            self._stale_for, self._stale_resends = None, 0
        if self._acked >= len(self._wire) - 1:
            self.state = ProtocolState.DONE

    def _rewind(self, line_no: int) -> None:
        count = self._resend_counts.get(line_no, 0) + 1
        self._resend_counts[line_no] = count
        if count > self.max_resends_per_line:
            raise ResendLimitError(
                f"the printer asked for line {line_no} ({self._describe(line_no)}) "
                f"{count} times; the serial link is too noisy to print on",
                last_acked=self.last_acked,
                hint="use a shorter or shielded USB cable, keep it away from motor wires, "
                "or lower --baud; these tablets cannot be released",
            )
        self._next = line_no
        self._throttle_until = line_no

    def _describe(self, line_no: int) -> str:
        if 0 <= line_no < len(self._commands):
            return repr(self._commands[line_no])
        return "none"

    def _halt(self, what: str, text: str, *, hint: str | None = None) -> NoReturn:
        last = self.last_acked
        after = (
            f"after command {last} of {self.commands_total} ({self._commands[last]!r})"
            if last > 0
            else "before the first command was acknowledged"
        )
        raise PrinterHaltedError(
            f"{what} {after}: {text}",
            last_acked=last,
            hint=hint
            or "check the printer's display and fix the fault before printing again; the "
            "batch record shows how far the print got and these tablets cannot be released",
        )


def _check_lines(commands: Sequence[str], wire: Sequence[str], max_line_bytes: int | None) -> None:
    problems: list[str] = []
    for line_no, (command, line) in enumerate(zip(commands, wire, strict=True)):
        if not command.strip() or any(c in command for c in "*\r\n"):
            problems.append(f"command {line_no} {command!r} is empty or holds '*' or a line break")
        elif max_line_bytes is not None and len(line.encode("utf-8")) > max_line_bytes:
            problems.append(
                f"command {line_no} {command!r} is {len(line.encode('utf-8'))} bytes with its "
                f"line number and checksum; the firmware takes at most {max_line_bytes}"
            )
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError(
            "; ".join(problems[:5]) + more,
            key="job.gcode",
            hint="shorten the command (fewer decimals, split long M117 messages)",
        )
