"""The host protocol of a print as pure logic: numbered lines, replies, resends, pre-flight.

Nothing here reads a port, starts a thread or sleeps. :class:`MarlinProtocol` is fed the
printer's reply lines one at a time and asked which line to send next, so a test can drive a
whole print line by line and :mod:`doseprint.comms.streamer` only adds the clock and the port.
Replies are classified by :mod:`doseprint.comms.replies`, lines framed by
:mod:`doseprint.comms.framing`, the pre-flight planned by :mod:`doseprint.comms.preflight`
and the waits for each ``ok`` derived by :mod:`doseprint.comms.timing`.

The conversation it implements, as Marlin hosts hold it (Klipper and RepRapFirmware, in its
Marlin emulation, answer the same way, see below):

1. ``M115`` (unnumbered): the firmware answers ``FIRMWARE_NAME:…``, ``Cap:…`` lines and
   ``ok``. A fresh USB connection resets most boards, so a ``start`` line may come first and
   an ``M115`` sent into the boot loader is lost; it is sent again after a quiet period.
   Given the printer profile's ``flavor``, the firmware must name that family, or the print
   is refused before anything else is sent.
2. The pre-flight (unnumbered, one at a time): a harmless form of every command word the
   job uses that not every build has (:mod:`~doseprint.comms.preflight`); a firmware that
   does not know one refuses the job.
3. ``N0 M110 N0*<xor>``: line numbering restarts, so command *k* (1-based) is line ``N<k>``.
4. Every command as ``N<k> <command>*<xor>``, where ``<xor>`` is the XOR of every byte before
   ``*``. Marlin checks that *k* is its last line + 1 and that the checksum matches;
   otherwise it answers ``Error:…, Last Line: <k-1>``, ``Resend: <k>`` and (from Marlin 2.1
   on, and in 1.x) ``ok``, drops the line and empties its receive buffer, so the lines sent
   behind it are lost without a word. Every accepted line is answered by one ``ok`` once it
   has been processed, in order.

Line numbers make delivery exactly-once on Marlin: the firmware refuses a line whose number
it has already taken, so sending a line twice can never run it twice. Klipper ignores line
numbers and checksums (``klippy/gcode.py``), and RepRapFirmware drops a line with a bad
checksum without a word and has no line continuity check: on those a line sent twice runs
twice, so a lost line or a lost ``ok`` stops the print safely (:class:`LineLostError`)
instead of being sent again.

Lines are sent one at a time unless the ``M115`` answer includes ``Cap:ADVANCED_OK:1``: such
a firmware answers ``ok N<k> P<planner free> B<queue free>``, and the host keeps up to the
printer profile's ``rx_buffer_lines`` lines in flight, never more than the most free queue
slots it has reported (see :class:`MarlinProtocol`).

A lost line or a lost ``ok`` shows as an ``ok`` that does not come. Given each command's
planned duration, the wait for an ``ok`` is bounded by the motion queued ahead of it
(:func:`~doseprint.comms.timing.ok_budgets`); past it, one ``M105`` ping is sent, whose
answer proves which lines the firmware has seen (see :meth:`MarlinProtocol.on_overdue`).
Waits with no planned bound (heating, homing) get no ping while the firmware's keep-alives
and temperature reports come. Every line also has a hard bound that only an ``ok`` moving
the print on restarts (:meth:`MarlinProtocol.stall_limit_s`,
:func:`~doseprint.comms.timing.stall_limits`): a firmware that keeps sending ``busy:``,
temperature reports or noise but never the ``ok`` is given up on
(:meth:`MarlinProtocol.on_stalled`), saying what it sent instead (:class:`Heard`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn, assert_never

from doseprint.comms.framing import (
    MAX_LINE_BYTES,
    HostLine,
    checksum,
    commands_from_gcode,
    format_line,
    parse_host_line,
)
from doseprint.comms.preflight import PreflightPlan, Probe, remedy
from doseprint.comms.replies import (
    BUSY_RE,
    CAPABILITY_RE,
    DOSE_WARNING_RE,
    ECHO_RE,
    ERROR_RE,
    FIRMWARE_FIELD_RE,
    FIRMWARE_NAME_RE,
    HALT_RE,
    LINE_ERROR_RE,
    OK_BUFFER_FREE_RE,
    OK_LINE_NO_RE,
    OK_PLANNER_FREE_RE,
    OK_RE,
    RESEND_RE,
    START_RE,
    TEMPERATURE_RE,
    TEMPERATURE_REPORT_RE,
    WAIT_RE,
    Busy,
    Capability,
    Echo,
    FirmwareError,
    FirmwareInfo,
    Flavor,
    Halt,
    HeaterReading,
    HostAction,
    Ok,
    Reply,
    Resend,
    Start,
    TemperatureReport,
    UnknownCommand,
    Unrecognised,
    Wait,
    firmware_flavor,
    parse_firmware_fields,
    parse_reply,
    parse_temperatures,
    shows_life,
)
from doseprint.comms.timing import OK_FLOOR_S, ok_budgets, stall_limits
from doseprint.errors import (
    FirmwareRefusedError,
    InputError,
    LineLostError,
    PrinterHaltedError,
    PrinterTimeoutError,
    ResendLimitError,
)
from doseprint.gcode.tokens import command_word

__all__ = [
    "BUSY_GRACE_S",
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
    "RESEND_OK_GRACE_S",
    "RESEND_RE",
    "RESET_COMMAND",
    "STALE_SETTLE_S",
    "START_RE",
    "TEMPERATURE_RE",
    "TEMPERATURE_REPORT_RE",
    "WAIT_RE",
    "Busy",
    "Capability",
    "Echo",
    "FirmwareError",
    "FirmwareInfo",
    "Flavor",
    "Halt",
    "Handshake",
    "Heard",
    "HeaterReading",
    "HostAction",
    "HostLine",
    "MarlinProtocol",
    "Ok",
    "OkWait",
    "Ping",
    "Poll",
    "PreflightRun",
    "ProtocolState",
    "Reply",
    "Resend",
    "ResendRecovery",
    "SendAhead",
    "Start",
    "TemperatureReport",
    "UnknownCommand",
    "Unrecognised",
    "Wait",
    "WireEvent",
    "WireEventKind",
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
"""Sent once, unnumbered, when an ``ok`` is overdue or the firmware has been silent too long."""

STALE_SETTLE_S = 0.05
"""After a resend request with lines sent ahead of the line asked for, how long to let those
lines arrive before the line goes out again. Marlin empties its receive buffer after a
refused line (``queue.cpp``, ``gcode_line_error``); a line sent ahead that was still on the
wire is refused in turn when it arrives, and that refusal empties the buffer again,
taking with it anything sent behind it, such as the line sent again too early. At 115200
baud three 40-byte lines take about 10 ms on the wire; USB and pseudo-terminals are faster.
A refusal later still is found by the wait for the ``ok``."""

BUSY_GRACE_S = 4.0
"""After a ``busy:`` keep-alive, the least the oldest line's ``ok`` is waited for, s: twice
Marlin's ``DEFAULT_KEEPALIVE_INTERVAL`` of 2 s (``Configuration_adv.h``), so the next
keep-alive may be late once without a ping."""

RESEND_OK_GRACE_S = 1.0
"""How long the first resend request of a print waits for the ``ok`` Marlin prints after
``Resend:`` (``queue.cpp`` ``flush_and_request_resend``) before taking the firmware for one
that prints none (some Marlin 2.0 builds); OctoPrint's host waits as long
(``octoprint/util/comm.py``, ``resendOk`` timeout)."""


# Wire events: what happened on the link, for the streamer to time-stamp and the record to
# keep. Named apart from the record's own events (records.states.EventKind), which they
# are not: a print's record holds them as entries of its "lines" and "firmware" events.

WireEventKind = Literal[
    "firmware",
    "preflight",
    "sent",
    "ok",
    "resend",
    "busy",
    "temperature",
    "echo",
    "error",
    "timeout",
]


@dataclass(frozen=True)
class WireEvent:
    """One thing that happened in the conversation with the firmware.

    Attributes
    ----------
    kind : WireEventKind
        ``ok`` events carry the line they acknowledge; ``resend`` the line asked for;
        ``preflight`` events are the answers to the pre-flight's probes.
    line_no : int or None
        Protocol line number (``N``); command *k* is line *k*, the ``M110`` is line 0.
    text : str
        The reply line as printed, or a note for events the protocol infers.
    """

    kind: WireEventKind
    line_no: int | None
    text: str


SendAhead = Literal["advanced_ok", "always"]
"""When a print may keep more than one line awaiting its ``ok`` (see :class:`MarlinProtocol`)."""


class ProtocolState(enum.Enum):
    """Where a :class:`MarlinProtocol` is in a print."""

    HANDSHAKE = "handshake"
    """Waiting for the answer to ``M115``."""
    PREFLIGHT = "preflight"
    """Sending the pre-flight's probes, one at a time."""
    STREAMING = "streaming"
    """Sending numbered lines and collecting their ``ok``."""
    DONE = "done"
    """Every line has been acknowledged."""


