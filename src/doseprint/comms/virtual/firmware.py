"""A simulated Marlin printer: host lines in, Marlin 2.1's replies out, without I/O.

:class:`VirtualMarlin` answers host lines the way Marlin 2.1 does, with the reply strings of
its sources (``Marlin/src/core/language.h``, ``Marlin/src/gcode/queue.cpp``,
``Marlin/src/gcode/gcode.cpp``):

* A line is checked as it is read from the serial buffer into the command queue
  (``GCodeQueue::get_serial_commands``): its number must be the last one + 1 (``M110`` may
  set any), then it must carry a checksum, and the checksum must match. A refused line is
  answered ``Error:<reason>, Last Line: <n>``, ``Resend: <n+1>``, ``ok``, and every byte
  waiting behind it in the serial buffer is thrown away (``gcode_line_error``), so lines a
  host sent ahead of it are lost without a word.
* Accepted commands wait in a queue of ``BUFSIZE`` slots and run in order; each is
  answered ``ok`` once it has run (with ``ADVANCED_OK``: ``ok N<n> P<planner free>
  B<queue free>``, the queue count including the command answered, ``ok_to_send``).
* Commands are split into word and parameters by :mod:`doseprint.gcode.tokens` (the
  tokenizer of the dose reading) and dispatched by word to ``_cmd_<code>`` methods, as
  Marlin's ``process_parsed_command`` does; a command it has none for is answered ``echo:Unknown
  command: "<command>"`` and ``ok`` (``GCodeParser::unknown_command_warning``), a tool it
  lacks ``echo:T<n> Invalid extruder`` (``invalid_extruder_error``).
* Extrusion below the minimum temperature (``EXTRUDE_MINTEMP``, 170 °C by default,
  ``M302 S<t>`` sets it) is refused as Marlin's planner refuses it: ``echo: cold extrusion
  prevented``, and the move runs without its E.
* Heater set points heat over simulated time; ``M109``/``M190`` report every second until
  within ``TEMP_WINDOW``; long commands print ``echo:busy: processing`` every 2 s.

Every command it runs is written to an optional log file, one per line, so a test can prove
that a print arrived exactly once and in order. Lines that arrive while every queue slot is
taken wait in a serial buffer of bytes; a line that finds it full is lost with Marlin's
``RX_BUFFER_MONITOR`` error, so a host that sends too far ahead is caught.

:class:`Faults` injects the faults a host must survive or stop safely on (all off by
default): a resend request, a lost or garbled ``ok``, a ``busy`` spell, a firmware halt, a
dropped connection, a board reset and a firmware that stops answering. The servers of
:mod:`doseprint.comms.virtual.servers` carry them over a real link; a dropped connection
closes it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from doseprint.comms.framing import parse_host_line
from doseprint.gcode.tokens import Command, parse_command

__all__ = [
    "EXTRUDE_MINTEMP_C",
    "FAULT_OPTIONS",
    "FIRMWARE_NAME",
    "Faults",
    "VirtualMarlin",
]

logger = logging.getLogger(__name__)

FIRMWARE_NAME = "Marlin 2.1.2 (doseprint virtual)"
"""What the virtual printer calls itself in ``M115`` and its greeting."""

# Marlin/src/core/language.h
ERR_LINE_NO = "Line Number is not Last Line Number+1, Last Line: "
ERR_CHECKSUM = "checksum mismatch, Last Line: "
ERR_NO_CHECKSUM = "No Checksum with line number, Last Line: "
ERR_RX_OVERFLOW = "RX BUF overflow, increase RX_BUFFER_SIZE: "
ERR_KILLED = "Printer halted. kill() called!"
UNKNOWN_COMMAND = 'Unknown command: "'
INVALID_EXTRUDER = "Invalid extruder"
COLD_EXTRUDE_STOP = " cold extrusion prevented"
ACTIVE_EXTRUDER = "Active Extruder: "

EXTRUDE_MINTEMP_C = 170.0
"""Marlin's default ``EXTRUDE_MINTEMP`` (``Configuration.h``), °C: E moves below it are refused."""

PLANNER_FREE = 15
"""The ``P`` of an ``ADVANCED_OK`` reply: Marlin's 16-move planner, empty (no simulated motion)."""

TEMP_WINDOW_C = 1.0
"""M109/M190 are done within this of the target (Marlin's ``TEMP_WINDOW``)."""

KEEPALIVE_S = 2.0
"""Simulated seconds between ``busy: processing`` lines in long commands (Marlin's default)."""

