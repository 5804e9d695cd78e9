"""Fault injection in the virtual printer, and the streamer against each fault.

Recoverable faults must end in a completed print with every command accepted exactly once
and in order; fatal ones in the right ``PrintFailedError`` with an honest ``last_acked``.
"""

from __future__ import annotations

import gc
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from doseprint.comms.protocol import format_line
from doseprint.comms.streamer import StreamEvent, commands_from_gcode, stream_gcode
from doseprint.comms.transport import LoopbackTransport, SerialTransport
from doseprint.comms.virtual import Faults, VirtualMarlin, serve_pty, serve_tcp
from doseprint.errors import PrinterHaltedError, PrintFailedError

posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")

ANSWER_TIMEOUT_S = 0.05
"""Short no-answer timeout: the loopback sleeps it whenever an ``ok`` is missing."""

N_MOVES = 300


def job(n_moves: int = N_MOVES) -> list[str]:
    moves = [f"G1 X{i % 40 + 0.5:.3f} Y{i // 40:.3f} E0.01234" for i in range(n_moves)]
    return commands_from_gcode("\n".join(["M109 S200", "G28", "G90", "M83", *moves, "M400"]))


def feed(printer: VirtualMarlin, line: str) -> list[str]:
    return list(printer.feed(line))


def program(printer: VirtualMarlin) -> list[str]:
    """What the printer accepted, less the host's handshake, numbering reset and pings."""
    return [c for c in printer.accepted if c not in ("M115", "M110 N0", "M105")]


class DroppingLoopback(LoopbackTransport):
    """A loopback whose link is lost when the virtual printer drops the connection."""

    printer: VirtualMarlin

    def write(self, line: str) -> None:
        if self.printer.disconnected:
            raise PrintFailedError("lost the connection to the printer on 'loopback'")
        super().write(line)

    def readline(self, timeout_s: float) -> str | None:
        if self._replies or not self.printer.disconnected:
            return super().readline(timeout_s)
        raise PrintFailedError("lost the connection to the printer on 'loopback'")


# The printer on its own


def test_fault_options_default_off_and_are_checked() -> None:
    printer = VirtualMarlin()
    printer.connect()
    feed(printer, format_line(0, "M110 N0"))
    for n in range(1, 50):
        assert feed(printer, format_line(n, f"G1 X{n}")) == ["ok"]
    assert printer.lines_counted == 49
    for option in ("drop_ok_every", "corrupt_ok_every", "busy_every", "halt_after"):
        with pytest.raises(ValueError, match=option):
            Faults(**dict[str, Any]({option: 0}))
    with pytest.raises(ValueError, match="busy_s"):
        Faults(busy_s=-1.0)


def test_ok_faults_hit_every_nth_counted_line_only() -> None:
    printer = VirtualMarlin(faults=Faults(drop_ok_every=3, corrupt_ok_every=2))
    printer.connect()
    assert feed(printer, "M115")[-1] == "ok"  # unnumbered: not counted
    assert feed(printer, format_line(0, "M110 N0")) == ["ok"]  # the M110: not counted
    answers = [feed(printer, format_line(n, f"G1 X{n}")) for n in range(1, 7)]
    assert answers == [["ok"], ["o#k"], [], ["o#k"], ["ok"], []]  # 6: dropping wins
    # A repeat of a line that ran is refused by the line check: it neither runs nor counts.
    assert feed(printer, format_line(6, "G1 X6"))[1] == "Resend: 7"
    assert printer.lines_counted == 6
    assert feed(printer, format_line(7, "M105"))[0].startswith("ok T:")
    assert feed(printer, format_line(8, "M105"))[0].startswith("o#k T:")


def test_busy_spell_passes_simulated_time_before_the_answer() -> None:
    slept: list[float] = []
    printer = VirtualMarlin(sleep=slept.append, faults=Faults(busy_every=2, busy_s=5.0))
    printer.connect()
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert feed(printer, format_line(2, "G28")) == ["echo:busy: processing"] * 3 + ["ok"]
    assert sum(slept) == pytest.approx(5.0)


def test_halt_after_answers_then_kills() -> None:
    printer = VirtualMarlin(faults=Faults(halt_after=2))
    printer.connect()
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert feed(printer, format_line(2, "G28")) == [
        "ok",
        "Error:Printer halted. kill() called!",
        "!!",
    ]
    assert printer.halted
    assert feed(printer, format_line(3, "G28")) == []
    assert feed(printer, "M105") == []
    printer.connect()  # a reset revives it, and the fault has a new session to count in
    assert feed(printer, format_line(1, "G28")) == ["ok"]