# Sub-states: each models one part of the conversation, with the transitions it takes.
# MarlinProtocol holds one of each (the pre-flight's and the ping's only while they last)
# beside its line counters.


@dataclass
class Handshake:
    """The ``M115`` rounds that open a print (step 1), and their late answers.

    A fresh USB connection resets most boards, so ``M115`` may go out more than once, and
    the answer to an earlier one may arrive after a later one was sent, even after the
    print has begun. Once the firmware has named itself (``FIRMWARE_NAME``), only an ``ok``
    that follows a name ends the handshake, so a stray ``ok`` from before a reset does
    not; an ``ok`` that follows a late name after the handshake acknowledges no line.

    Attributes
    ----------
    due : bool
        An ``M115`` is to be sent (at the start, and after a reset).
    sent, answered : int
        ``M115`` sent, and answers naming the firmware seen, so far.
    saw_name : bool
        Some answer has named the firmware.
    round_has_name : bool
        The answer to the latest ``M115`` has named it.
    swallow_ok : bool
        The next ``ok`` belongs to a late answer to a repeated ``M115``.
    """

    due: bool = True
    sent: int = 0
    answered: int = 0
    saw_name: bool = False
    round_has_name: bool = False
    swallow_ok: bool = False

    def send(self) -> None:
        """An ``M115`` goes out: a new round, whose answer has not named anything yet."""
        self.sent += 1
        self.round_has_name = False

    def named(self, *, in_handshake: bool) -> None:
        """The firmware named itself; after the handshake, in a late answer whose ``ok``
        is then swallowed."""
        self.answered += 1
        self.saw_name = True
        if not in_handshake and self.answered <= self.sent:
            self.swallow_ok = True

    def ok_ends_round(self) -> bool:
        """Whether an ``ok`` in the handshake ends it: not one from before the name."""
        return not (self.saw_name and not self.round_has_name)

    def take_swallowed_ok(self) -> bool:
        """Whether this ``ok`` is a late ``M115`` answer's (and so acknowledges no line)."""
        swallow, self.swallow_ok = self.swallow_ok, False
        return swallow


@dataclass
class PreflightRun:
    """The pre-flight (step 2): its probes go out unnumbered, one at a time, each after the
    answer to the one before. It exists only in :attr:`ProtocolState.PREFLIGHT`.

    Attributes
    ----------
    probes : list of Probe
        The probes still to send.
    probe : Probe or None
        The probe awaiting its answer.
    due : bool
        The next probe may go out.
    listed : set of str
        The command names Klipper's ``HELP`` has listed so far (for a probe that
        ``lists_commands``).
    """

    probes: list[Probe]
    probe: Probe | None = None
    due: bool = True
    listed: set[str] = field(default_factory=set)

    def take_next(self) -> Probe | None:
        """The probe to send now, which then awaits its answer; None when none is left."""
        if not self.probes:
            return None
        self.probe = self.probes.pop(0)
        return self.probe

    def answered(self) -> bool:
        """The probe out was answered ``ok``; whether another probe follows."""
        self.probe = None
        self.due = bool(self.probes)
        return self.due

    def missing(self) -> list[str]:
        """The words a listing probe vouches for that its answer did not list."""
        if self.probe is None or not self.probe.lists_commands:
            return []
        return [word for word in self.probe.words if word not in self.listed]

    def note_listed(self, message: str) -> None:
        """Take one line of a listing probe's answer (Klipper's ``NAME : description``)."""
        if self.probe is not None and self.probe.lists_commands:
            name = message.split(":", 1)[0].strip()
            if name and " " not in name:
                self.listed.add(name.upper())


@dataclass
class OkWait:
    """The wait for the oldest line's ``ok``, which starts afresh with every change of
    :attr:`MarlinProtocol.progress`.

    Attributes
    ----------
    busy_seen : bool
        The firmware has said ``busy:`` since the oldest line's wait began, so the wait is
        at least :data:`BUSY_GRACE_S`.
    overdue_now : bool
        The ``ok`` is overdue at once: the firmware printed ``wait`` (its command queue is
        empty) with a line in flight, so the line or its ``ok`` was lost.
    """

    busy_seen: bool = False
    overdue_now: bool = False

    def budget_s(self, budget: float | None) -> float | None:
        """The planned bound on the wait, stretched for a busy firmware, zero if overdue."""
        if self.overdue_now:
            return 0.0
        if budget is not None and self.busy_seen:
            return max(budget, BUSY_GRACE_S)
        return budget