BUSY_LINE = "echo:busy: processing"
HALT_LINES = (f"Error:{ERR_KILLED}", "!!")
CHATTER_INTERVAL_S = {"busy": KEEPALIVE_S, "temperature": 1.0, "noise": 0.25}
"""Seconds between the lines a chattering printer (``busy_forever_after`` …) sends."""

GARBLED_OK = "o#k"
"""What a corrupted ``ok`` reads as: one character lost on the wire and another gained."""


def _fault(help_text: str, default: float | None = None) -> Any:
    # A field of Faults with the help text a command line shows for it.
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Faults:
    """The faults a virtual printer injects; all off by default.

    The ``*_every`` and ``*_after`` faults count *numbered* lines run since
    :meth:`VirtualMarlin.connect`, the ``M110`` that restarts numbering excepted; refused
    lines, repeats and unnumbered lines (a host's ``M115`` handshake, an ``M105`` ping) do
    not count. For a host that numbers a print's commands from 1 after ``M110 N0`` (as
    doseprint does), the Nth counted line is command N. ``halt_after``,
    ``disconnect_after``, ``reset_after``, ``hang_after`` and the three chattering faults
    fire once per session. All
    counts must be at least 1.

    Attributes
    ----------
    resend_every : int, optional
        Refuse the first arrival of every line whose number is a multiple of this, as if
        its checksum had been corrupted on the wire.
    drop_ok_every : int, optional
        Run every Nth counted line but never send its ``ok``, as if the reply were lost on
        the wire. A host recovers by pinging and resending; the line check refuses the
        repeat, so nothing runs twice.
    corrupt_ok_every : int, optional
        Run every Nth counted line but send ``o#k`` instead of its ``ok`` (any text after
        the ``ok`` is kept), as if the reply were garbled on the wire. Recovery is as for a
        lost ``ok``. A line chosen by both faults loses its ``ok``.
    busy_every : int, optional
        Before answering every Nth counted line, spend ``busy_s`` simulated seconds printing
        ``echo:busy: processing`` every 2 s (first at once), as Marlin does while a long
        move or a full planner holds the line back.
    busy_s : float
        Length of each busy spell, simulated s.
    halt_after : int, optional
        After answering the Nth counted line, print ``Error:Printer halted. kill() called!``
        and ``!!`` and read nothing more until the next connect, as a firmware ``kill()``
        does. Fatal for the print.
    disconnect_after : int, optional
        After answering the Nth counted line, drop the connection: later lines are lost
        unanswered, and the pty and TCP servers close the link. Fatal.
    reset_after : int, optional
        After answering the Nth counted line, reset as a board does (a watchdog or a
        brown-out): print the ``start`` greeting, forget the line number and heater set
        points. Fatal.
    hang_after : int, optional
        After answering the Nth counted line, stop answering anything while keeping the link
        open, as a firmware stuck in a loop does. Fatal.
    busy_forever_after : int, optional
        After answering the Nth counted line, run nothing more but print ``echo:busy:
        processing`` every 2 s for ever, as a firmware stuck in a command does. Fatal.
    reports_only_after : int, optional
        After answering the Nth counted line, run nothing more but print a temperature
        report every second for ever (a stuck firmware whose auto-report goes on). Fatal.
    noise_after : int, optional
        After answering the Nth counted line, run nothing more but send a line of noise
        four times a second, as a link at the wrong baud rate delivers. Fatal.

    The last three only talk as time passes: a server calls :meth:`VirtualMarlin.idle`.
    """

    resend_every: int | None = _fault(
        "Fault: ask for a resend of every Nth line, as after a corrupted checksum.")
    drop_ok_every: int | None = _fault("Fault: run every Nth line but never send its ok.")
    corrupt_ok_every: int | None = _fault("Fault: answer every Nth line with a garbled ok.")
    busy_every: int | None = _fault("Fault: report busy before answering every Nth line.")
    busy_s: float = _fault("How long each busy spell lasts, seconds.", 5.0)
    halt_after: int | None = _fault("Fault: halt with a firmware error after N lines.")
    disconnect_after: int | None = _fault("Fault: drop the connection after N lines.")
    reset_after: int | None = _fault("Fault: reset like a rebooting board after N lines.")
    hang_after: int | None = _fault("Fault: stop answering (link kept open) after N lines.")
    busy_forever_after: int | None = _fault(
        "Fault: after N lines run nothing more, sending 'busy: processing' for ever.")
    reports_only_after: int | None = _fault(
        "Fault: after N lines run nothing more, sending temperature reports for ever.")
    noise_after: int | None = _fault(
        "Fault: after N lines run nothing more, sending noise (as at a wrong baud rate).")

    def __post_init__(self) -> None:
        for option in dataclasses.fields(self):
            value = getattr(self, option.name)
            if option.name == "busy_s":
                if not (value >= 0 and math.isfinite(value)):
                    raise ValueError(f"busy_s must be a time, not {value}")
            elif value is not None and value < 1:
                raise ValueError(f"{option.name} must be at least 1, not {value}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Faults:
        """Take this class's fields out of ``options`` (a command line's keyword arguments,
        say) and build the faults from them; the other options are left in ``options``.

        Parameters
        ----------
        options : dict of str to Any
            Keyword arguments, some named as the fields (``resend_every=7``); a value of
            None leaves that field at its default.

        Returns
        -------
        Faults
        """
        given = {name: options.pop(name) for name in FAULT_OPTIONS if name in options}
        return cls(**{name: value for name, value in given.items() if value is not None})


FAULT_OPTIONS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Faults)}
"""The fields of :class:`Faults` by name: each fault option is declared once, there, and a
command line derives its options from these (the help text is in ``metadata["help"]``)."""


