"""Stream a G-code program to a printer: the one loop joining protocol, transport and clock.

:func:`stream_gcode` asks :class:`~doseprint.comms.protocol.MarlinProtocol` what to send,
writes it to a :class:`~doseprint.comms.transport.Transport`, blocks on ``readline`` until a
reply or a timeout, and hands every event, time-stamped, to a callback (the batch record
writes them as they happen). :func:`safe_stop` switches heaters and motors off after a
failed print.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from doseprint.comms.framing import commands_from_gcode, parse_host_line
from doseprint.comms.preflight import PreflightPlan
from doseprint.comms.protocol import (
    MarlinProtocol,
    ProtocolState,
    SendAhead,
    WireEvent,
    WireEventKind,
)
from doseprint.comms.replies import Flavor, parse_reply, shows_life
from doseprint.comms.timing import OK_FLOOR_S
from doseprint.comms.transport import Transport
from doseprint.errors import PrintAbortedError, PrintFailedError

__all__ = [
    "SAFE_STOP_COMMANDS",
    "StreamEvent",
    "StreamResult",
    "commands_from_gcode",
    "safe_stop",
    "safe_stop_commands",
    "stream_gcode",
]

logger = logging.getLogger(__name__)

SAFE_STOP_COMMANDS = ("M104 S0", "M140 S0", "M84")
"""Hot end off, bed off, motors off: what a failed print leaves the printer doing."""


@dataclass(frozen=True)
class StreamEvent:
    """One time-stamped event of a print, for the batch record.

    Attributes
    ----------
    kind : WireEventKind
        ``firmware`` (M115 answer), ``sent``, ``ok``, ``resend``, ``busy``, ``temperature``,
        ``echo``, ``error`` or ``timeout``.
    line_no : int or None
        Protocol line number ``N``: command *k* (1-based) is line *k*, the opening
        ``M110 N0`` line 0; None for unnumbered lines and for replies that name no line.
    text : str
        The line as sent or received, or a description (``timeout``, ``error``).
    monotonic_s : float
        ``time.monotonic()`` when it happened, s.
    """

    kind: WireEventKind
    line_no: int | None
    text: str
    monotonic_s: float


@dataclass(frozen=True)
class StreamResult:
    """How a completed print went.

    Attributes
    ----------
    commands_total : int
        Commands in the program.
    commands_acked : int
        Commands the firmware acknowledged (all of them, for a completed print).
    lines_sent : int
        Every line written, with resends, the handshake ``M115``, the ``M110`` and pings.
    resends : int
        Numbered lines written again.
    firmware : dict of str to str
        The ``M115`` fields (``FIRMWARE_NAME``, ``PROTOCOL_VERSION``, ``MACHINE_TYPE`` …).
    capabilities : dict of str to bool
        The ``Cap:`` lines of ``M115`` (``ADVANCED_OK``, ``EMERGENCY_PARSER`` …).
    elapsed_s : float
        From connecting to the last acknowledgement, s.
    window : int
        The send-ahead window the print used: ``window`` when the firmware reported
        ``Cap:ADVANCED_OK:1`` (capped by the free queue slots its ``ok`` replies reported),
        else 1.
    max_in_flight : int
        Most lines that awaited their ``ok`` at once (never above ``window``).
    buffer_free_max : int or None
        Most free command-queue slots an ``ok`` reported (``B<n>``); None if none did.
    overdue_pings : int
        Pings sent because an ``ok`` was later than the planned motion allowed.
    recoveries : int
        Times a ping's answer showed lines (or their ``ok``) lost, and they were sent again.
    probes_sent : int
        Pre-flight probes sent.
    """

    commands_total: int
    commands_acked: int
    lines_sent: int
    resends: int
    firmware: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    elapsed_s: float = 0.0
    window: int = 1
    max_in_flight: int = 0
    buffer_free_max: int | None = None
    overdue_pings: int = 0
    recoveries: int = 0
    probes_sent: int = 0


def stream_gcode(
    commands: Sequence[str],
    transport: Transport,
    *,
    window: int = 1,
    send_ahead: SendAhead = "advanced_ok",
    on_event: Callable[[StreamEvent], None] | None = None,
    answer_timeout_s: float = 30.0,
    connect_timeout_s: float = 2.0,
    handshake_attempts: int = 5,
    max_resends_per_line: int = 10,
    clock: Callable[[], float] = time.monotonic,
    poll_interval_s: float | None = None,
    flavor: Flavor | None = None,
    preflight: PreflightPlan | None = None,
    durations_s: Sequence[float] | None = None,
    ok_floor_s: float = OK_FLOOR_S,
) -> StreamResult:
    """Send every command to the printer exactly once, in order, and wait for each ``ok``.

    First the printer is greeted with ``M115`` (repeated after ``connect_timeout_s`` of
    silence, since a board that resets on connecting loses what arrives while it boots;
    a ``start`` line then is expected); given ``flavor``, its answer must name that firmware
    family. The ``preflight`` probes follow, one at a time, then numbering restarts with
    ``M110 N0`` and the commands follow as ``N<k> <command>*<xor>``, up to ``window``
    awaiting their ``ok`` at a time once the firmware has said it can queue them
    (``Cap:ADVANCED_OK:1``; see ``send_ahead``), one at a time otherwise. Resend requests
    are honoured from the line asked for (on Marlin).

    Three clocks watch the printer. With ``durations_s``, each line's ``ok`` may be late by
    the motion queued ahead of it plus ``ok_floor_s``
    (:func:`~doseprint.comms.timing.ok_budgets`); past that one ``M105`` ping asks the
    firmware where it is, and lines its answer shows lost are sent again (Marlin) or stop
    the print (Klipper, RepRapFirmware). ``busy:`` keep-alives restart that clock; heat-ups
    and homing have none. ``busy:``, temperature reports and any other reply restart
    the no-answer clock, so a long ``M109`` is fine while the firmware keeps talking: after
    ``answer_timeout_s`` of silence one ``M105`` ping is sent, and a silence after the ping
    ends the print. And only an ``ok`` that moves the print on restarts the hard bound
    (:func:`~doseprint.comms.timing.stall_limits`: twice ``answer_timeout_s`` plus four
    times the planned wait, or plus a heat-up, homing or probing allowance), so a printer
    that keeps sending ``busy:``, temperature reports or noise but no ``ok`` is stopped;
    the handshake and the pre-flight together get ``connect_timeout_s`` per ``M115`` try
    and per probe, plus ``answer_timeout_s``.

    Parameters
    ----------
    commands : sequence of str
        The commands, without comments or blank lines (see :func:`commands_from_gcode`).
    transport : Transport
        An open link to the printer; it is left open.
    window : int
        Most lines awaiting ``ok`` at once: 1 is ping-pong; the profile's
        ``rx_buffer_lines``.
    send_ahead : {"advanced_ok", "always"}
        ``advanced_ok``: use ``window`` only with a firmware that reports
        ``Cap:ADVANCED_OK:1``, else send one line at a time; ``always``: trust ``window``.
        Free-slot counts in ``ok`` replies (``B<n>``) cap the window in both cases (see
        :class:`~doseprint.comms.protocol.MarlinProtocol`).
    on_event : callable, optional
        Called with each :class:`StreamEvent` as it happens, in the streaming thread. An
        exception it raises stops the print and propagates.
    answer_timeout_s : float
        Silence, s, after which the printer is pinged, and after the ping, given up on.
    connect_timeout_s : float
        Silence, s, after which the handshake ``M115`` is sent again.
    handshake_attempts : int
        ``M115`` is sent at most this often.
    max_resends_per_line : int
        Resend requests honoured for one line.
    clock : callable
        Monotonic clock, s (tests may pass their own).
    poll_interval_s : float, optional
        Ask for the temperatures this often (an unnumbered ``M105`` once no line is in
        flight; :meth:`~doseprint.comms.protocol.MarlinProtocol.request_poll`), so the
        progress shows them live; None never polls.
    flavor : {"marlin", "klipper", "reprapfirmware"}, optional
        The printer profile's firmware family; the ``M115`` answer must name it. None
        checks nothing and treats the printer as Marlin.
    preflight : PreflightPlan, optional
        The pre-flight probes (:func:`~doseprint.comms.preflight.plan_preflight`).
    durations_s : sequence of float, optional
        Each command's planned duration, s (the time it adds to the printer's motion queue,
        from the motion planner); None leaves only the no-answer timeout.
    ok_floor_s : float
        Added to every planned wait for an ``ok``, s.

    Returns
    -------
    StreamResult

    Raises
    ------
    doseprint.errors.PrinterHaltedError
        The firmware printed ``Error:`` (other than a line-number or checksum error, which
        gets a resend), ``!!``, skipped an extrusion, or restarted mid-print.
    doseprint.errors.PrinterTimeoutError
        No answer to the handshake or the pre-flight, silence after the ping, or no ``ok``
        within a line's hard bound (or the handshake's) whatever else the printer sent.
    doseprint.errors.FirmwareRefusedError
        The firmware is not the profile's, or lacks a command the job uses (nothing of the
        job was sent).
    doseprint.errors.LineLostError
        A line or its ``ok`` was lost on a firmware that does not check line numbers.
    doseprint.errors.ResendLimitError
        One line was asked for again too often.
    doseprint.errors.PrintAbortedError
        Ctrl-C (KeyboardInterrupt).
    doseprint.errors.PrintFailedError
        The port was lost. Every one of these carries ``last_acked``: the number
        (1-based) of the last command the firmware acknowledged, 0 for none.
    doseprint.errors.InputError
        A command is too long for the firmware's line buffer (before anything is sent).
    ValueError
        A timeout that is not a positive, finite time, or a negative or non-finite poll
        interval.
    """
    for name, value in (("answer_timeout_s", answer_timeout_s),
                        ("connect_timeout_s", connect_timeout_s)):
        if not (math.isfinite(value) and value > 0):
            # nan never expires (the loop would spin for ever), 0 or less at once.
            raise ValueError(f"{name} must be a positive time, not {value!r}")
    if poll_interval_s is not None and not (math.isfinite(poll_interval_s)
                                            and poll_interval_s >= 0):
        raise ValueError(f"poll_interval_s must be a time, not {poll_interval_s!r}")
    protocol = MarlinProtocol(
        commands,
        window=window,
        send_ahead=send_ahead,
        max_resends_per_line=max_resends_per_line,
        handshake_attempts=handshake_attempts,
        flavor=flavor,
        preflight=preflight,
        durations_s=durations_s,
        ok_floor_s=ok_floor_s,
        answer_timeout_s=answer_timeout_s,
    )
    started = clock()
    # The handshake and the pre-flight as a whole: every M115 try and every probe may
    # take the connect timeout, and the printer a no-answer timeout more to boot.
    probes = len(preflight.probes) if preflight is not None else 0
    handshake_limit_s = connect_timeout_s * (handshake_attempts + probes) + answer_timeout_s

    def emit(kind: WireEventKind, line_no: int | None, text: str) -> None:
        if on_event is not None:
            on_event(StreamEvent(kind, line_no, text, clock()))

    def send(line: str) -> None:
        transport.write(line)
        if on_event is not None:
            emit("sent", parse_host_line(line).line_no, line)

    def relay(events: list[WireEvent]) -> None:
        for event in events:
            emit(event.kind, event.line_no, event.text)

    last_heard = clock()
    last_poll = clock()
    progress_seen = protocol.progress
    progress_at = clock()
    hold_seen = protocol.hold_epoch
    hold_at = clock()
    ok_epoch_seen = protocol.ok_epoch
    ok_epoch_at = clock()
    try:
        while not protocol.done:
            if poll_interval_s is not None and clock() - last_poll >= poll_interval_s:
                protocol.request_poll()
                last_poll = clock()
            while (line := protocol.next_to_send()) is not None:
                send(line)
            now = clock()
            if protocol.progress != progress_seen:
                progress_seen, progress_at = protocol.progress, now
            if protocol.hold_epoch != hold_seen:
                hold_seen, hold_at = protocol.hold_epoch, now
            if protocol.ok_epoch != ok_epoch_seen:
                ok_epoch_seen, ok_epoch_at = protocol.ok_epoch, now
            # The hard bound: only an ok that moves the print on restarts it.
            stall: float | None
            if protocol.state in (ProtocolState.HANDSHAKE, ProtocolState.PREFLIGHT):
                stall_since, stall = started, handshake_limit_s
            else:
                stall_since, stall = ok_epoch_at, protocol.stall_limit_s()
            if stall is not None and now >= stall_since + stall:
                waited = now - stall_since
                emit("timeout", None, f"no ok for {waited:.1f} s, past the bound of "
                     f"{stall:.1f} s: stopping")
                protocol.on_stalled(waited, stall)
            silent = protocol.state in (ProtocolState.HANDSHAKE, ProtocolState.PREFLIGHT)
            limit = connect_timeout_s if silent else answer_timeout_s
            if protocol.state is ProtocolState.PREFLIGHT:
                limit = connect_timeout_s * handshake_attempts
            deadlines = [last_heard + limit]
            if stall is not None:
                deadlines.append(stall_since + stall)
            hold = protocol.hold_s()
            if hold is not None:
                deadlines.append(hold_at + hold)
                if now >= hold_at + hold:
                    protocol.on_hold_expired()
                    continue
            budget = protocol.ok_budget_s()
            if budget is not None:
                deadlines.append(progress_at + budget)
                if now >= progress_at + budget:
                    waited = now - progress_at
                    ping = protocol.on_overdue(waited)
                    if ping is not None:
                        emit("timeout", None, f"no ok for {waited:.2f} s (planned motion "
                             f"and {ok_floor_s:.2f} s): pinging")
                        send(ping)
                    continue
            if now >= last_heard + limit:
                waited = now - last_heard
                emit("timeout", None, f"no reply for {waited:.1f} s")
                send(protocol.on_timeout(waited))
                last_heard = clock()
                continue
            remaining = min(deadlines) - now
            raw = transport.readline(remaining) if remaining > 0 else None
            if raw is None:
                continue
            reply = parse_reply(raw)
            if shows_life(reply):
                last_heard = clock()
            relay(protocol.on_reply(reply))
    except KeyboardInterrupt as exc:
        emit("error", None, "stopped by the operator")
        raise PrintAbortedError(
            f"the print was stopped by the operator after command {protocol.last_acked} "
            f"of {protocol.commands_total}",
            last_acked=protocol.last_acked,
            hint="these tablets cannot be released; heaters and motors are being switched off",
        ) from exc
    except PrintFailedError as exc:
        # Errors raised by the transport do not know how far the print got; add it.
        exc.last_acked = protocol.last_acked
        emit("error", None, exc.message)
        raise
    return StreamResult(
        commands_total=protocol.commands_total,
        commands_acked=protocol.last_acked,
        lines_sent=protocol.lines_sent,
        resends=protocol.resends,
        firmware=dict(protocol.firmware),
        capabilities=dict(protocol.capabilities),
        elapsed_s=clock() - started,
        window=protocol.effective_window,
        max_in_flight=protocol.max_in_flight,
        buffer_free_max=protocol.buffer_free_max,
        overdue_pings=protocol.overdue_pings,
        recoveries=protocol.recoveries,
        probes_sent=protocol.probes_sent,
    )


def safe_stop_commands(extruders: int = 1, *, emergency_parser: bool = False) -> list[str]:
    """The commands :func:`safe_stop` sends by default.

    Parameters
    ----------
    extruders : int
        Tools to switch off: one ``M104 T<i> S0`` each (a bare ``M104 S0`` reaches only the
        active tool); a single extruder gets ``M104 S0``.
    emergency_parser : bool
        The firmware has ``Cap:EMERGENCY_PARSER:1``: lead with ``M108``, which it obeys at
        once and which ends an ``M109``/``M190`` wait that would hold the rest back.

    Returns
    -------
    list of str
    """
    heaters = (
        [SAFE_STOP_COMMANDS[0]]
        if extruders <= 1
        else [f"M104 T{tool} S0" for tool in range(extruders)]
    )
    return [*(["M108"] if emergency_parser else []), *heaters, *SAFE_STOP_COMMANDS[1:]]


def safe_stop(
    transport: Transport,
    commands: Sequence[str] | None = None,
    *,
    extruders: int = 1,
    capabilities: Mapping[str, bool] | None = None,
    settle_s: float = 1.0,
) -> list[str]:
    """Switch heaters and motors off after a failed print, best effort.

    The commands go unnumbered (the firmware takes them whatever line it expects) and never
    raise: a dead port, or any error the transport raises, is logged and skipped, since
    this runs on the way out of a failed print, whatever failed. Replies are read for up
    to ``settle_s`` so the lines leave the port before the caller closes it.

    Parameters
    ----------
    transport : Transport
        The link the print used, still open.
    commands : sequence of str, optional
        What to send; default :func:`safe_stop_commands` (``M104 S0``, ``M140 S0``, ``M84``).
    extruders : int
        Tools to switch off, for the default commands.
    capabilities : mapping of str to bool, optional
        ``StreamResult.capabilities`` if known; ``EMERGENCY_PARSER`` adds a leading ``M108``.
    settle_s : float
        Longest time spent reading replies afterwards, s.

    Returns
    -------
    list of str
        The commands written (all of them unless the port failed).
    """
    if commands is None:
        emergency = bool(capabilities and capabilities.get("EMERGENCY_PARSER"))
        commands = safe_stop_commands(extruders, emergency_parser=emergency)
    written: list[str] = []
    for command in commands:
        try:
            transport.write(command)
        except Exception as exc:  # best effort, on the way out of any failure
            logger.warning("safe stop: could not send %r: %s", command, exc)
            return written
        written.append(command)
    oks = 0
    deadline = time.monotonic() + settle_s
    try:
        while oks < len(written) and (remaining := deadline - time.monotonic()) > 0:
            reply = transport.readline(remaining)
            if reply is not None and reply.strip().lower().startswith("ok"):
                oks += 1
    except Exception as exc:  # the commands are out
        logger.warning("safe stop: reading replies failed: %s", exc)
    return written