@dataclass(frozen=True)
class Ping:
    """An ``M105`` ping awaiting its answer (see :meth:`MarlinProtocol.on_overdue`).

    It is answered after every line sent before it, so when its answer comes, the lines
    before :attr:`mark` that still lack their ``ok`` were lost, or their ``ok`` was.

    Attributes
    ----------
    mark : int
        The first line number sent after the ping.
    """

    mark: int

    def proves_lost(self, oldest: int, next_line: int) -> bool:
        """Whether its answer proves line ``oldest`` (or its ``ok``) lost: it was sent
        before the ping and is still unacknowledged."""
        return oldest < min(next_line, self.mark)


@dataclass
class Poll:
    """The temperature poll: asked for by the host's clock (:meth:`MarlinProtocol.request_poll`)
    and sent as an unnumbered ``M105`` once no numbered line is in flight, so the next
    ``ok`` is its answer. At most one goes out per numbered line sent.

    Attributes
    ----------
    due : bool
        A poll has been asked for and not sent yet.
    pending : bool
        A poll is out, awaiting its answer; no numbered line goes out meanwhile.
    late_oks : int
        Polls whose answers were overdue and replaced by a ping: should their ``ok`` come
        after all, it is not taken for a line's.
    polled_at : int
        The last line sent when the last poll went out.
    """

    due: bool = False
    pending: bool = False
    late_oks: int = 0
    polled_at: int = -2

    def request(self) -> None:
        """Ask for a poll, unless one is out already."""
        if not self.pending:
            self.due = True

    def go_out(self, sent_max: int) -> None:
        """The poll is sent, after line ``sent_max``."""
        self.due = False
        self.pending = True
        self.polled_at = sent_max

    def replaced_by_ping(self) -> None:
        """A ping goes out instead of waiting on for the poll's answer."""
        if self.pending:
            self.pending = False
            self.late_oks += 1

    def take_late_ok(self) -> bool:
        """Whether an ``ok`` with temperatures is a replaced poll's late answer."""
        if self.late_oks > 0:
            self.late_oks -= 1
            return True
        return False


@dataclass
class ResendRecovery:
    """What a resend request or a lost line leaves to settle before lines flow freely again.

    The ``ok`` Marlin prints right after ``Resend:`` acknowledges nothing (``queue.cpp``,
    ``flush_and_request_resend``); some builds print none, which is learnt at the first
    resend request when not known. After a resend request for line *n*, the lines
    already in flight behind it may each be refused with a line-number error and the
    same request (firmware that does not empty its receive buffer: Marlin 1.x,
    OctoPrint's virtual printer); that many such repeats are expected and not acted on,
    and nothing is sent until they have had :data:`STALE_SETTLE_S` to arrive. Until the
    line asked for again is acknowledged, lines go out one at a time.

    Attributes
    ----------
    sends_ok : bool or None
        Whether the firmware prints ``ok`` after ``Resend:``; None until known.
    ok_pending : bool
        The ``ok`` that follows a resend request is awaited.
    stale_for : int or None
        The line of the last resend request, while its stale repeats are expected.
    stale_resends : int
        How many stale repeats of that request are still expected.
    settle_pending : bool
        Nothing goes out until the stale refusals have settled (see ``hold_s``).
    recover_below : int or None
        After a ping's answer proved lines lost: the ping's mark. A resend request then
        also proves the lines below it processed.
    throttle_until : int or None
        One line at a time until this line is acknowledged.
    last_error : FirmwareError or None
        The communication error that announced the coming resend request.
    """

    sends_ok: bool | None = None
    ok_pending: bool = False
    stale_for: int | None = None
    stale_resends: int = 0
    settle_pending: bool = False
    recover_below: int | None = None
    throttle_until: int | None = None
    last_error: FirmwareError | None = None

    def awaits_first_ok(self) -> bool:
        """The first resend request's ``ok`` is awaited, to learn whether one comes."""
        return self.ok_pending and self.sends_ok is None

    def hold_s(self) -> float | None:
        """How long nothing is sent while replies are awaited, s; None when nothing holds."""
        if self.awaits_first_ok():
            return RESEND_OK_GRACE_S
        if self.settle_pending:
            return STALE_SETTLE_S
        return None

    def take_error(self) -> FirmwareError | None:
        """The error that came before a resend request, which it answers."""
        error, self.last_error = self.last_error, None
        return error

    def expect_ok(self) -> None:
        """A resend request came: its ``ok`` is awaited, unless this firmware prints none."""
        if self.sends_ok is not False:
            self.ok_pending = True

    def resolve_ok(self, *, came: bool) -> None:
        """The reply after a resend request was its ``ok`` (``came``) or something else."""
        self.ok_pending = False
        self.sends_ok = came

    def hold_expired(self) -> bool:
        """The hold is over; True when it was the first resend request's ``ok`` that did not
        come (this firmware prints none)."""
        if self.awaits_first_ok():
            self.ok_pending = False
            self.sends_ok = False
            return True
        self.settle_pending = False
        return False

    def absorb_stale(self, line_no: int, *, line_number_error: bool) -> bool:
        """Whether a resend request is an expected stale repeat, and so taken no further."""
        if self.stale_resends > 0 and line_no == self.stale_for and line_number_error:
            self.stale_resends -= 1
            self.settle_pending = self.settle_pending and self.stale_resends > 0
            return True
        return False

    def expect_stale(self, line_no: int, in_flight_behind: int) -> None:
        """Line ``line_no`` goes out again with ``in_flight_behind`` lines sent behind it."""
        self.stale_for = line_no
        self.stale_resends = max(in_flight_behind, 0)
        self.settle_pending = in_flight_behind > 0

    def acknowledged(self, line_no: int) -> None:
        """Line ``line_no`` was acknowledged: no stale repeats of an earlier line follow."""
        if self.stale_for is not None and line_no >= self.stale_for:
            self.stale_for, self.stale_resends = None, 0
            self.settle_pending = False

    def one_at_a_time(self, acked: int) -> bool:
        """Whether lines go out one at a time now, with line ``acked`` acknowledged."""
        if self.throttle_until is not None and acked >= self.throttle_until:
            self.throttle_until = None
        return self.throttle_until is not None or self.recover_below is not None


@dataclass
class Heard:
    """What the printer has sent, other than an ``ok`` that moved the print on, since the
    wait for the oldest ``ok`` began (or, before the print streams, since connecting):
    for the message when that wait runs past its bound.

    Attributes
    ----------
    busy, temperature, other : int
        ``busy:`` keep-alives, temperature reports, and everything else (echo lines,
        noise, an ``ok`` that acknowledged nothing).
    sample : str or None
        The first of the others, as received.
    """

    busy: int = 0
    temperature: int = 0
    other: int = 0
    sample: str | None = None

    def note(self, reply: Reply) -> None:
        """Count one reply that did not move the print on."""
        if isinstance(reply, Busy):
            self.busy += 1
        elif isinstance(reply, TemperatureReport):
            self.temperature += 1
        else:
            self.other += 1
            if self.sample is None:
                self.sample = reply.text[:60]

    def describe(self) -> str:
        """``only 12 busy keep-alives and 30 temperature reports``; ``nothing``."""
        parts = []
        if self.busy:
            parts.append(f"{self.busy} busy keep-alive{'s' * (self.busy != 1)}")
        if self.temperature:
            parts.append(f"{self.temperature} temperature report"
                         f"{'s' * (self.temperature != 1)}")
        if self.other:
            parts.append(f"{self.other} other line{'s' * (self.other != 1)} "
                         f"(the first: {self.sample!r})")
        if not parts:
            return "nothing"
        return "only " + (" and ".join(parts) if len(parts) < 3
                          else f"{parts[0]}, {parts[1]} and {parts[2]}")