def test_reset_after_greets_and_forgets_the_line_number() -> None:
    printer = VirtualMarlin(faults=Faults(reset_after=2))
    printer.connect()
    feed(printer, "M104 S200")
    feed(printer, format_line(1, "G28"))
    replies = feed(printer, format_line(2, "G28"))
    assert replies[:2] == ["ok", "start"]
    assert printer.tools[0].target_c == 0.0
    assert feed(printer, format_line(3, "G28"))[:2] == [
        "Error:Line Number is not Last Line Number+1, Last Line: 0",
        "Resend: 1",
    ]
    # Fires once a session: numbering may restart and carry on.
    assert feed(printer, format_line(0, "M110 N0")) == ["ok"]
    for n in range(1, 5):
        assert feed(printer, format_line(n, "G28")) == ["ok"]


def test_disconnect_after_loses_everything_later() -> None:
    printer = VirtualMarlin(faults=Faults(disconnect_after=1))
    printer.connect()
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert printer.disconnected
    assert feed(printer, format_line(2, "G28")) == []
    assert printer.accepted == ["G28"]
    printer.connect()
    assert not printer.disconnected


def test_hang_after_answers_then_goes_silent_on_an_open_link() -> None:
    printer = VirtualMarlin(faults=Faults(hang_after=2))
    printer.connect()
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert feed(printer, format_line(2, "G28")) == ["ok"]
    assert printer.hung and not printer.disconnected
    assert feed(printer, format_line(3, "G28")) == []
    assert feed(printer, "M105") == []
    assert printer.accepted == ["G28", "G28"]
    with pytest.raises(ValueError, match="hang_after"):
        Faults(hang_after=0)


# The streamer against each fault, over the in-memory loopback


