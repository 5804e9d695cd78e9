"""Real ports: a print over a pseudo-terminal and over TCP, and the port errors users meet."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.comms.streamer import commands_from_gcode, stream_gcode
from doseprint.comms.transport import SerialTransport
from doseprint.comms.virtual import Faults, VirtualMarlin, run_virtual_printer, serve_pty, serve_tcp
from doseprint.errors import EXIT_ENVIRONMENT, PortOpenError, PrintFailedError

posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")

GCODE = "\n".join(
    ["M104 S210", "M109 S210", "G28", "M83", ";TABLET:0 start"]
    + [f"G1 X{i % 50 / 2:.3f} Y{i // 50:.3f} E0.02000 F1200 ; infill" for i in range(300)]
    + [";TABLET:0 end", "M104 S0", "M84"]
)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@posix_only
def test_print_over_a_pseudo_terminal_to_a_virtual_printer_process(tmp_path: Path) -> None:
    log = tmp_path / "accepted.log"
    code = (
        "from doseprint.comms.virtual import Faults, run_virtual_printer; "
        f"run_virtual_printer('pty', log_path={str(log)!r}, faults=Faults(resend_every=7))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/"), path
        commands = commands_from_gcode(GCODE)
        with SerialTransport(path, 115200) as port:
            result = stream_gcode(commands, port, answer_timeout_s=5.0)
        assert result.commands_acked == len(commands) == 306
        assert result.resends >= 306 // 7
        assert result.firmware["MACHINE_TYPE"] == "doseprint-virtual"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert log.read_text(encoding="utf-8").splitlines() == ["M115", "M110 N0", *commands]


@posix_only
def test_send_ahead_over_a_pty_in_process(stop: threading.Event) -> None:
    printer = VirtualMarlin(advanced_ok=True, rx_buffer_lines=4, faults=Faults(resend_every=5))
    path = serve_pty(printer, stop=stop)
    commands = commands_from_gcode(GCODE)
    # Marlin empties its receive buffer after refusing a line (queue.cpp,
    # gcode_line_error): a line sent ahead that arrives late is refused in turn and may
    # take the first resent copy with it. The wait for each ok, bounded here by a nominal
    # 10 ms of motion per command, finds such a loss with a ping; pings are not the job's.
    with SerialTransport(path) as port:
        result = stream_gcode(commands, port, window=4, answer_timeout_s=5.0,
                              durations_s=[0.01] * len(commands))
    assert result.commands_acked == len(commands)
    assert [c for c in printer.accepted if c != "M105"] == ["M115", "M110 N0", *commands]
    # The window was used and the printer's queue never overfilled.
    assert result.window == result.max_in_flight == 4
    assert printer.overflows == 0 and printer.rx_peak <= 4


@posix_only
def test_a_pty_is_locked_against_a_second_user(stop: threading.Event) -> None:
    path = serve_pty(VirtualMarlin(), stop=stop)
    with SerialTransport(path), pytest.raises(PortOpenError):
        SerialTransport(path).open()


@posix_only
def test_a_printer_that_goes_away_mid_print(stop: threading.Event) -> None:
    # The printer hangs up its end of the terminal after the 50th job line, whatever the
    # timing of the two threads (a stop event set from here would race the server).
    path = serve_pty(VirtualMarlin(faults=Faults(disconnect_after=50)), stop=stop)
    with SerialTransport(path) as port, pytest.raises(PrintFailedError) as info:
        stream_gcode(commands_from_gcode(GCODE), port)
    assert 45 <= info.value.last_acked <= 50
    assert "lost the connection" in info.value.message or "stopped answering" in info.value.message


def test_print_over_tcp_two_clients_in_turn(stop: threading.Event) -> None:
    printer = VirtualMarlin()
    url = serve_tcp(printer, 0, stop=stop)
    assert url.startswith("socket://127.0.0.1:")
    commands = commands_from_gcode(GCODE)[:60]
    for _ in range(2):
        with SerialTransport(url) as port:
            result = stream_gcode(commands, port, answer_timeout_s=5.0)
        assert result.commands_acked == len(commands)
    assert printer.accepted == 2 * ["M115", "M110 N0", *commands]


def test_run_virtual_printer_reports_its_address_and_stops(tmp_path: Path) -> None:
    stop = threading.Event()
    addresses: list[str] = []
    ready = threading.Event()

    def on_ready(address: str) -> None:
        addresses.append(address)
        ready.set()

    server = threading.Thread(
        target=run_virtual_printer,
        args=("tcp", 0, tmp_path / "log.txt"),
        kwargs={"ready": on_ready, "stop": stop},
    )
    server.start()
    try:
        assert ready.wait(5)
        with SerialTransport(addresses[0]) as port:
            assert stream_gcode(["G28"], port).commands_acked == 1
    finally:
        stop.set()
        server.join(5)
    assert not server.is_alive()
    assert (tmp_path / "log.txt").read_text(encoding="utf-8").splitlines()[-1] == "G28"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "port",
    ["/dev/doseprint-no-such-printer", "nosuchscheme://printer", "socket://127.0.0.1:{closed}"],
)
def test_ports_that_cannot_be_opened(port: str) -> None:
    port = port.format(closed=_closed_port())
    with pytest.raises(PortOpenError) as info:
        SerialTransport(port).open()
    assert info.value.exit_code == EXIT_ENVIRONMENT
    assert repr(port) in info.value.message
    assert info.value.hint and "list_ports" in info.value.hint
    assert info.value.__cause__ is not None


def test_tcp_port_in_use_is_a_port_open_error(stop: threading.Event) -> None:
    url = serve_tcp(VirtualMarlin(), 0, stop=stop)
    taken = int(url.rsplit(":", 1)[1])
    with pytest.raises(PortOpenError, match="cannot listen"):
        serve_tcp(VirtualMarlin(), taken, stop=stop)