_FIRMWARE_LABEL: dict[Flavor, str] = {
    "marlin": "Marlin",
    "klipper": "Klipper",
    "reprapfirmware": "RepRapFirmware",
}


class MarlinProtocol:
    """The host side of one print, as a state machine without I/O.

    Call :meth:`next_to_send` until it returns None and write each line; feed every reply
    line to :meth:`on_reply`. When the oldest line's ``ok`` is later than
    :meth:`ok_budget_s` allows, call :meth:`on_overdue`; when nothing at all has arrived for
    too long, :meth:`on_timeout`; after a resend request, :meth:`hold_s` says how long to
    wait for replies before :meth:`on_hold_expired`. Write every line these
    return. :attr:`done` turns True when the firmware has acknowledged the last command;
    :attr:`progress` changes whenever the clock of :meth:`ok_budget_s` restarts.

    Beside :attr:`state` and the line counters, where the conversation is lives in one
    object per part of it: the :class:`Handshake`, the :class:`PreflightRun` (during the
    pre-flight only), the :class:`OkWait` for the oldest line's ``ok``, a :class:`Ping`
    (while one is out), the temperature :class:`Poll` and the :class:`ResendRecovery`.

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
    flavor : {"marlin", "klipper", "reprapfirmware"}, optional
        The printer profile's firmware family. Given, the ``M115`` answer must name it (a
        firmware that names another family, or none, is refused with
        :class:`~doseprint.errors.FirmwareRefusedError`), and lost lines are sent again only
        on Marlin. None (tests of the bare protocol) checks nothing and behaves as Marlin.
    preflight : PreflightPlan, optional
        The probes to send after the handshake (:func:`~doseprint.comms.preflight.plan_preflight`).
    durations_s : sequence of float, optional
        Each command's planned duration, s (the time it adds to the motion queue, from the
        motion planner); with them every line gets a bounded wait for its ``ok``
        (:meth:`ok_budget_s`). None leaves only the long no-answer timeout.
    ok_floor_s : float
        Added to every bounded wait, s.
    resend_ok : bool, optional
        Whether the firmware prints ``ok`` after ``Resend:``; None (the default) finds out at
        the first resend request.
    answer_timeout_s : float
        The host's no-answer timeout, s: with the planned durations (or without them, the
        dwells alone) it sets each line's hard bound on the wait for its ``ok``
        (:meth:`stall_limit_s`, :func:`~doseprint.comms.timing.stall_limits`).

    Raises
    ------
    doseprint.errors.InputError
        A command is too long for the firmware or holds a character that would break the
        line's framing (``*``, a line break).
    ValueError
        ``durations_s`` is not one time per command.
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
        flavor: Flavor | None = None,
        preflight: PreflightPlan | None = None,
        durations_s: Sequence[float] | None = None,
        ok_floor_s: float = OK_FLOOR_S,
        resend_ok: bool | None = None,
        answer_timeout_s: float = 30.0,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        if send_ahead not in ("advanced_ok", "always"):
            raise ValueError(f"send_ahead must be 'advanced_ok' or 'always', not {send_ahead!r}")
        if max_resends_per_line < 0 or handshake_attempts < 1:
            raise ValueError("max_resends_per_line must be >= 0 and handshake_attempts >= 1")
        if flavor is not None and flavor not in _FIRMWARE_LABEL:
            raise ValueError(f"flavor must be one of {sorted(_FIRMWARE_LABEL)}, not {flavor!r}")
        self._commands = [RESET_COMMAND, *commands]
        self._wire = [format_line(n, c) for n, c in enumerate(self._commands)]
        _check_lines(self._commands, self._wire, max_line_bytes)
        self.window = window
        self.send_ahead: SendAhead = send_ahead
        self.max_resends_per_line = max_resends_per_line
        self.handshake_attempts = handshake_attempts
        self.flavor: Flavor | None = flavor
        self.preflight = preflight
        self.state = ProtocolState.HANDSHAKE
        self.firmware: dict[str, str] = {}
        self.capabilities: dict[str, bool] = {}
        self.lines_sent = 0
        self.resends = 0
        self.max_in_flight = 0
        """Most numbered lines that awaited their ``ok`` at once, so far."""
        self.buffer_free_max: int | None = None
        """Most free command-queue slots any ``ok`` reported (its ``B``); None if none did."""
        self.overdue_pings = 0
        """Pings sent because an ``ok`` was later than its planned bound."""
        self.recoveries = 0
        """Times a ping's answer showed lines (or their ``ok``) lost and they were sent again."""
        self.progress = 0
        """Changes whenever the wait for the oldest line's ``ok`` starts afresh."""
        self.hold_epoch = 0
        """Changes whenever the wait of :meth:`hold_s` starts afresh."""
        self.polls = 0
        """Temperature polls sent."""
        self.probes_sent = 0
        """Pre-flight probes sent."""
        # Line numbers: `_next` is sent next, `_acked` has its ok, `_sent_max` went out last.
        self._next = 0
        self._acked = -1
        self._sent_max = -1
        self._resend_counts: dict[int, int] = {}
        # Where the conversation is, beside `state`: one object per part of it.
        self._handshake = Handshake()
        self._preflight: PreflightRun | None = None  # only in PREFLIGHT
        self._wait = OkWait()
        self._ping: Ping | None = None  # only while a ping is out
        self._poll = Poll()
        self._recovery = ResendRecovery(sends_ok=resend_ok)
        # Bounded waits for each line's ok (index = line number; the M110 is quick).
        self._budgets: list[float | None] | None = None
        if durations_s is not None:
            budgets = ok_budgets(
                commands, durations_s, flavor=flavor or "marlin", floor_s=ok_floor_s
            )
            self._budgets = [ok_floor_s, *budgets]
        self.ok_floor_s = ok_floor_s
        # Hard bounds on each line's wait for its ok (index = line number), and what the
        # printer has said meanwhile.
        stalls = stall_limits(commands, durations_s, answer_timeout_s=answer_timeout_s,
                              flavor=flavor or "marlin", floor_s=ok_floor_s)
        self._stall = [stall_limits([RESET_COMMAND], None, answer_timeout_s=answer_timeout_s,
                                    floor_s=ok_floor_s)[0], *stalls]
        self.ok_epoch = 0
        """Changes whenever the clock of :meth:`stall_limit_s` restarts: an ``ok`` moved the
        print on, a line went out with none in flight, or a line is sent again."""
        self._heard = Heard()

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
            # Marlin reports B while the command answered still holds its slot (queue.cpp,
            # ok_to_send, before the ring buffer advances): one more is free after it.
            return max(1, min(self.window, self.buffer_free_max + 1))
        return self.window

    @property
    def ping_pending(self) -> bool:
        """True while an ``M105`` ping awaits its answer."""
        return self._ping is not None

    @property
    def resend_sends_ok(self) -> bool | None:
        """Whether the firmware prints ``ok`` after ``Resend:``; None until the first resend
        request shows it (unless given as ``resend_ok``)."""
        return self._recovery.sends_ok

    @property
    def can_resend(self) -> bool:
        """Whether a lost line may be sent again: the firmware checks line numbers (Marlin)."""
        return self.flavor in (None, "marlin")

    def request_poll(self) -> None:
        """Ask for the temperatures: an unnumbered ``M105`` goes out as soon as no numbered
        line awaits its ``ok`` (no new line is sent meanwhile), and its ``ok T:…`` is
        reported as a ``temperature`` event, acknowledging nothing. At most one poll goes
        out per numbered line sent, so polling never starves the print. Ignored outside
        streaming and while a poll is out already."""
        if self.state is ProtocolState.STREAMING:
            self._poll.request()

    def command(self, line_no: int) -> str:
        """The command sent as line ``line_no`` (0 is the ``M110``)."""
        return self._commands[line_no]

    def ok_budget_s(self) -> float | None:
        """How long the oldest line in flight may take to be acknowledged, s.

        Counted from the last change of :attr:`progress`. None when nothing is in flight,
        when no durations were given, while a ping is out (its answer may queue behind any
        amount of motion: only the long no-answer timeout applies), while :meth:`hold_s`
        holds, or when the oldest line's wait is open (heating, homing). A poll awaiting
        its answer gets the floor.

        Returns
        -------
        float or None
        """
        if self.state is not ProtocolState.STREAMING or self._ping is not None:
            return None
        if self._budgets is None or self.hold_s() is not None:
            return None  # while holding after a resend request, the hold decides
        oldest = self._acked + 1
        if oldest >= self._next:
            return self.ok_floor_s if self._poll.pending else None
        return self._wait.budget_s(self._budgets[oldest])

    def stall_limit_s(self) -> float | None:
        """The hard bound on the wait for the oldest ``ok`` awaited, s.

        Counted from the last change of :attr:`ok_epoch`; only an ``ok`` that moves the
        print on restarts it, never ``busy:``, temperature reports or other text. None
        before streaming (the handshake has its own deadline) and when no ``ok`` is
        awaited. A poll or ping with no line in flight gets the bound of a quick command.
        """
        if self.state is not ProtocolState.STREAMING:
            return None
        oldest = self._acked + 1
        if oldest < self._next:
            return self._stall[oldest]
        if self._poll.pending or self._ping is not None:
            return self._stall[0]
        return None

    def on_stalled(self, waited_s: float, limit_s: float) -> NoReturn:
        """Give up: the ``ok`` awaited (or the handshake) ran past its hard bound.

        Parameters
        ----------
        waited_s : float
            How long it was awaited, s.
        limit_s : float
            The bound it ran past, s.

        Raises
        ------
        doseprint.errors.PrinterTimeoutError
            Always, saying what the printer sent meanwhile.
        """
        heard = self._heard.describe()
        if self.state in (ProtocolState.HANDSHAKE, ProtocolState.PREFLIGHT):
            step = ("the pre-flight" if self.state is ProtocolState.PREFLIGHT
                    else f"M115 ({self._handshake.sent} sent)")
            raise PrinterTimeoutError(
                f"the printer did not get through {step} within {waited_s:.1f} s, while it "
                f"sent {heard}; nothing of the job was sent",
                last_acked=0,
                hint="check that --baud matches the firmware (noise is what a wrong baud rate "
                "looks like) and the printer's display, then print again",
            )
        oldest = self._acked + 1
        what = (f"line {oldest} ({self._describe(oldest)})" if oldest < self._next
                else "the M105 sent to ask where the printer is")
        raise PrinterTimeoutError(
            f"no ok for {what} for {waited_s:.1f} s, past its bound of {limit_s:.1f} s, "
            f"while the printer sent {heard}",
            last_acked=self.last_acked,
            hint="the printer keeps talking but does not get on with the print: check its "
            "display (a heater that cannot reach its temperature, a command stuck) and that "
            "--baud matches the firmware; heaters and motors are being switched off. The "
            "batch record shows how far the print got; these tablets cannot be released",
        )

    def _restart_stall(self) -> None:
        self.ok_epoch += 1
        self._heard = Heard()

    def hold_s(self) -> float | None:
        """After a resend request, how long nothing is sent while replies are awaited, s.

        Counted from the last change of :attr:`hold_epoch`: the ``ok`` that follows the first
        resend request of a print (while :attr:`resend_sends_ok` is unknown,
        :data:`RESEND_OK_GRACE_S`), and the refusals of lines sent ahead of the line asked
        for (:data:`STALE_SETTLE_S`). None when nothing is held.
        """
        return self._recovery.hold_s()

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
            if not self._handshake.due:
                return None
            self._handshake.due = False
            return self._send_m115()
        if self.state is ProtocolState.PREFLIGHT:
            return self._next_probe()
        if self.state is ProtocolState.DONE:
            return None
        poll, recovery = self._poll, self._recovery
        if poll.pending:
            return None  # its answer must come before any numbered line's
        if recovery.awaits_first_ok():
            return None  # the resend request's own ok must be told from the next line's
        if recovery.settle_pending:
            return None  # the lines sent ahead are still being refused
        if poll.due:
            quiet = (self._next - 1 - self._acked <= 0 and self._ping is None
                     and recovery.recover_below is None and not recovery.ok_pending
                     and not self._handshake.swallow_ok and poll.late_oks == 0
                     and self._sent_max > poll.polled_at)
            if quiet:
                poll.go_out(self._sent_max)
                self.polls += 1
                self.lines_sent += 1
                self.progress += 1
                self._restart_stall()
                return PING_COMMAND
            if self._next >= len(self._wire):
                return None
            if self._next - 1 - self._acked > 0 and self._sent_max > poll.polled_at:
                return None  # let the lines in flight drain first
        if self._next >= len(self._wire):
            return None
        # Nothing goes ahead of the M110 until it has run: Marlin checks line numbers as it
        # reads lines in, and M110 sets the number again when it runs (M110.cpp,
        # set_current_line_number), so a line read in before that would be refused.
        slow = recovery.one_at_a_time(self._acked) or self._acked < 0
        limit = 1 if slow else self.effective_window
        in_flight = self._next - 1 - self._acked
        if in_flight >= limit:
            return None
        line_no = self._next
        if line_no <= self._sent_max:
            self.resends += 1
        if in_flight == 0:
            self.progress += 1  # the oldest line's wait starts now
            self._restart_stall()
        self._sent_max = max(self._sent_max, line_no)
        self._next += 1
        self.lines_sent += 1
        self.max_in_flight = max(self.max_in_flight, in_flight + 1)
        return self._wire[line_no]

    def _next_probe(self) -> str | None:
        run = self._preflight
        assert run is not None
        if not run.due:
            return None
        run.due = False
        probe = run.take_next()
        if probe is None:
            self._start_streaming()
            return self.next_to_send()
        self.probes_sent += 1
        self.lines_sent += 1
        return probe.command

    def _start_streaming(self) -> None:
        self.state = ProtocolState.STREAMING
        self._preflight = None
        self.progress += 1
        self._restart_stall()

    def on_overdue(self, waited_s: float) -> str | None:
        """React to an ``ok`` later than :meth:`ok_budget_s` allows: the line to write now.

        One ``M105`` ping goes out. It is answered after every line sent before it, so when
        its answer comes, lines sent before it that still lack their ``ok`` were lost, or
        their ``ok`` was (see :meth:`on_reply`). A slow line merely costs the ping.

        Parameters
        ----------
        waited_s : float
            How long the ``ok`` has been awaited, s (for the log).

        Returns
        -------
        str or None
            The ping, or None when none is needed (one is out already, or nothing is in
            flight any more).
        """
        if self.state is not ProtocolState.STREAMING or self._ping is not None:
            return None
        oldest = self._acked + 1
        if oldest >= self._next and not self._poll.pending:
            return None
        self._wait.overdue_now = False
        self.overdue_pings += 1
        if oldest < self._next:
            logger.info(
                "no ok for line %d (%s) after %.2f s; pinging",
                oldest, self._describe(oldest), waited_s,
            )
        return self._send_ping()

    def _send_ping(self) -> str:
        # A poll whose answer is overdue is replaced by the ping; should the poll's ok come
        # after all, it is not taken for a line's.
        self._poll.replaced_by_ping()
        self._ping = Ping(self._sent_max + 1)
        self.lines_sent += 1
        return PING_COMMAND

    def on_hold_expired(self) -> None:
        """The wait of :meth:`hold_s` is over: the line asked for goes out.

        If the first resend request's ``ok`` did not come, this firmware prints none (as
        some Marlin 2.0 builds), and later resend requests are not waited on.
        """
        if self._recovery.hold_expired():
            logger.info("no ok after the resend request: this firmware prints none")

    def on_timeout(self, waited_s: float) -> str:
        """React to a silence: the line to write now.

        In the handshake ``M115`` is repeated (a board that reset on connecting lost the
        first); during the print one ``M105`` ping is sent. A second silence gives up, as
        does a silence in the pre-flight.

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
            The firmware did not answer the handshake or a probe, or stayed silent after
            the ping.
        """
        if self.state is ProtocolState.HANDSHAKE:
            if self._handshake.sent >= self.handshake_attempts:
                raise PrinterTimeoutError(
                    f"the printer did not answer M115 ({self._handshake.sent} tries, "
                    f"{waited_s:.1f} s of silence after the last)",
                    last_acked=0,
                    hint="check that the printer is on, that PORT is its port and that "
                    "--baud matches the firmware (Marlin's default is 115200)",
                )
            return self._send_m115()
        if self.state is ProtocolState.PREFLIGHT:
            out = self._preflight.probe if self._preflight is not None else None
            probe = out.command if out is not None else "none"
            raise PrinterTimeoutError(
                f"the printer did not answer the pre-flight's {probe!r} within "
                f"{waited_s:.1f} s; nothing of the job was sent",
                last_acked=0,
                hint="check the printer's display and its USB cable, then print again",
            )
        if self._ping is None:
            self._recovery.ok_pending = False
            return self._send_ping()
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
        self._handshake.send()
        self.lines_sent += 1
        return HANDSHAKE_COMMAND

    # Receiving

    def on_reply(self, line: str | Reply) -> list[WireEvent]:
        """Take one reply line; return what it meant.

        Parameters
        ----------
        line : str or Reply
            The line as read (or already parsed with :func:`parse_reply`).

        Returns
        -------
        list of WireEvent
            Usually one; a resend that proves lines processed adds their ``ok`` events.

        Raises
        ------
        doseprint.errors.PrinterHaltedError
            ``Error:`` (other than a communication error, which gets a resend), ``!!``, a
            skipped extrusion, an unknown command, a cancel from the printer, a reset after
            the first command went out, or line numbers out of step.
        doseprint.errors.FirmwareRefusedError
            The handshake named another firmware (or none) than the profile's, or the
            pre-flight found a command the firmware lacks.
        doseprint.errors.LineLostError
            A line or its ``ok`` was lost on a firmware that cannot take it again safely.
        doseprint.errors.ResendLimitError
            One line was asked for again more than ``max_resends_per_line`` times.
        """
        reply = parse_reply(line) if isinstance(line, str) else line
        epoch = self.ok_epoch
        events = self._dispatch(reply)
        if self.ok_epoch == epoch:
            self._heard.note(reply)  # it did not move the print on
        return events

    def _dispatch(self, reply: Reply) -> list[WireEvent]:
        if self.state is ProtocolState.PREFLIGHT:
            return self._on_preflight_reply(reply)
        if self._recovery.ok_pending and not isinstance(
            reply, Busy | Echo | TemperatureReport | Wait | Unrecognised
        ):
            # Marlin prints the resend request's ok right after it (queue.cpp), before any
            # other answer; whatever else comes first means this firmware prints none.
            self._recovery.resolve_ok(came=isinstance(reply, Ok))
            if isinstance(reply, Ok):
                return [WireEvent("ok", None, reply.text)]
        text = reply.text
        match reply:
            case Ok():
                return self._on_ok(reply)
            case Resend():
                return self._on_resend(reply)
            case Busy():
                if self.state is ProtocolState.STREAMING:
                    self.progress += 1  # the firmware is still working on the oldest line
                    self._wait.busy_seen = True
                return [WireEvent("busy", None, text)]
            case Echo():
                dose = DOSE_WARNING_RE.search(reply.message)
                if dose is not None and self.state is ProtocolState.STREAMING:
                    self._halt(
                        f"the firmware skipped an extrusion ({dose['reason']})",
                        text,
                        hint="a tablet printed so misses part of its dose; check the nozzle "
                        "temperature in the printer profile, the firmware's minimum "
                        "extrusion temperature and the start template",
                    )
                return [WireEvent("echo", None, text)]
            case UnknownCommand():
                return self._on_unknown_command(reply)
            case HostAction():
                if reply.action in ("cancel", "disconnect") and self.state is not (
                    ProtocolState.HANDSHAKE
                ):
                    self._halt(f"the printer asked to {reply.action} the print", text)
                return [WireEvent("echo", None, text)]
            case Start():
                return self._on_start(reply)
            case FirmwareError():
                if reply.requests_resend:
                    self._recovery.last_error = reply
                    return [WireEvent("error", None, text)]
                self._halt("the printer reported an error", text)
            case Halt():
                self._halt("the printer halted", text)
            case TemperatureReport():
                return [WireEvent("temperature", None, text)]
            case FirmwareInfo():
                return self._on_firmware_info(reply)
            case Capability():
                self.capabilities[reply.name] = reply.enabled
                return [WireEvent("firmware", None, text)]
            case Wait():
                if (self.state is ProtocolState.STREAMING and self._ping is None
                        and self._acked + 1 < self._next):
                    # Marlin prints "wait" only with its command queue empty: with a line in
                    # flight, the line or its ok was lost.
                    self._wait.overdue_now = True
                return [WireEvent("echo", None, text)]
            case Unrecognised():
                return [WireEvent("echo", None, text)]
            case _:
                assert_never(reply)

    def _on_unknown_command(self, reply: UnknownCommand) -> list[WireEvent]:
        if self.state is not ProtocolState.STREAMING:
            return [WireEvent("echo", None, reply.text)]
        where = ""
        if self.preflight is not None and reply.word in self.preflight.uses:
            where = f" ({self.preflight.uses[reply.word].where(self.preflight.program)})"
        self._halt(
            f"the printer does not know {reply.word}{where}, so it did not run it",
            reply.text,
            hint=remedy(reply.word, self.flavor or "marlin") + "; the batch record shows how "
            "far the print got and these tablets cannot be released",
        )

    def _on_firmware_info(self, reply: FirmwareInfo) -> list[WireEvent]:
        self._take_firmware_fields(reply.fields)
        return [WireEvent("firmware", None, reply.text)]

    def _take_firmware_fields(self, fields: dict[str, str]) -> None:
        in_handshake = self.state is ProtocolState.HANDSHAKE
        # After the handshake, the late answer to a repeated M115: its ok acknowledges no line.
        self._handshake.named(in_handshake=in_handshake)
        if in_handshake or not self.firmware:
            self._handshake.round_has_name = True
            self.firmware = dict(fields)

    def _on_ok(self, reply: Ok) -> list[WireEvent]:
        event = WireEvent("ok", None, reply.text)
        if reply.buffer_free is not None and (
            self.buffer_free_max is None or reply.buffer_free > self.buffer_free_max
        ):
            # Every ok counts, even one that acknowledges nothing: each says how much room
            # the firmware's queue has, and the most it ever had bounds the window.
            self.buffer_free_max = reply.buffer_free
        if reply.firmware:
            # Klipper answers M115 in its ok line (klippy/gcode.py, cmd_M115).
            self._take_firmware_fields(reply.firmware)
            event = WireEvent("firmware", None, reply.text)
            if self.state is not ProtocolState.HANDSHAKE and self._handshake.take_swallowed_ok():
                return [event]
        if self.state is ProtocolState.HANDSHAKE:
            # Once the firmware has shown it answers M115 with its name, only an ok after
            # the name ends the handshake; a stray ok from before a reset does not.
            if self._handshake.ok_ends_round():
                self._end_handshake()
            return [event]
        if self.state is ProtocolState.DONE:
            return [event]
        if self._handshake.take_swallowed_ok():
            return [event]
        if self._poll.pending and self._next - 1 - self._acked <= 0:
            self._poll.pending = False
            self.progress += 1
            self._restart_stall()
            return [WireEvent("temperature", None, reply.text)]
        if reply.temperatures and not self._oldest_is_ping():
            if self._poll.take_late_ok():
                return [WireEvent("temperature", None, reply.text)]
            if self._ping is not None:
                return self._on_pong(reply, self._ping)
        if reply.line_no is not None:
            return self._on_numbered_ok(reply)
        if self._acked + 1 >= self._next:
            logger.warning("ok with no line awaiting one: %r", reply.text)
            return [event]
        self._acknowledge(self._acked + 1)
        self._recovery.recover_below = None
        return [WireEvent("ok", self._acked, reply.text)]

    def _on_numbered_ok(self, reply: Ok) -> list[WireEvent]:
        # ADVANCED_OK names the line answered (queue.cpp, ok_to_send): lines run in order, so
        # it acknowledges every line up to it, even one whose own ok was lost on the wire.
        line_no = reply.line_no
        assert line_no is not None
        if line_no <= self._acked or line_no > self._sent_max:
            logger.warning("ok for line %d, which awaits none: %r", line_no, reply.text)
            return [WireEvent("ok", None, reply.text)]
        events = []
        while self._acked < line_no:
            self._acknowledge(self._acked + 1)
            implied = self._acked < line_no
            events.append(WireEvent("ok", self._acked,
                                f"ok (implied by {reply.text!r})" if implied else reply.text))
        self._next = max(self._next, self._acked + 1)
        self._recovery.recover_below = None
        return events

    def _end_handshake(self) -> None:
        if self.flavor is not None:
            named = firmware_flavor(self.firmware)
            label = _FIRMWARE_LABEL[self.flavor]
            if named is None:
                name = self.firmware.get("FIRMWARE_NAME")
                said = f"FIRMWARE_NAME:{name}" if name else "no FIRMWARE_NAME"
                raise FirmwareRefusedError(
                    f"the printer answered M115 with {said}, which is not {label}, the "
                    "printer profile's flavor; nothing of the job was sent",
                    hint="connect the printer the profile describes, or compile the job for "
                    "a profile of this printer's firmware (Marlin answers M115 only when "
                    "built with CAPABILITIES_REPORT)",
                )
            if named != self.flavor:
                raise FirmwareRefusedError(
                    f"the printer's firmware is {_FIRMWARE_LABEL[named]} "
                    f"(FIRMWARE_NAME:{self.firmware.get('FIRMWARE_NAME', '')}), but the job "
                    f"was compiled for a {label} printer profile; nothing of the job was sent",
                    hint="compile the job for a profile of this printer's firmware, or "
                    "connect the printer the profile describes",
                )
        if self.preflight is not None and self.preflight.probes:
            self.state = ProtocolState.PREFLIGHT
            self._preflight = PreflightRun(list(self.preflight.probes))
        else:
            self._start_streaming()

    def _on_preflight_reply(self, reply: Reply) -> list[WireEvent]:
        text = reply.text
        run = self._preflight
        assert run is not None
        probe = run.probe
        match reply:
            case Ok():
                if probe is None:
                    return [WireEvent("preflight", None, text)]
                missing = run.missing()
                if missing:
                    self._refuse(missing[0], f"not in the answer to {probe.command}")
                if not run.answered():
                    self._start_streaming()
                return [WireEvent("preflight", None, text)]
            case UnknownCommand():
                word = reply.word
                if probe is not None and word not in probe.words:
                    # The firmware names the command as sent (Marlin quotes "T1 S1"): the
                    # word the probe vouches for is what is missing.
                    word = probe.words[0]
                self._refuse(word, f"the firmware answered {text!r}")
            case FirmwareError() | Halt():
                vouched = probe.words[0] if probe is not None else "?"
                self._refuse(vouched, f"the firmware answered {text!r} to "
                             f"{probe.command if probe else 'a probe'!r}")
            case Start():
                # The board reset (a late reset on connecting): greet it again.
                logger.warning("the printer reset during the pre-flight; greeting it again")
                self.state = ProtocolState.HANDSHAKE
                self._handshake.due = True
                self._preflight = None  # it starts afresh after the handshake
                return [WireEvent("echo", None, text)]
            case Echo():
                run.note_listed(reply.message)  # Klipper's HELP: "NAME : description"
                return [WireEvent("preflight", None, text)]
            case HostAction():
                if reply.action in ("cancel", "disconnect"):
                    self._halt(f"the printer asked to {reply.action} the print", text)
                return [WireEvent("preflight", None, text)]
            case _:
                return [WireEvent("preflight", None, text)]

    def _refuse(self, word: str, why: str) -> NoReturn:
        flavor = self.flavor or "marlin"
        where = ""
        if self.preflight is not None and word in self.preflight.uses:
            where = f", used at {self.preflight.uses[word].where(self.preflight.program)}"
        raise FirmwareRefusedError(
            f"the printer's firmware does not have {word}{where} ({why}); nothing of the job "
            "was sent",
            last_acked=0,
            hint=remedy(word, flavor),
        )

    def _oldest_is_ping(self) -> bool:
        # An M105 in the job, sent before the ping, is answered first: that ok is its ack.
        oldest = self._acked + 1
        return oldest < self._next and command_word(self._commands[oldest]) == "M105"

    def _on_pong(self, reply: Ok, ping: Ping) -> list[WireEvent]:
        self._ping = None
        self._wait.overdue_now = False
        self.progress += 1
        self._restart_stall()
        oldest = self._acked + 1
        if ping.proves_lost(oldest, self._next):
            # The firmware answered a ping sent after these lines, so it has seen all it ever
            # will of them: they or their oks were lost.
            if not self.can_resend:
                label = _FIRMWARE_LABEL[self.flavor or "marlin"]
                raise LineLostError(
                    f"line {oldest} ({self._describe(oldest)}) or its ok was lost: the "
                    f"printer answered a later ping but never acknowledged it. {label} does "
                    "not check line numbers, so sending it again could run it twice; the "
                    "print is stopped",
                    last_acked=self.last_acked,
                    hint="check the link to the printer (cable, USB hub, the host's load); "
                    "heaters and motors are being switched off and these tablets cannot be "
                    "released",
                )
            # Send them again; the firmware's line check refuses any it already ran and
            # says where it is.
            logger.warning("no ok for line %d although the ping was answered; resending", oldest)
            self.recoveries += 1
            self._rewind(oldest)
            self._recovery.recover_below = ping.mark
        return [WireEvent("temperature", None, reply.text)]

    def _on_resend(self, reply: Resend) -> list[WireEvent]:
        n = reply.line_no
        events = [WireEvent("resend", n, reply.text)]
        recovery = self._recovery
        error = recovery.take_error()
        if self.state is not ProtocolState.STREAMING:
            return events
        if not self.can_resend:
            self._halt(
                f"the printer asked for line {n} again, but "
                f"{_FIRMWARE_LABEL[self.flavor or 'marlin']} does not check line numbers",
                reply.text,
            )
        # Marlin follows every resend request with an ok that acknowledges nothing.
        recovery.expect_ok()
        if n == self._sent_max + 1 and error is not None and _is_checksum_error(error):
            # A firmware checks a line's number before its checksum (Marlin queue.cpp), so
            # a checksum error names a line that was sent. One that asks for the line after
            # the last sent claims that line although it refused it: what it ran is unknown.
            self._halt(
                f"the printer refused line {n - 1} ({self._describe(n - 1)}) for its checksum "
                f"yet asked for line {n}, which was never sent: its line check cannot be "
                "trusted, so it is unknown whether that line ran",
                f"{error.text} / {reply.text}",
            )
        if n > self._sent_max + 1:
            self._halt(f"the printer asked for line {n}, which was never sent", reply.text)
        if n <= self._acked:
            self._halt(
                f"the printer asked again for line {n}, which it had already acknowledged: "
                "its line numbering is out of step (did it reset?)",
                reply.text,
            )
        line_number_error = error is not None and _is_line_number_error(error)
        if recovery.absorb_stale(n, line_number_error=line_number_error):
            self.hold_epoch += 1  # more may follow: let them settle afresh
            return events
        if recovery.recover_below is not None:
            # Recovery after a ping: everything below the ping that the firmware says it
            # took has been processed (the ping was answered after it), so it is acked.
            for line_no in range(self._acked + 1, min(n, recovery.recover_below)):
                self._acknowledge(line_no)
                events.append(WireEvent("ok", line_no, f"ok (implied by {reply.text!r})"))
            recovery.recover_below = None
        in_flight_behind = self._next - 1 - n
        self._rewind(n)
        recovery.expect_stale(n, in_flight_behind)
        self.hold_epoch += 1
        return events

    def _on_start(self, reply: Start) -> list[WireEvent]:
        event = WireEvent("echo", None, reply.text)
        if self.state is ProtocolState.HANDSHAKE:
            return [event]
        if self.state is ProtocolState.STREAMING and self._sent_max <= 0:
            # Reset straight after connecting, before any command went out: start over.
            logger.warning("the printer reset before the first command; repeating the handshake")
            self.state = ProtocolState.HANDSHAKE
            self._handshake.due = True
            self._next, self._acked, self._sent_max = 0, -1, -1
            self._recovery.ok_pending = False
            self._ping = None
            return [event]
        self._halt("the printer restarted during the print", reply.text)

    # Bookkeeping helpers

    def _acknowledge(self, line_no: int) -> None:
        self._acked = line_no
        self.progress += 1
        self._restart_stall()
        self._wait.busy_seen = False
        self._recovery.acknowledged(line_no)
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
        self._recovery.throttle_until = line_no
        self.progress += 1
        self._restart_stall()

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


def _is_checksum_error(error: FirmwareError) -> bool:
    # Marlin STR_ERR_CHECKSUM_MISMATCH and STR_ERR_NO_CHECKSUM; OctoPrint's "Checksum
    # mismatch" and "Missing checksum". Not "No Line Number with checksum": that names an
    # unnumbered line.
    message = error.message.lower()
    return "checksum" in message and "no line number" not in message


def _is_line_number_error(error: FirmwareError) -> bool:
    # Marlin STR_ERR_LINE_NO, OctoPrint's "expected line N got M": a stale line refused.
    message = error.message.lower()
    return "line number is not" in message or "expected line" in message


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