@pytest.mark.parametrize("window", [1, 4])
@pytest.mark.parametrize(
    "faults",
    [
        {"resend_every": 17},
        {"drop_ok_every": 37},
        {"corrupt_ok_every": 41},
        {"busy_every": 23, "busy_s": 7.0},
        {"drop_ok_every": 29, "corrupt_ok_every": 31, "resend_every": 13, "busy_every": 11},
    ],
    ids=["resend", "drop-ok", "corrupt-ok", "busy", "all"],
)
def test_recoverable_faults_deliver_every_command_once_in_order(
    faults: dict[str, Any], window: int
) -> None:
    commands = job()
    events: list[StreamEvent] = []
    slept: list[float] = []
    with (
        VirtualMarlin(
            sleep=slept.append, advanced_ok=window > 1, faults=Faults(**faults)
        ) as printer,
        LoopbackTransport(printer) as link,
    ):
        result = stream_gcode(
            commands,
            link,
            window=window,
            on_event=events.append,
            answer_timeout_s=ANSWER_TIMEOUT_S,
        )
    assert result.commands_acked == result.commands_total == len(commands)
    assert program(printer) == commands
    oks = [e.line_no for e in events if e.kind == "ok" and e.line_no is not None]
    assert oks == list(range(len(commands) + 1))
    kinds = {e.kind for e in events}
    if "drop_ok_every" in faults or "corrupt_ok_every" in faults:
        if window == 1:
            assert "timeout" in kinds  # found by the ping
        else:
            # ADVANCED_OK names the line each ok answers (queue.cpp, ok_to_send): the next
            # ok shows the lost one's line ran, without waiting.
            assert any(e.kind == "ok" and e.text.startswith("ok (implied") for e in events)
    if "busy_every" in faults:
        assert sum(e.kind == "busy" for e in events) >= len(commands) // faults["busy_every"]
        assert sum(slept) >= faults.get("busy_s", 5.0) * (len(commands) // faults["busy_every"])


@pytest.mark.parametrize("window", [1, 4])
@pytest.mark.parametrize("fault", ["halt_after", "reset_after", "disconnect_after"])
def test_fatal_faults_stop_the_print_with_an_honest_last_acked(fault: str, window: int) -> None:
    commands = job()
    after = 120
    events: list[StreamEvent] = []
    printer = VirtualMarlin(advanced_ok=window > 1, faults=Faults(**dict[str, Any]({fault: after})))
    with DroppingLoopback(printer) as link, pytest.raises(PrintFailedError) as caught:
        stream_gcode(commands, link, window=window, on_event=events.append, answer_timeout_s=0.2)
    error = caught.value
    if fault == "disconnect_after":
        assert type(error) is PrintFailedError
    else:
        assert isinstance(error, PrinterHaltedError)
        assert ("restarted" if fault == "reset_after" else "halted") in error.message
    assert program(printer) == commands[:after]
    assert after - window <= error.last_acked <= after
    assert events[-1].kind == "error"


def test_slow_heating_reports_temperatures_until_reached() -> None:
    commands = ["M104 S210", "M140 S60", "M190 S60", "M109 S210", *job(20)]
    slept: list[float] = []
    events: list[StreamEvent] = []
    with (
        VirtualMarlin(heat_rate_c_s=20.0, sleep=slept.append) as printer,
        LoopbackTransport(printer) as link,
    ):
        result = stream_gcode(
            commands, link, on_event=events.append, answer_timeout_s=ANSWER_TIMEOUT_S
        )
    assert result.commands_acked == len(commands)
    assert program(printer) == commands
    reports = [e.text for e in events if e.kind == "temperature"]
    # Bed 25 → 60 °C and tool 25 → 210 °C at 20 °C/s (the tool heating all along), one
    # report a simulated second.
    assert len(reports) >= 8
    assert "T:20" in reports[-1] or "T:21" in reports[-1]
    assert sum(slept) == pytest.approx((210 - 25 - 1) / 20, abs=1.0)
    assert printer.tools[0].actual_c >= 209.0


# Over real links


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@posix_only
@pytest.mark.parametrize("window", [1, 4])
def test_disconnect_over_a_pseudo_terminal_is_a_lost_port(
    stop: threading.Event, window: int
) -> None:
    commands = job()
    after = 150
    printer = VirtualMarlin(advanced_ok=window > 1, faults=Faults(disconnect_after=after))
    path = serve_pty(printer, stop=stop)
    with SerialTransport(path, 115200) as port, pytest.raises(PrintFailedError) as caught:
        stream_gcode(commands, port, window=window, answer_timeout_s=2.0)
    error = caught.value
    assert type(error) is PrintFailedError
    assert "lost the connection" in error.message
    assert program(printer) == commands[:after]
    assert after - window <= error.last_acked <= after


def test_disconnect_over_tcp_closes_the_socket_and_serves_the_next_client(
    stop: threading.Event,
) -> None:
    commands = job(60)
    printer = VirtualMarlin(faults=Faults(disconnect_after=30))
    address = serve_tcp(printer, 0, stop=stop)
    failures: list[tuple[type[BaseException], int]] = []
    # pyserial's socket:// close() shuts the socket down before closing it and skips the
    # close when the shutdown fails, as it does once the peer has gone: the socket is then
    # only closed by the garbage collector (the traceback holds it), with a ResourceWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # A new client is a new session: the fault fires again at the same count.
        for _ in range(2):
            with SerialTransport(address) as port, pytest.raises(PrintFailedError) as caught:
                stream_gcode(commands, port, answer_timeout_s=2.0)
            failures.append((type(caught.value), caught.value.last_acked))
        del caught
        gc.collect()
    assert [kind for kind, _ in failures] == [PrintFailedError] * 2
    assert all(29 <= last_acked <= 30 for _, last_acked in failures)
    assert program(printer) == commands[:30] * 2


@pytest.mark.parametrize(
    ("fault", "first"),
    [("busy_forever_after", "echo:busy: processing"), ("reports_only_after", "T:"),
     ("noise_after", None)],
)
def test_chattering_faults_run_nothing_more_and_talk_as_time_passes(
    fault: str, first: str | None
) -> None:
    printer = VirtualMarlin(faults=Faults(**dict[str, Any]({fault: 2})))
    printer.connect()
    assert printer.idle(10.0) == []  # a healthy printer says nothing unasked
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert feed(printer, format_line(2, "G28")) == ["ok"]
    assert feed(printer, format_line(3, "G28")) == [] and feed(printer, "M105") == []
    assert printer.accepted == ["G28", "G28"]
    said = printer.idle(4.0)
    assert len(said) >= 2
    if first is None:
        assert all(min(map(ord, line)) >= 0x80 for line in said)  # no reply, no line end
    else:
        assert said[0].startswith(first)
    with pytest.raises(ValueError, match=fault):
        Faults(**dict[str, Any]({fault: 0}))
