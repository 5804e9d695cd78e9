"""The pure Marlin protocol: reply dialects, line framing, and the state machine line by line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doseprint.comms.protocol import (
    BUSY_GRACE_S,
    RESEND_OK_GRACE_S,
    STALE_SETTLE_S,
    Busy,
    Capability,
    Echo,
    FirmwareError,
    FirmwareInfo,
    Halt,
    HeaterReading,
    MarlinProtocol,
    Ok,
    ProtocolState,
    Resend,
    Start,
    TemperatureReport,
    Unrecognised,
    Wait,
    checksum,
    commands_from_gcode,
    format_line,
    parse_host_line,
    parse_reply,
    shows_life,
)
from doseprint.errors import (
    EXIT_INPUT,
    InputError,
    PrinterHaltedError,
    PrinterTimeoutError,
    ResendLimitError,
)

from .fakes import M115_ANSWER

# Reply parsing: every dialect seen in the wild.


@pytest.mark.parametrize(
    ("line", "line_no"),
    [("ok", None), ("ok N12 P15 B3", 12), ("ok 0", None), ("OK", None), ("ok\r\n", None)],
)
def test_ok_variants(line: str, line_no: int | None) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, Ok)
    assert reply.line_no == line_no
    assert reply.temperatures == {}


def test_advanced_ok_free_slots() -> None:
    reply = parse_reply("ok N12 P15 B3")
    assert isinstance(reply, Ok)
    assert (reply.line_no, reply.planner_free, reply.buffer_free) == (12, 15, 3)
    bare = parse_reply("ok P14 B0")
    assert isinstance(bare, Ok)
    assert (bare.line_no, bare.planner_free, bare.buffer_free) == (None, 14, 0)
    # The bed's B: in a temperature answer is no free-slot count.
    hot = parse_reply("ok T:200.0 /200.0 B:60 /60 @:127 B@:0")
    assert isinstance(hot, Ok)
    assert (hot.planner_free, hot.buffer_free) == (None, None)


def test_ok_with_temperatures() -> None:
    reply = parse_reply("ok T:200.0 /200.0 B:60 /60 @:127 B@:0")
    assert isinstance(reply, Ok)
    assert reply.temperatures == {
        "T": HeaterReading(200.0, 200.0),
        "B": HeaterReading(60.0, 60.0),
    }


@pytest.mark.parametrize(
    "line", ["Resend: 12", "Resend:12", "rs N12", "Resend:N:12", "rs 12", "resend: 12 "]
)
def test_resend_dialects(line: str) -> None:
    assert parse_reply(line) == Resend(text=line.strip(), line_no=12)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("busy: processing", "processing"),
        ("echo:busy: processing", "processing"),
        ("echo:busy: paused for user", "paused for user"),
    ],
)
def test_busy(line: str, reason: str) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, Busy)
    assert reply.reason == reason


def test_echo_start_wait_and_noise() -> None:
    assert parse_reply("echo:Active Extruder: 1") == Echo(
        "echo:Active Extruder: 1", "Active Extruder: 1"
    )
    assert parse_reply("start") == Start("start")
    assert parse_reply("wait") == Wait("wait")
    assert isinstance(parse_reply("\x00\xffgarbage"), Unrecognised)
    assert not shows_life(parse_reply("wait"))
    assert shows_life(parse_reply("echo:busy: processing"))


@pytest.mark.parametrize(
    "line",
    [
        "Error:Line Number is not Last Line Number+1, Last Line: 5",
        "Error:checksum mismatch, Last Line: 5",
        "Error:No Checksum with line number, Last Line: 5",
    ],
)
def test_transmission_errors_ask_for_a_resend(line: str) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, FirmwareError)
    assert reply.requests_resend
    assert reply.last_line == 5


@pytest.mark.parametrize(
    "line",
    [
        "Error:Printer halted. kill() called!",
        "Error:MINTEMP triggered, system stopped! Heater_ID: 0",
    ],
)
def test_other_errors_are_fatal(line: str) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, FirmwareError)
    assert not reply.requests_resend


def test_halt() -> None:
    assert parse_reply("!! Thermal runaway") == Halt("!! Thermal runaway", "Thermal runaway")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "T:210.5 /210.0 B:40.2 /40.0 @:127",
            {"T": HeaterReading(210.5, 210.0), "B": HeaterReading(40.2, 40.0)},
        ),
        (
            " T:21.52 /0.00 B:21.29 /0.00 T0:21.52 /0.00 T1:21.00 /0.00 @:0 B@:0 @0:0 @1:0",
            {
                "T": HeaterReading(21.52, 0.0),
                "B": HeaterReading(21.29, 0.0),
                "T0": HeaterReading(21.52, 0.0),
                "T1": HeaterReading(21.0, 0.0),
            },
        ),
        # What Marlin prints each second while M109 waits.
        ("T:150.61 E:0 W:?", {"T": HeaterReading(150.61, None)}),
        (
            "T0:200.0 /200.0 T1:25.0 /0.0",
            {"T0": HeaterReading(200, 200), "T1": HeaterReading(25, 0)},
        ),
    ],
)
def test_temperature_reports(line: str, expected: dict[str, HeaterReading]) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, TemperatureReport)
    assert reply.temperatures == expected


def test_m115_fields_and_capabilities() -> None:
    reply = parse_reply(M115_ANSWER[0])
    assert isinstance(reply, FirmwareInfo)
    assert reply.fields == {
        "FIRMWARE_NAME": "Marlin 2.1.2 (Github)",
        "SOURCE_CODE_URL": "github.com/MarlinFirmware/Marlin",
        "PROTOCOL_VERSION": "1.0",
        "MACHINE_TYPE": "3D Printer",
        "EXTRUDER_COUNT": "1",
        "UUID": "cede2a2f-41a2",
    }
    assert parse_reply("Cap:ADVANCED_OK:1") == Capability("Cap:ADVANCED_OK:1", "ADVANCED_OK", True)
    assert parse_reply("Cap:EEPROM:0") == Capability("Cap:EEPROM:0", "EEPROM", False)


# Host lines.


def test_checksum_matches_the_known_m110_line() -> None:
    # "N0 M110 N0*125" is the line every Marlin host log starts with.
    assert format_line(0, "M110 N0") == "N0 M110 N0*125"
    body = "N12 G1 X10.5 E0.02"
    expected = 0
    for byte in body.encode():
        expected ^= byte
    assert checksum(body) == expected


def test_parse_host_line() -> None:
    line = parse_host_line("N12 G1 X10*" + str(checksum("N12 G1 X10")) + "\n")
    assert (line.line_no, line.command, line.checksum_ok) == (12, "G1 X10", True)
    assert not parse_host_line("N12 G1 X11*1").checksum_ok
    bare = parse_host_line("M105")
    assert (bare.line_no, bare.command, bare.checksum) == (None, "M105", None)


def test_commands_from_gcode() -> None:
    text = (
        "; doseprint job\n"
        ";TABLET:0 start\n"
        "G28 ; home\n"
        "\n"
        "   M104 S210   \n"
        "N7 G1 X1 Y2*55\n"
        ";TABLET:0 end\r\n"
        "M84\n"
    )
    assert commands_from_gcode(text) == ["G28", "M104 S210", "G1 X1 Y2", "M84"]


def test_lines_too_long_or_with_a_star_are_refused_before_sending() -> None:
    with pytest.raises(InputError) as info:
        MarlinProtocol(["G28", "M117 " + "x" * 100, "M117 a*b"])
    assert info.value.exit_code == EXIT_INPUT
    assert "command 2" in info.value.message and "command 3" in info.value.message


# The state machine, driven line by line.


def feed(protocol: MarlinProtocol, *lines: str) -> list[tuple[str, int | None]]:
    events: list[tuple[str, int | None]] = []
    for line in lines:
        events += [(e.kind, e.line_no) for e in protocol.on_reply(line)]
    return events


def drain(protocol: MarlinProtocol) -> list[str]:
    sent = []
    while (line := protocol.next_to_send()) is not None:
        sent.append(line)
    return sent


def numbers(lines: list[str]) -> list[int | None]:
    return [parse_host_line(line).line_no for line in lines]


def handshake(protocol: MarlinProtocol) -> None:
    assert drain(protocol) == ["M115"]
    feed(protocol, "start", "echo:Marlin 2.1.2", *M115_ANSWER)
    assert protocol.state is ProtocolState.STREAMING
    assert protocol.firmware["FIRMWARE_NAME"] == "Marlin 2.1.2 (Github)"
    assert protocol.capabilities == {"EMERGENCY_PARSER": True, "ADVANCED_OK": False}


def test_ping_pong_print() -> None:
    protocol = MarlinProtocol(["G28", "G1 X1"])
    handshake(protocol)
    assert drain(protocol) == ["N0 M110 N0*125"]
    assert feed(protocol, "ok") == [("ok", 0)]
    assert numbers(drain(protocol)) == [1]
    assert feed(protocol, "echo:busy: processing", "ok") == [("busy", None), ("ok", 1)]
    assert protocol.last_acked == 1
    assert numbers(drain(protocol)) == [2]
    assert not protocol.done
    feed(protocol, "ok")
    assert protocol.done and protocol.last_acked == 2
    assert drain(protocol) == []
    assert (protocol.lines_sent, protocol.resends) == (4, 0)


@pytest.mark.parametrize("request_line", ["Resend: 2", "Resend:2", "rs N2", "Resend:N:2"])
def test_resend_in_ping_pong(request_line: str) -> None:
    protocol = MarlinProtocol(["G28", "G1 X1", "G1 X2"])
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2]
    events = feed(protocol, "Error:checksum mismatch, Last Line: 1", request_line, "ok")
    # The error and the request are reported; the ok after them acknowledges nothing.
    assert events == [("error", None), ("resend", 2), ("ok", None)]
    assert protocol.last_acked == 1
    assert numbers(drain(protocol)) == [2]
    assert protocol.resends == 1
    feed(protocol, "ok")
    assert protocol.last_acked == 2


def test_send_ahead_window_and_stale_resend_requests() -> None:
    protocol = MarlinProtocol([f"G1 X{i}" for i in range(1, 9)], window=3, send_ahead="always")
    handshake(protocol)
    # The M110 goes alone: Marlin's M110 sets the line number again when it runs, so a line
    # read in before that would be refused (Marlin/src/gcode/host/M110.cpp).
    assert numbers(drain(protocol)) == [0]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1, 2, 3]
    # Line 1 is corrupted. Lines 2 and 3 are on the wire behind it: Marlin either threw
    # them away with its receive buffer, or refuses each as it arrives, and each refusal
    # empties the buffer again (queue.cpp, gcode_line_error). Line 1 waits for them.
    feed(protocol, "Error:checksum mismatch, Last Line: 0", "Resend: 1", "ok")
    assert protocol.hold_s() == STALE_SETTLE_S
    assert drain(protocol) == []
    for _ in range(2):
        feed(
            protocol, "Error:Line Number is not Last Line Number+1, Last Line: 0", "Resend: 1", "ok"
        )
    assert protocol.hold_s() is None
    assert numbers(drain(protocol)) == [1]  # one line at a time until it is through
    assert protocol.last_acked == 0
    feed(protocol, "ok")
    assert protocol.last_acked == 1
    assert numbers(drain(protocol)) == [2, 3, 4]
    feed(protocol, "ok", "ok", "ok")
    assert protocol.last_acked == 4
    assert protocol.resends == 3  # lines 1, 2 and 3 went out twice


def test_lines_thrown_away_behind_a_refused_one_are_waited_for_then_sent_again() -> None:
    protocol = MarlinProtocol([f"G1 X{i}" for i in range(1, 9)], window=4, send_ahead="always")
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1, 2, 3, 4]
    feed(protocol, "Error:checksum mismatch, Last Line: 0", "Resend: 1", "ok")
    # One of the three lines behind is refused; the other two were thrown away silently.
    feed(protocol, "Error:Line Number is not Last Line Number+1, Last Line: 0", "Resend: 1", "ok")
    assert drain(protocol) == [] and protocol.hold_s() == STALE_SETTLE_S
    protocol.on_hold_expired()
    assert numbers(drain(protocol)) == [1]
    # A line-number refusal of line 1 itself (not stale: its own copy failed) is honoured.
    feed(protocol, "Error:checksum mismatch, Last Line: 0", "Resend: 1", "ok")
    assert numbers(drain(protocol)) == [1]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2, 3, 4, 5]


def _greet(protocol: MarlinProtocol, *answer: str) -> None:
    assert drain(protocol) == ["M115"]
    feed(protocol, "start", *answer)
    assert protocol.state is ProtocolState.STREAMING


def _in_flight_at_start(protocol: MarlinProtocol) -> int:
    """Lines sent before any answer after the handshake (the M110 counted)."""
    return len(drain(protocol))


@pytest.mark.parametrize(
    "answer",
    [
        M115_ANSWER,  # Cap:ADVANCED_OK:0
        [M115_ANSWER[0], "ok"],  # a name and no capabilities
        ["ok"],  # nothing at all
    ],
    ids=["advanced-ok-0", "no-caps", "silent"],
)
def test_without_advanced_ok_lines_go_one_at_a_time(answer: list[str]) -> None:
    protocol = MarlinProtocol([f"G1 X{i}" for i in range(1, 9)], window=4)
    _greet(protocol, *answer)
    assert protocol.effective_window == 1
    assert _in_flight_at_start(protocol) == 1
    for _ in range(9):
        feed(protocol, "ok")
        drain(protocol)
    assert protocol.done and protocol.max_in_flight == 1


def test_advanced_ok_opens_the_window_to_the_profile() -> None:
    protocol = MarlinProtocol([f"G1 X{i}" for i in range(1, 9)], window=4)
    _greet(protocol, M115_ANSWER[0], "Cap:ADVANCED_OK:1", "ok")
    assert protocol.effective_window == 4
    assert numbers(drain(protocol)) == [0]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1, 2, 3, 4]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [5]
    assert protocol.max_in_flight == 4


@pytest.mark.parametrize(("free", "window"), [(1, 2), (3, 4), (7, 4), (0, 1)])
def test_free_slot_counts_cap_the_window(free: int, window: int) -> None:
    # The profile says 4; the firmware's ok says how many slots its queue really has. Marlin
    # counts them while the command answered still holds its slot (queue.cpp, ok_to_send:
    # BUFSIZE - length), so one more is free once it has been answered.
    protocol = MarlinProtocol([f"G1 X{i}" for i in range(1, 20)], window=4)
    _greet(protocol, M115_ANSWER[0], "Cap:ADVANCED_OK:1", f"ok P15 B{free}")
    assert protocol.effective_window == window
    assert len(drain(protocol)) == 1  # the M110 alone
    feed(protocol, f"ok N0 P15 B{free}")
    assert len(drain(protocol)) == window
    # A firmware with fewer slots than the profile is never sent more than it reported.
    for n in range(20):
        feed(protocol, f"ok N{n} P15 B{max(free - 1, 0)}")
        drain(protocol)
    assert protocol.done
    assert protocol.max_in_flight == window


def test_send_ahead_always_trusts_the_window() -> None:
    protocol = MarlinProtocol(["G1 X1", "G1 X2", "G1 X3"], window=3, send_ahead="always")
    _greet(protocol, "ok")
    assert numbers(drain(protocol)) == [0]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1, 2, 3]
    with pytest.raises(ValueError, match="send_ahead"):
        MarlinProtocol(["G28"], send_ahead="never")  # type: ignore[arg-type]


def test_resend_limit() -> None:
    protocol = MarlinProtocol(["G28", "G1 X1"], max_resends_per_line=3)
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    with pytest.raises(ResendLimitError) as info:
        for _ in range(4):
            feed(protocol, "Error:checksum mismatch, Last Line: 1", "Resend: 2", "ok")
            drain(protocol)
    assert info.value.last_acked == 1
    assert "'G1 X1'" in info.value.message


def started(commands: list[str], **kwargs: int) -> MarlinProtocol:
    protocol = MarlinProtocol(commands, **kwargs)
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    return protocol


@pytest.mark.parametrize(
    "line",
    [
        "Error:MINTEMP triggered, system stopped! Heater_ID: 0",
        "!! kill",
        "echo: cold extrusion prevented",
        "start",
    ],
)
def test_halts_carry_last_acked(line: str) -> None:
    protocol = started(["G28", "G1 X1 E1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    with pytest.raises(PrinterHaltedError) as info:
        feed(protocol, line)
    assert info.value.last_acked == 1
    assert "after command 1 of 3 ('G28')" in info.value.message


def test_reset_before_the_first_command_repeats_the_handshake() -> None:
    protocol = MarlinProtocol(["G28"])
    handshake(protocol)
    assert numbers(drain(protocol)) == [0]
    feed(protocol, "start")
    assert protocol.state is ProtocolState.HANDSHAKE
    # An ok left over from before the reset does not end the new handshake.
    assert drain(protocol) == ["M115"]
    feed(protocol, "ok")
    assert protocol.state is ProtocolState.HANDSHAKE
    feed(protocol, *M115_ANSWER)
    assert numbers(drain(protocol)) == [0]


def test_out_of_step_resend_requests_halt() -> None:
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    with pytest.raises(PrinterHaltedError, match="already acknowledged"):
        feed(protocol, "Resend: 1")
    protocol = started(["G28", "G1 X1"])
    drain(protocol)
    with pytest.raises(PrinterHaltedError, match="never sent"):
        feed(protocol, "Resend: 5")


def test_handshake_retries_then_times_out() -> None:
    protocol = MarlinProtocol(["G28"], handshake_attempts=3)
    assert drain(protocol) == ["M115"]
    assert protocol.on_timeout(2.0) == "M115"
    assert protocol.on_timeout(2.0) == "M115"
    with pytest.raises(PrinterTimeoutError, match="did not answer M115") as info:
        protocol.on_timeout(2.0)
    assert info.value.last_acked == 0


def test_lost_line_is_found_by_the_ping_and_sent_again() -> None:
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2]
    # Line 2 never arrived: silence, ping, and the firmware answers the ping alone.
    assert protocol.on_timeout(30.0) == "M105"
    assert protocol.ping_pending
    assert feed(protocol, "ok T:25.0 /0.0 B:25.0 /0.0 @:0") == [("temperature", None)]
    assert not protocol.ping_pending
    assert numbers(drain(protocol)) == [2]
    feed(protocol, "ok")
    assert protocol.last_acked == 2


def test_lost_ok_is_recovered_without_running_the_line_twice() -> None:
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2]
    # Line 2 ran but its ok was lost. After the ping, sending it again is refused by the
    # firmware's line check, whose resend request proves line 2 done.
    protocol.on_timeout(30.0)
    feed(protocol, "ok T:25.0 /0.0 B:25.0 /0.0 @:0")
    assert numbers(drain(protocol)) == [2]
    events = feed(
        protocol,
        "Error:Line Number is not Last Line Number+1, Last Line: 2",
        "Resend: 3",
        "ok",
    )
    assert ("ok", 2) in events
    assert protocol.last_acked == 2
    assert numbers(drain(protocol)) == [3]
    feed(protocol, "ok")
    assert protocol.done


def test_a_slow_ok_before_the_ping_answer_is_an_ack() -> None:
    protocol = started(["G4 S60", "G1 X1"])
    drain(protocol)
    protocol.on_timeout(30.0)
    assert feed(protocol, "ok") == [("ok", 1)]
    assert numbers(drain(protocol)) == [2]
    feed(protocol, "ok T:25.0 /0.0 B:25.0 /0.0 @:0")
    # Line 2 went out after the ping, so its missing ok is not suspicious yet.
    assert drain(protocol) == []
    feed(protocol, "ok")
    assert protocol.done


def test_silence_after_the_ping_gives_up() -> None:
    protocol = started(["G28", "G1 X1"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    protocol.on_timeout(30.0)
    with pytest.raises(PrinterTimeoutError, match=r"no reply for 30\.0 s to line 2") as info:
        protocol.on_timeout(30.0)
    assert info.value.last_acked == 1


def test_late_answer_to_a_repeated_m115_acknowledges_nothing() -> None:
    protocol = MarlinProtocol(["G28"])
    drain(protocol)
    protocol.on_timeout(2.0)  # first M115 was slow, not lost
    feed(protocol, *M115_ANSWER)
    assert numbers(drain(protocol)) == [0]
    feed(protocol, *M115_ANSWER)  # the second answer arrives while M110 is on its way
    assert protocol.last_acked == 0 and drain(protocol) == []
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1]


@given(
    window=st.integers(1, 4),
    corrupt=st.sets(st.integers(1, 30), max_size=8),
)
def test_any_corruption_pattern_delivers_every_line_once(window: int, corrupt: set[int]) -> None:
    # A minimal firmware model: takes line last+1 with a good checksum, refuses the rest.
    commands = [f"G1 X{i}" for i in range(1, 31)]
    protocol = MarlinProtocol(commands, window=window, send_ahead="always")
    handshake(protocol)
    taken: list[str] = []
    last = 0
    wire: list[str] = []
    for _ in range(10_000):
        wire += drain(protocol)
        if protocol.done:
            break
        line = parse_host_line(wire.pop(0))
        if line.line_no == last + 1 and line.line_no in corrupt:
            corrupt.discard(line.line_no)
            replies = [f"Error:checksum mismatch, Last Line: {last}", f"Resend: {last + 1}", "ok"]
        elif line.line_no == last + 1 or line.command.startswith("M110"):
            last = line.line_no or 0
            taken.append(line.command)
            replies = ["ok"]
        else:
            replies = [f"Error:Line Number is not Last Line Number+1, Last Line: {last}"]
            replies += [f"Resend: {last + 1}", "ok"]
        feed(protocol, *replies)
    assert protocol.done
    assert taken == ["M110 N0", *commands]
    assert protocol.last_acked == len(commands)


def test_a_temperature_poll_waits_for_the_lines_in_flight_and_acknowledges_nothing() -> None:
    protocol = started(["G1 X1", "G1 X2", "G1 X3"], window=4, send_ahead="always")
    # started() took the ok for the M110; lines 1-3 go out together.
    assert numbers(drain(protocol)) == [1, 2, 3]
    protocol.request_poll()
    assert drain(protocol) == []          # lines 1-3 await their oks: no poll yet
    assert feed(protocol, "ok", "ok") == [("ok", 1), ("ok", 2)]
    assert drain(protocol) == []
    assert feed(protocol, "ok") == [("ok", 3)]
    assert protocol.done
    assert drain(protocol) == []          # done: a poll then is pointless

    protocol = started(["G1 X1", "G1 X2"])
    protocol.request_poll()
    assert drain(protocol) == ["M105"]    # nothing in flight: the poll goes first
    assert drain(protocol) == []          # and nothing else until it is answered
    assert feed(protocol, "ok T:210.0 /210.0 B:60.0 /60.0") == [("temperature", None)]
    assert protocol.last_acked == 0 and protocol.polls == 1
    assert numbers(drain(protocol)) == [1]
    assert feed(protocol, "ok") == [("ok", 1)]


def test_a_poll_answer_that_comes_after_the_ping_is_not_a_line_s_ok() -> None:
    protocol = started(["G1 X1", "G1 X2"])
    protocol.request_poll()
    assert drain(protocol) == ["M105"]
    assert protocol.on_timeout(2.0) == "M105"        # the poll's answer is overdue: ping
    # The poll's late answer, then the ping's: neither acknowledges line 1.
    assert feed(protocol, "ok T:210.0 /210.0") == [("temperature", None)]
    assert feed(protocol, "ok T:210.0 /210.0") == [("temperature", None)]
    assert protocol.last_acked == 0
    assert numbers(drain(protocol)) == [1]
    assert feed(protocol, "ok") == [("ok", 1)]


# Replies as firmware other than Marlin 2.1 sends them


@pytest.mark.parametrize(
    "refusal",
    [
        # OctoPrint's virtual printer (plugins/virtual_printer/__init__.py "errors",
        # virtual.py _triggerResend): no "Last Line:", "Resend:" without a space.
        ["Error: Checksum mismatch", "Resend:2", "ok"],
        ["Error: Missing checksum", "Resend:2", "ok"],
        ["Error: expected line 2 got 3", "Resend:2", "ok"],
        # Marlin (language.h, queue.cpp): the error, the request, then the ok.
        ["Error:checksum mismatch, Last Line: 1", "Resend: 2", "ok"],
    ],
)
def test_a_communication_error_before_the_resend_is_recovered_once(refusal: list[str]) -> None:
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2]
    events = feed(protocol, *refusal)
    assert events == [("error", None), ("resend", 2), ("ok", None)]
    assert protocol.resend_sends_ok is True
    assert numbers(drain(protocol)) == [2]
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [3]
    feed(protocol, "ok")
    assert protocol.done and protocol.resends == 1


def test_a_firmware_that_prints_no_ok_after_resend_is_learnt_at_the_first_request() -> None:
    # Some Marlin 2.0 builds end flush_and_request_resend() at the "Resend:" line.
    protocol = started(["G28", "G1 X1", "G1 X2", "G1 X3"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    feed(protocol, "Error:checksum mismatch, Last Line: 1", "Resend: 2")
    assert drain(protocol) == [] and protocol.hold_s() == RESEND_OK_GRACE_S
    protocol.on_hold_expired()
    assert protocol.resend_sends_ok is False
    assert numbers(drain(protocol)) == [2]
    assert feed(protocol, "ok") == [("ok", 2)]  # the line's own ok, not swallowed
    assert numbers(drain(protocol)) == [3]
    # The next request is not waited on.
    feed(protocol, "Error:checksum mismatch, Last Line: 2", "Resend: 3")
    assert protocol.hold_s() is None
    assert numbers(drain(protocol)) == [3]
    feed(protocol, "ok")
    drain(protocol)
    feed(protocol, "ok")
    assert protocol.done


def test_an_unknown_command_stops_the_print() -> None:
    protocol = started(["G28", "M106 S255", "G1 X1"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    with pytest.raises(PrinterHaltedError, match="does not know M106") as info:
        feed(protocol, 'echo:Unknown command: "M106 S255"', "ok")
    assert info.value.last_acked == 1
    assert "Configuration.h" in (info.value.hint or "")


def test_a_cancel_from_the_printer_stops_the_print() -> None:
    protocol = started(["G28", "G1 X1"])
    with pytest.raises(PrinterHaltedError, match="asked to cancel"):
        feed(protocol, "//action:cancel")


def test_wait_with_a_line_in_flight_makes_its_ok_overdue_at_once() -> None:
    protocol = MarlinProtocol(["G28", "G1 X1"], durations_s=[0.0, 0.5])
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [1]
    assert protocol.ok_budget_s() is None  # G28: open
    feed(protocol, "wait")  # Marlin's idle marker: its command queue is empty
    assert protocol.ok_budget_s() == 0.0
    assert protocol.on_overdue(1.0) == "M105"
    assert protocol.ok_budget_s() is None  # the ping's answer may take any time
    assert protocol.on_overdue(1.0) is None
    feed(protocol, "ok T:25.0 /0.0 B:25.0 /0.0")
    assert numbers(drain(protocol)) == [1]  # line 1 was lost: sent again
    assert protocol.recoveries == 1 and protocol.overdue_pings == 1


def test_busy_keeps_a_bounded_wait_alive() -> None:
    protocol = MarlinProtocol(["G1 X1 F1200"], durations_s=[0.5])
    handshake(protocol)
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    progress = protocol.progress
    assert protocol.ok_budget_s() == pytest.approx(1.0)
    feed(protocol, "echo:busy: processing")
    assert protocol.progress != progress
    assert protocol.ok_budget_s() == BUSY_GRACE_S
    feed(protocol, "ok")
    assert protocol.done


def test_a_checksum_error_that_claims_the_refused_line_stops_the_print() -> None:
    # Marlin checks a line's number before its checksum (queue.cpp), so after a checksum
    # error it asks for the refused line itself. Asking for the line after it (OctoPrint's
    # resend_ratio does) claims a line that did not run: nothing can be trusted.
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    assert numbers(drain(protocol)) == [2]
    with pytest.raises(PrinterHaltedError, match="line check cannot be trusted") as info:
        feed(protocol, "Error: Checksum mismatch", "Resend:3", "ok")
    assert info.value.last_acked == 1
    # After a line-number error the same request is the ordinary answer to a line sent
    # twice (its first copy ran, its ok was lost): recovered.
    protocol = started(["G28", "G1 X1", "G1 X2"])
    drain(protocol)
    feed(protocol, "ok")
    drain(protocol)
    protocol.on_timeout(30.0)
    feed(protocol, "ok T:25.0 /0.0")
    assert numbers(drain(protocol)) == [2]
    feed(protocol, "Error:Line Number is not Last Line Number+1, Last Line: 2", "Resend: 3", "ok")
    assert protocol.last_acked == 2