@dataclass
class _Heater:
    """A heater of the simulation: temperatures in °C."""

    actual_c: float
    target_c: float = 0.0

    def advance(
        self, dt_s: float, heat_rate_c_s: float, cool_rate_c_s: float, ambient_c: float
    ) -> None:
        """Move towards the set point (or ambient when off) for ``dt_s`` simulated seconds."""
        goal = self.target_c if self.target_c > 0 else ambient_c
        if self.actual_c < goal:
            self.actual_c = min(goal, self.actual_c + heat_rate_c_s * dt_s)
        else:
            self.actual_c = max(goal, self.actual_c - cool_rate_c_s * dt_s)


@dataclass(frozen=True)
class _Queued:
    """An accepted command waiting in the command queue."""

    command: str
    line_no: int | None
    counted: bool


Handler = Callable[[Command], Iterator[str]]


class VirtualMarlin:
    """A Marlin 2.1 printer in software: host lines in, reply lines out.

    Parameters
    ----------
    log_path : str or path-like, optional
        File to which every command run is appended, without line number and checksum,
        one per line, flushed at once (refused lines never appear).
    faults : Faults, optional
        The faults to inject (none by default).
    extruders : int
        Tools ``T0``… the printer has (Marlin's ``EXTRUDERS``).
    heat_rate_c_s, cool_rate_c_s : float
        Simulated heating and cooling rates, °C/s. The default heats to any target within
        one report, so M109/M190 finish almost at once.
    report_interval_s : float
        Simulated seconds between temperature reports while M109/M190 wait.
    ambient_c : float
        Room temperature, °C.
    extrude_min_temp_c : float
        The firmware's minimum extrusion temperature (``EXTRUDE_MINTEMP``), °C, until an
        ``M302`` changes it.
    advanced_ok : bool
        Report ``Cap:ADVANCED_OK:1`` and answer every command with ``ok N<n> P<free>
        B<free>`` (``N`` for numbered lines only), as Marlin built with ``ADVANCED_OK``
        does. Off: a plain ``ok``.
    rx_buffer_lines : int
        Command-queue slots (Marlin's ``BUFSIZE``). A command holds its slot from the moment
        it is read in until it has run and been answered.
    rx_buffer_bytes : int
        Serial receive buffer (Marlin's ``RX_BUFFER_SIZE``), where lines wait while every
        queue slot is taken. A line that finds it full is lost and answered with
        ``Error:RX BUF overflow, increase RX_BUFFER_SIZE: <n>`` (:attr:`overflows` counts
        them): a host that sends further ahead than the queue and this buffer hold gets an
        error.
    sleep : callable, optional
        Called with each stretch of simulated time, s. None (the default) lets simulated
        time pass instantly; servers pass ``time.sleep`` so a slow heat-up takes real time.

    Notes
    -----
    :meth:`feed` and :meth:`process` are generators: their replies, and the state changes
    behind them, happen as they are iterated. Consume them fully.
    """

    def __init__(
        self,
        *,
        log_path: str | os.PathLike[str] | None = None,
        faults: Faults | None = None,
        extruders: int = 2,
        heat_rate_c_s: float = 1000.0,
        cool_rate_c_s: float = 1000.0,
        report_interval_s: float = 1.0,
        ambient_c: float = 25.0,
        extrude_min_temp_c: float = EXTRUDE_MINTEMP_C,
        advanced_ok: bool = False,
        rx_buffer_lines: int = 4,
        rx_buffer_bytes: int = 128,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if extruders < 1:
            raise ValueError(f"extruders must be at least 1, not {extruders}")
        if rx_buffer_lines < 1 or rx_buffer_bytes < 0:
            raise ValueError(
                "rx_buffer_lines must be at least 1 and rx_buffer_bytes not negative, not "
                f"{rx_buffer_lines} and {rx_buffer_bytes}"
            )
        self.faults = faults or Faults()
        self.extruders = extruders
        self.heat_rate_c_s = heat_rate_c_s
        self.cool_rate_c_s = cool_rate_c_s
        self.report_interval_s = report_interval_s
        self.ambient_c = ambient_c
        self.default_extrude_min_temp_c = extrude_min_temp_c
        self.advanced_ok = advanced_ok
        self.rx_buffer_lines = rx_buffer_lines
        self.rx_buffer_bytes = rx_buffer_bytes
        self._sleep = sleep
        self._log: IO[str] | None = None
        if log_path is not None:
            self._log = Path(log_path).open("a", encoding="utf-8")  # closed by close()
        self.accepted: list[str] = []
        """Every command run this session and before, in order."""
        self.lines_counted = 0
        """Numbered lines run this session, the ``M110`` excepted (the fault counter)."""
        self.disconnected = False
        """True once ``disconnect_after`` has dropped the link, until :meth:`connect`."""
        self.overflows = 0
        """Lines lost because the queue and the serial receive buffer were full."""
        self.rx_peak = 0
        """Most lines held at once (queued or waiting in the serial buffer)."""
        self.cold_extrusions = 0
        """Moves whose E was dropped because the hot end was below the minimum temperature."""
        self.unknown_commands: list[str] = []
        """Commands answered with ``Unknown command`` or ``Invalid extruder``."""
        self._queue: deque[_Queued] = deque()  # read in and checked, not yet run
        self._serial: deque[str] = deque()  # waiting for a queue slot
        self._fired: set[str] = set()  # the once-per-session faults that have fired
        self._noise = random.Random(0)  # what noise_after sends: the same in every run
        self._reset()

    def _reset(self) -> None:
        # What a board reset clears: line numbering, heaters, a halt, positions.
        self.last_line = 0
        self.halted = False
        self.hung = False
        self.chatter: str | None = None
        """What a printer stuck by a chattering fault sends: busy, temperature or noise."""
        self._chatter_s = 0.0
        self.active_tool = 0
        self.tools = [_Heater(self.ambient_c) for _ in range(self.extruders)]
        self.bed = _Heater(self.ambient_c)
        self.fan_speed = 0
        self.extrude_min_temp_c = self.default_extrude_min_temp_c
        self.allow_cold_extrude = self.extrude_min_temp_c == 0
        self.relative_xyz = False
        self.relative_e = False
        self.position = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
        self._faulted: set[int] = set()

    # Session

    def connect(self) -> list[str]:
        """Begin a session as a board does after a reset: state cleared, greeting printed.

        Returns
        -------
        list of str
            ``start`` and a few ``echo:`` lines.
        """
        self._reset()
        self._queue.clear()
        self._serial.clear()
        self.lines_counted = 0
        self.disconnected = False
        self._fired.clear()
        return self._greeting()

    @staticmethod
    def _greeting() -> list[str]:
        return [
            "start",
            f"echo:{FIRMWARE_NAME}",
            "echo: Free Memory: 4096  PlannerBufferBytes: 1024",
        ]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def _dead(self) -> bool:
        # A killed Marlin reads nothing until it is reset; a cut link carries nothing.
        return self.halted or self.hung or self.disconnected or self.chatter is not None

    def feed(self, raw: str) -> Iterator[str]:
        """Take one host line and run what it lets run; yield the replies as Marlin prints
        them. The same as :meth:`receive` followed by :meth:`process`.

        Parameters
        ----------
        raw : str
            ``N12 G1 X10*87``, ``M105`` …, with or without line ending.

        Yields
        ------
        str
            Reply lines without line ending.
        """
        yield from self.receive(raw)
        yield from self.process()

    def receive(self, raw: str) -> list[str]:
        """One host line arrives: see :meth:`receive_burst`."""
        return self.receive_burst([raw])

    def receive_burst(self, lines: Iterable[str]) -> list[str]:
        """Host lines arrive together (one read of the port): they enter the serial buffer,
        and as many as there are free queue slots are read in and checked at once.

        Nothing runs until :meth:`process`. A line the check refuses is answered at once,
        and the lines behind it in the serial buffer are thrown away, as Marlin's
        ``gcode_line_error`` does.

        Parameters
        ----------
        lines : iterable of str
            Host lines, with or without line endings.

        Returns
        -------
        list of str
            The refusals' and overflow errors' replies; empty when all were taken.
        """
        replies: list[str] = []
        if self._dead:
            return replies
        for raw in lines:
            if not raw.strip():
                continue
            held = sum(len(line.strip()) + 1 for line in self._serial)
            if self._queue_full() and held + len(raw.strip()) + 1 > self.rx_buffer_bytes:
                self.overflows += 1
                logger.warning("virtual printer: receive buffer overflow, lost %r", raw)
                replies.append(f"Error:{ERR_RX_OVERFLOW}{held}")
                continue
            self._serial.append(raw)
            self.rx_peak = max(self.rx_peak, len(self._queue) + len(self._serial))
        replies += self._read_serial()
        return replies

    def process(self) -> Iterator[str]:
        """Run every queued command, in order, reading more in as slots free; yield the
        replies.

        Yields
        ------
        str
            Reply lines without line ending.
        """
        while self._queue and not self._dead:
            yield from self._run(self._queue[0])
            if self._queue:
                self._queue.popleft()
            yield from self._read_serial()

    def _queue_full(self) -> bool:
        return len(self._queue) >= self.rx_buffer_lines

    def _free_slots(self) -> int:
        # ok_to_send runs while the answered command still holds its slot (queue.cpp).
        return self.rx_buffer_lines - len(self._queue)

    def _read_serial(self) -> list[str]:
        # GCodeQueue::get_serial_commands: read lines in while the queue has room.
        replies: list[str] = []
        while self._serial and not self._queue_full() and not self._dead:
            raw = self._serial.popleft()
            refusal = self._check(raw)
            if refusal is not None:
                replies += refusal
                self._serial.clear()  # gcode_line_error empties the receive buffer
        return replies

    def _check(self, raw: str) -> list[str] | None:
        # The line checks of get_serial_commands, in Marlin's order; None when accepted.
        line = parse_host_line(raw)
        command = line.command
        if line.line_no is not None:
            is_m110 = "M110" in command.upper()
            if line.line_no != self.last_line + 1 and not is_m110:
                return self._refuse(ERR_LINE_NO)
            if line.checksum is None:
                return self._refuse(ERR_NO_CHECKSUM)
            if not line.checksum_ok or self._corrupt(line.line_no):
                return self._refuse(ERR_CHECKSUM)
            self.last_line = line.line_no
            if is_m110:
                m110 = parse_command(command)
                if "N" in m110.params:
                    self.last_line = int(m110.params["N"])
            counted = not is_m110
        else:
            counted = False
        if command:
            self._queue.append(_Queued(command, line.line_no, counted))
        return None

    def _refuse(self, reason: str) -> list[str]:
        # gcode_line_error, then flush_and_request_resend: Marlin 2.1 prints a bare ok.
        return [f"Error:{reason}{self.last_line}", f"Resend: {self.last_line + 1}", "ok"]

    def _corrupt(self, line_no: int) -> bool:
        # Fault injection: each chosen line fails once, and so is sent again by the host.
        every = self.faults.resend_every
        if every is None or line_no <= 0 or line_no % every or line_no in self._faulted:
            return False
        self._faulted.add(line_no)
        return True

    def _run(self, item: _Queued) -> Iterator[str]:
        self._accept(item.command)
        command = parse_command(item.command)
        handler: Handler | None = getattr(self, f"_cmd_{command.word}", None)
        if handler is None and command.word[:1] == "T" and command.word[1:].isdigit():
            handler = self._cmd_T
        replies = handler(command) if handler is not None else self._unknown(command)
        if self.advanced_ok:
            replies = self._advanced(replies, item.line_no)
        if not item.counted:
            yield from replies
            return
        self.lines_counted += 1
        yield from self._faulty_answer(replies)

    def _advanced(self, replies: Iterator[str], line_no: int | None) -> Iterator[str]:
        # ADVANCED_OK: an ok names the line it answers and the free planner and queue slots.
        number = f" N{line_no}" if line_no is not None else ""
        for reply in replies:
            if reply == "ok":
                reply = f"ok{number} P{PLANNER_FREE} B{self._free_slots()}"
            yield reply

    # Fault injection

    def _every(self, every: int | None) -> bool:
        return every is not None and self.lines_counted % every == 0

    def _once_at(self, name: str, after: int | None) -> bool:
        if after is None or self.lines_counted < after or name in self._fired:
            return False
        self._fired.add(name)
        return True

    def _faulty_answer(self, replies: Iterator[str]) -> Iterator[str]:
        # The counted line's own replies, changed by the faults chosen for it, then the
        # fatal faults due after it.
        faults = self.faults
        if self._every(faults.busy_every):
            yield from self._busy_spell(faults.busy_s)
        drop = self._every(faults.drop_ok_every)
        corrupt = self._every(faults.corrupt_ok_every)
        for reply in replies:
            if reply == "ok" or reply.startswith("ok "):
                if drop:
                    continue
                if corrupt:
                    reply = GARBLED_OK + reply[2:]
            yield reply
        if self._once_at("halt", faults.halt_after):
            yield from self._kill()
        elif self._once_at("hang", faults.hang_after):
            logger.info("virtual printer: hanging after line %d", self.last_line)
            self.hung = True
        elif chatter := self._chatter_due():
            logger.info("virtual printer: stuck after line %d, sending %s", self.last_line,
                        chatter)
            self.chatter = chatter
        elif self._once_at("reset", faults.reset_after):
            logger.info("virtual printer: simulated reset after line %d", self.last_line)
            self._reset()
            self._queue.clear()
            self._serial.clear()
            yield from self._greeting()
        elif self._once_at("disconnect", faults.disconnect_after):
            logger.info("virtual printer: dropping the connection after line %d", self.last_line)
            self.disconnected = True

    def _busy_spell(self, duration_s: float) -> Iterator[str]:
        remaining = duration_s
        while remaining > 0:
            yield BUSY_LINE
            step = min(KEEPALIVE_S, remaining)
            self._pass_time(step)
            remaining -= step

    def _chatter_due(self) -> str | None:
        faults = self.faults
        for kind, after in (("busy", faults.busy_forever_after),
                            ("temperature", faults.reports_only_after),
                            ("noise", faults.noise_after)):
            if self._once_at(f"chatter-{kind}", after):
                return kind
        return None

    def idle(self, dt_s: float) -> list[str]:
        """Real or simulated time passes with no host line: what the printer sends meanwhile.

        Only a printer stuck by a chattering fault sends anything: ``busy:`` lines,
        temperature reports or noise, each at its interval (:data:`CHATTER_INTERVAL_S`).

        Parameters
        ----------
        dt_s : float
            Seconds passed since the last call.

        Returns
        -------
        list of str
        """
        if self.chatter is None or not dt_s > 0:
            return []
        interval = CHATTER_INTERVAL_S[self.chatter]
        self._chatter_s += dt_s
        lines: list[str] = []
        while self._chatter_s >= interval:
            self._chatter_s -= interval
            if self.chatter == "busy":
                lines.append(BUSY_LINE)
            elif self.chatter == "temperature":
                lines.append(self._report())
            else:
                # Bytes above 0x7f: never a reply's first character, never a line end.
                lines.append("".join(chr(self._noise.randrange(0x80, 0x100))
                                     for _ in range(12)))
        return lines

    def _kill(self) -> Iterator[str]:
        self.halted = True
        for heater in (*self.tools, self.bed):
            heater.target_c = 0.0
        self._queue.clear()
        self._serial.clear()
        yield from HALT_LINES

    # The run log

    def _accept(self, command: str) -> None:
        self.accepted.append(command)
        if self._log is not None:
            self._log.write(command + "\n")
            self._log.flush()

    # Simulated time and temperatures

    def _pass_time(self, dt_s: float) -> None:
        for heater in (*self.tools, self.bed):
            heater.advance(dt_s, self.heat_rate_c_s, self.cool_rate_c_s, self.ambient_c)
        if self._sleep is not None and dt_s > 0:
            self._sleep(dt_s)

    def _report(self) -> str:
        # Marlin's M105 layout: active tool, bed, each tool, then heater powers.
        active = self.tools[self.active_tool]
        parts = [f"T:{active.actual_c:.2f} /{active.target_c:.2f}"]
        parts.append(f"B:{self.bed.actual_c:.2f} /{self.bed.target_c:.2f}")
        if self.extruders > 1:
            parts += [f"T{i}:{t.actual_c:.2f} /{t.target_c:.2f}" for i, t in enumerate(self.tools)]
        parts.append("@:0 B@:0")
        return " ".join(parts)

    def _wait_for(self, heater: _Heater, *, wait_cooling: bool, tool: int | None) -> Iterator[str]:
        # Report each interval until the heater is within the window, as M109/M190 do.
        suffix = f" E:{tool} W:?" if tool is not None else " W:?"
        while True:
            gap = heater.target_c - heater.actual_c
            if abs(gap) <= TEMP_WINDOW_C or (gap < 0 and not wait_cooling):
                return
            rate = self.heat_rate_c_s if gap > 0 else self.cool_rate_c_s
            needed = abs(gap) / rate if rate > 0 else self.report_interval_s
            self._pass_time(min(self.report_interval_s, needed))
            yield f"{self._report()}{suffix}"

    def _target_tool(self, command: Command) -> int | None:
        # GcodeSuite::get_target_extruder_from_command: None (and an echo) when out of range.
        if "T" not in command.params:
            return self.active_tool
        index = int(command.params["T"])
        return index if 0 <= index < self.extruders else None

    def _invalid_tool(self, command: Command) -> str:
        return f"echo:{command.word} {INVALID_EXTRUDER} {int(command.params['T'])}"

    # Command handlers, by Marlin's names (process_parsed_command dispatches on the code)

    def _unknown(self, command: Command) -> Iterator[str]:
        self.unknown_commands.append(command.text)
        yield f"echo:{UNKNOWN_COMMAND}{command.text.strip()}\""
        yield "ok"

    def _cmd_G1(self, command: Command) -> Iterator[str]:
        # A move; Marlin's planner drops the E of a move while the hot end is too cold
        # (planner.cpp, PREVENT_COLD_EXTRUSION) and says so.
        for axis in ("X", "Y", "Z"):
            if axis in command.params:
                value = command.params[axis]
                self.position[axis] = self.position[axis] + value if self.relative_xyz else value
        if "E" in command.params:
            value = command.params["E"]
            delta = value if self.relative_e else value - self.position["E"]
            self.position["E"] = self.position["E"] + delta
            cold = self.tools[self.active_tool].actual_c < self.extrude_min_temp_c
            if delta != 0 and cold and not self.allow_cold_extrude:
                self.cold_extrusions += 1
                yield f"echo:{COLD_EXTRUDE_STOP}"
        yield "ok"

    _cmd_G0 = _cmd_G1

    def _cmd_G4(self, command: Command) -> Iterator[str]:
        remaining = command.params.get("P", 0.0) / 1000.0 + command.params.get("S", 0.0)
        while remaining > 0:
            step = min(KEEPALIVE_S, remaining)
            self._pass_time(step)
            remaining -= step
            if remaining > 0:
                yield BUSY_LINE
        yield "ok"

    def _cmd_G21(self, command: Command) -> Iterator[str]:
        yield "ok"  # a no-op without INCH_MODE_SUPPORT ("No error on unknown G21")

    def _cmd_G28(self, command: Command) -> Iterator[str]:
        for axis in ("X", "Y", "Z"):
            self.position[axis] = 0.0
        yield "ok"

    def _cmd_G90(self, command: Command) -> Iterator[str]:
        self.relative_xyz = False
        self.relative_e = False
        yield "ok"

    def _cmd_G91(self, command: Command) -> Iterator[str]:
        self.relative_xyz = True
        self.relative_e = True
        yield "ok"

    def _cmd_G92(self, command: Command) -> Iterator[str]:
        for axis in ("X", "Y", "Z", "E"):
            if axis in command.params:
                self.position[axis] = command.params[axis]
        yield "ok"

    def _cmd_M17(self, command: Command) -> Iterator[str]:
        yield "ok"

    def _cmd_M82(self, command: Command) -> Iterator[str]:
        self.relative_e = False
        yield "ok"

    def _cmd_M83(self, command: Command) -> Iterator[str]:
        self.relative_e = True
        yield "ok"

    def _cmd_M84(self, command: Command) -> Iterator[str]:
        yield "ok"

    _cmd_M18 = _cmd_M84

    def _cmd_M104(self, command: Command) -> Iterator[str]:
        tool = self._target_tool(command)
        if tool is None:
            yield self._invalid_tool(command)
        elif "S" in command.params:
            self.tools[tool].target_c = command.params["S"]
        yield "ok"

    def _cmd_M105(self, command: Command) -> Iterator[str]:
        yield f"ok {self._report()}"

    def _cmd_M106(self, command: Command) -> Iterator[str]:
        self.fan_speed = int(command.params.get("S", 255))
        yield "ok"

    def _cmd_M107(self, command: Command) -> Iterator[str]:
        self.fan_speed = 0
        yield "ok"

    def _cmd_M109(self, command: Command) -> Iterator[str]:
        tool = self._target_tool(command)
        if tool is None:
            yield self._invalid_tool(command)
            yield "ok"
            return
        heater = self.tools[tool]
        if "R" in command.params:
            heater.target_c = command.params["R"]
        elif "S" in command.params:
            heater.target_c = command.params["S"]
        else:
            yield "ok"  # no temperature given: M109 sets and waits for nothing
            return
        yield from self._wait_for(heater, wait_cooling="R" in command.params, tool=tool)
        yield "ok"

    def _cmd_M110(self, command: Command) -> Iterator[str]:
        if "N" in command.params:
            self.last_line = int(command.params["N"])
        self._faulted.clear()
        yield "ok"

    def _cmd_M112(self, command: Command) -> Iterator[str]:
        self.halted = True
        for heater in (*self.tools, self.bed):
            heater.target_c = 0.0
        yield HALT_LINES[0]

    def _cmd_M114(self, command: Command) -> Iterator[str]:
        p = self.position
        yield f"X:{p['X']:.2f} Y:{p['Y']:.2f} Z:{p['Z']:.2f} E:{p['E']:.2f} Count X:0 Y:0 Z:0"
        yield "ok"

    def _cmd_M115(self, command: Command) -> Iterator[str]:
        yield (
            f"FIRMWARE_NAME:{FIRMWARE_NAME} SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
            f"PROTOCOL_VERSION:1.0 MACHINE_TYPE:doseprint-virtual EXTRUDER_COUNT:{self.extruders}"
        )
        for name, value in (
            ("SERIAL_XON_XOFF", 0),
            ("EEPROM", 0),
            ("AUTOREPORT_TEMP", 0),
            ("EMERGENCY_PARSER", 0),
            ("ADVANCED_OK", int(self.advanced_ok)),
            ("THERMAL_PROTECTION", 1),
        ):
            yield f"Cap:{name}:{value}"
        yield "ok"

    def _cmd_M117(self, command: Command) -> Iterator[str]:
        yield "ok"

    def _cmd_M140(self, command: Command) -> Iterator[str]:
        if "S" in command.params:
            self.bed.target_c = command.params["S"]
        yield "ok"

    def _cmd_M190(self, command: Command) -> Iterator[str]:
        if "R" in command.params:
            self.bed.target_c = command.params["R"]
        elif "S" in command.params:
            self.bed.target_c = command.params["S"]
        else:
            yield "ok"
            return
        yield from self._wait_for(self.bed, wait_cooling="R" in command.params, tool=None)
        yield "ok"

    def _cmd_M220(self, command: Command) -> Iterator[str]:
        yield "ok"

    def _cmd_M221(self, command: Command) -> Iterator[str]:
        yield "ok"

    def _cmd_M302(self, command: Command) -> Iterator[str]:
        # M302.cpp: S sets the minimum, P1 allows cold extrusion, neither reports.
        if "S" in command.params:
            self.extrude_min_temp_c = command.params["S"]
            self.allow_cold_extrude = self.extrude_min_temp_c == 0
        if "P" in command.params:
            self.allow_cold_extrude = self.extrude_min_temp_c == 0 or command.params["P"] != 0
        elif "S" not in command.params:
            state = "en" if self.allow_cold_extrude else "dis"
            yield f"echo:Cold extrudes are {state}abled (min temp {self.extrude_min_temp_c:g}C)"
        yield "ok"

    def _cmd_M400(self, command: Command) -> Iterator[str]:
        yield "ok"

    def _cmd_T(self, command: Command) -> Iterator[str]:
        tool = int(command.word[1:])
        if tool >= self.extruders:
            yield f"echo:T{tool} {INVALID_EXTRUDER}"
            self.unknown_commands.append(command.text)
        else:
            self.active_tool = tool
            if self.extruders > 1:  # tool_change() reports only with several extruders
                yield f"echo:{ACTIVE_EXTRUDER}{tool}"
        yield "ok"
