"""Servers that put a :class:`~doseprint.comms.virtual.firmware.VirtualMarlin` on a
pseudo-terminal or a TCP port, so a host prints to it over a real link.

:func:`serve_pty` and :func:`serve_tcp` serve from a background thread; a fault that drops
the connection (``disconnect_after``) closes the link. ``doseprint virtual-printer --pty``
runs :func:`run_virtual_printer`, which prints the device path to connect to on the first
line of stdout and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Literal

from doseprint.comms.transport import map_exceptions
from doseprint.comms.virtual.firmware import EXTRUDE_MINTEMP_C, Faults, VirtualMarlin
from doseprint.errors import PortOpenError

__all__ = ["VirtualMode", "run_virtual_printer", "serve_pty", "serve_tcp"]

logger = logging.getLogger(__name__)

VirtualMode = Literal["pty", "tcp"]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _answer(printer: VirtualMarlin, buffer: bytearray) -> Iterator[bytes]:
    # Every line that has arrived takes its place first (so lines sent ahead really fill
    # the queue), then the queue runs. Each reply goes out as it is printed, so a long
    # command's busy keep-alives reach the host while the command runs, as Marlin's do.
    refused = printer.receive_burst(list(_split_lines(buffer)))
    if refused:
        yield "".join(f"{reply}\n" for reply in refused).encode()
    for reply in printer.process():
        yield f"{reply}\n".encode()


def _split_lines(buffer: bytearray) -> Iterator[str]:
    # Marlin ends a line at \n or \r; take every complete one, leave the rest buffered.
    while True:
        ends = [i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0]
        if not ends:
            return
        end = min(ends)
        raw = bytes(buffer[:end])
        del buffer[: end + 1]
        if raw:
            yield raw.decode("utf-8", errors="replace")


def _start_pty_server(
    printer: VirtualMarlin, stop: threading.Event
) -> tuple[str, threading.Thread]:
    try:
        import tty  # POSIX only
    except ImportError as exc:
        raise PortOpenError(
            "this system has no pseudo-terminals", hint="use --tcp PORT instead of --pty"
        ) from exc
    with map_exceptions(
        {OSError: lambda e: PortOpenError(f"cannot create a pseudo-terminal: {e}")}
    ):
        master, slave = os.openpty()
        # Raw line discipline: no echo of what the printer writes, no CR/LF translation.
        tty.setraw(slave)
        path = os.ttyname(slave)

    def serve() -> None:
        buffer = bytearray()
        try:
            for reply in printer.connect():
                _write_all(master, f"{reply}\n".encode())
            last = time.monotonic()
            while not stop.is_set():
                ready, _, _ = select.select([master], [], [], 0.2)
                now = time.monotonic()
                for line in printer.idle(now - last):  # a stuck printer's chatter
                    _write_all(master, f"{line}\n".encode())
                last = now
                if not ready:
                    continue
                # The slave stays open here, so reads block instead of failing between clients.
                data = os.read(master, 4096)
                if not data:
                    continue
                buffer += data
                for chunk in _answer(printer, buffer):
                    _write_all(master, chunk)
                if printer.disconnected:
                    logger.info("virtual printer on %s: closing the link (fault)", path)
                    return  # closing the master side hangs the terminal up
        except OSError as exc:
            logger.error("virtual printer on %s stopped: %s", path, exc)
        finally:
            os.close(master)
            os.close(slave)

    thread = threading.Thread(target=serve, name=f"virtual-marlin {path}", daemon=True)
    thread.start()
    return path, thread


def serve_pty(printer: VirtualMarlin, *, stop: threading.Event | None = None) -> str:
    """Put a virtual printer on a new pseudo-terminal, served from a background thread.

    Parameters
    ----------
    printer : VirtualMarlin
        The printer to serve.
    stop : threading.Event, optional
        Set it to stop serving and close the terminal; without it the server runs until the
        process ends.

    Returns
    -------
    str
        The device path to open (``/dev/pts/7``), e.g. with
        :class:`~doseprint.comms.transport.SerialTransport`.

    Raises
    ------
    doseprint.errors.PortOpenError
        The system has no pseudo-terminals (Windows) or none is free.
    """
    path, _ = _start_pty_server(printer, stop or threading.Event())
    return path


def _serve_client(printer: VirtualMarlin, conn: socket.socket, stop: threading.Event) -> None:
    buffer = bytearray()
    conn.settimeout(0.2)
    # Replies are several small writes; do not let Nagle's algorithm hold them back.
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A new connection is a reset board, as with a USB printer.
    conn.sendall("".join(f"{r}\n" for r in printer.connect()).encode())
    last = time.monotonic()
    while not stop.is_set():
        try:
            data = conn.recv(4096)
        except TimeoutError:
            data = None
        now = time.monotonic()
        chatter = printer.idle(now - last)  # a stuck printer's chatter
        last = now
        if chatter:
            conn.sendall("".join(f"{line}\n" for line in chatter).encode())
        if data is None:
            continue
        if not data:
            return  # the client hung up
        buffer += data
        for chunk in _answer(printer, buffer):
            conn.sendall(chunk)
        if printer.disconnected:
            return  # the caller closes the socket


def _start_tcp_server(
    printer: VirtualMarlin, port: int, host: str, stop: threading.Event
) -> tuple[str, threading.Thread]:
    with map_exceptions(
        {
            OSError: lambda e: PortOpenError(
                f"cannot listen on {host}:{port}: {e}", hint="choose another --tcp PORT"
            )
        }
    ):
        server = socket.create_server((host, port))
    server.settimeout(0.2)
    address = f"socket://{host}:{server.getsockname()[1]}"

    def serve() -> None:
        with server:
            while not stop.is_set():
                try:
                    conn, peer = server.accept()
                except TimeoutError:
                    continue
                logger.info("virtual printer: client %s connected", peer)
                with conn:
                    try:
                        _serve_client(printer, conn, stop)
                    except OSError as exc:
                        logger.warning("virtual printer: client %s dropped: %s", peer, exc)
                logger.info("virtual printer: client %s gone", peer)

    thread = threading.Thread(target=serve, name=f"virtual-marlin {address}", daemon=True)
    thread.start()
    return address, thread


def serve_tcp(
    printer: VirtualMarlin,
    port: int,
    host: str = "127.0.0.1",
    *,
    stop: threading.Event | None = None,
) -> str:
    """Put a virtual printer on a TCP port, one client at a time, from a background thread.

    Each connection starts a session (``start`` greeting, line numbers reset); when the
    client hangs up the next one is accepted.

    Parameters
    ----------
    printer : VirtualMarlin
        The printer to serve.
    port : int
        TCP port; 0 picks a free one.
    host : str
        Interface to listen on.
    stop : threading.Event, optional
        Set it to stop serving.

    Returns
    -------
    str
        The pyserial URL to open: ``socket://127.0.0.1:5555``.

    Raises
    ------
    doseprint.errors.PortOpenError
        The port is taken or not permitted.
    """
    address, _ = _start_tcp_server(printer, port, host, stop or threading.Event())
    return address


def _announce(address: str) -> None:
    # The first line of stdout is the address, for scripts and tests to read.
    sys.stdout.write(f"{address}\n")
    sys.stdout.flush()


def run_virtual_printer(
    mode: VirtualMode,
    port: int | None = None,
    log_path: str | os.PathLike[str] | None = None,
    ready: Callable[[str], None] | None = None,
    *,
    faults: Faults | None = None,
    host: str = "127.0.0.1",
    heat_rate_c_s: float = 1000.0,
    extrude_min_temp_c: float = EXTRUDE_MINTEMP_C,
    advanced_ok: bool = False,
    rx_buffer_lines: int = 4,
    stop: threading.Event | None = None,
) -> None:
    """Serve a virtual printer until SIGTERM or SIGINT (blocking): ``doseprint virtual-printer``.

    Parameters
    ----------
    mode : {"pty", "tcp"}
        A pseudo-terminal, or a TCP port (``port`` required).
    port : int, optional
        TCP port for ``mode="tcp"``; 0 picks a free one.
    log_path : str or path-like, optional
        Log of the commands run (see :class:`VirtualMarlin`).
    ready : callable, optional
        Called once with the address to connect to (the pty path or ``socket://host:port``)
        as soon as the server listens. The default writes it as the first line of stdout
        and flushes.
    faults : Faults, optional
        The faults to inject; busy spells and heat-ups take real time here. After
        ``disconnect_after`` fires on a pseudo-terminal the server closes it and this
        function returns; over TCP the client's socket is closed and the next client is
        served.
    host : str
        Interface for ``mode="tcp"``.
    heat_rate_c_s : float
        Simulated heating rate, °C/s; heat-ups take real time at this rate.
    extrude_min_temp_c : float
        The firmware's minimum extrusion temperature, °C (Marlin's ``EXTRUDE_MINTEMP``).
    advanced_ok : bool
        Report ``Cap:ADVANCED_OK:1`` and free-slot counts in every ``ok``.
    rx_buffer_lines : int
        Command-queue slots (see :class:`VirtualMarlin`).
    stop : threading.Event, optional
        Set it to stop, for callers outside the main thread (signals only reach that one).

    Raises
    ------
    doseprint.errors.PortOpenError
        The pseudo-terminal or TCP port cannot be created.
    ValueError
        ``mode`` is unknown, or ``tcp`` without a port.
    """
    if mode not in ("pty", "tcp"):
        raise ValueError(f"mode must be 'pty' or 'tcp', not {mode!r}")
    if mode == "tcp" and port is None:
        raise ValueError("mode 'tcp' needs a port")
    stop = stop or threading.Event()
    printer = VirtualMarlin(
        log_path=log_path,
        faults=faults,
        heat_rate_c_s=heat_rate_c_s,
        cool_rate_c_s=heat_rate_c_s,
        extrude_min_temp_c=extrude_min_temp_c,
        advanced_ok=advanced_ok,
        rx_buffer_lines=rx_buffer_lines,
        sleep=time.sleep,
    )
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    thread: threading.Thread | None = None
    try:
        if mode == "pty":
            address, thread = _start_pty_server(printer, stop)
        else:
            assert port is not None
            address, thread = _start_tcp_server(printer, port, host, stop)
        logger.info("virtual printer serving on %s", address)
        (ready or _announce)(address)
        while thread.is_alive() and not stop.wait(0.5):
            pass
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=2.0)
        printer.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
