"""Line transports to a printer: a pyserial port or URL, and an in-memory loopback.

A :class:`Transport` moves text lines and nothing else: it knows no G-code, numbering or
timing rules (those are :mod:`doseprint.comms.protocol`'s). ``readline`` blocks until a line
arrives or its timeout passes, so the streamer never polls in a busy loop.

Third-party exceptions are converted where they arise, by :func:`map_exceptions`: a port that
cannot be opened becomes :class:`~doseprint.errors.PortOpenError` (exit 3), a port lost
during the print :class:`~doseprint.errors.PrintFailedError` (exit 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import serial

from doseprint.errors import DoseprintError, PortOpenError, PrintFailedError

__all__ = [
    "LoopbackTransport",
    "Responder",
    "SerialTransport",
    "Transport",
    "map_exceptions",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class Transport(Protocol):
    """A line-oriented link to a printer.

    Lines are text without their line ending; a transport adds ``\\n`` on writing and
    removes ``\\r``/``\\n`` on reading.
    """

    @property
    def name(self) -> str:
        """What the link is called in messages (a device path or URL)."""
        ...

    def open(self) -> None:
        """Open the link; opening an open link does nothing."""
        ...

    def readline(self, timeout_s: float) -> str | None:
        """Block until a whole line arrives (return it) or ``timeout_s`` passes (None)."""
        ...

    def write(self, line: str) -> None:
        """Send one line (a line ending is added)."""
        ...

    def close(self) -> None:
        """Close the link; closing a closed link does nothing."""
        ...


@contextlib.contextmanager
def map_exceptions(
    mapping: Mapping[type[Exception], Callable[[Exception], DoseprintError]],
) -> Iterator[None]:
    """Convert third-party exceptions into doseprint errors at the boundary.

    The first entry whose type matches the exception builds the replacement, which is raised
    ``from`` the original so the cause stays visible under ``--debug``.

    Parameters
    ----------
    mapping : mapping of exception type to callable
        Checked in order; each callable takes the caught exception and returns the error
        to raise.

    Raises
    ------
    DoseprintError
        Built by the matching entry; exceptions that match none pass through unchanged.

    Examples
    --------
    >>> with map_exceptions({OSError: lambda e: PortOpenError(f"cannot open: {e}")}):
    ...     pass
    """
    try:
        yield
    except Exception as exc:
        for kind, make in mapping.items():
            if isinstance(exc, kind):
                raise make(exc) from exc
        raise


class SerialTransport:
    """A printer on a serial device or any pyserial URL.

    ``port`` is a device (``/dev/ttyUSB0``, ``COM3``, the path a virtual printer's ``--pty``
    printed) or a URL such as ``socket://127.0.0.1:5555``; ``serial.serial_for_url`` opens
    either. A local device is locked for exclusive use where the platform allows it, so two
    processes cannot print on one printer.

    Parameters
    ----------
    port : str
        Device path or pyserial URL.
    baudrate : int
        Bits per second; the printer profile's ``baud``.
    read_slice_s : float
        Longest single blocking read; ``readline`` loops over such reads until its own
        timeout, so a timeout is honoured to within this.
    write_timeout_s : float
        A write that cannot finish in this time counts as a lost port.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        *,
        read_slice_s: float = 0.1,
        write_timeout_s: float = 10.0,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.read_slice_s = read_slice_s
        self.write_timeout_s = write_timeout_s
        self._serial: serial.Serial | None = None
        self._buffer = bytearray()

    @property
    def name(self) -> str:
        """The device path or URL."""
        return self.port

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open the port.

        Raises
        ------
        doseprint.errors.PortOpenError
            The device does not exist, is busy or not permitted, or the URL is invalid.
        """
        if self._serial is not None:
            return
        local_device = "://" not in self.port
        with map_exceptions(
            {
                serial.SerialException: self._open_error,
                OSError: self._open_error,
                ValueError: self._open_error,
            }
        ):
            if local_device and os.name == "posix":
                port = serial.serial_for_url(
                    self.port,
                    baudrate=self.baudrate,
                    timeout=self.read_slice_s,
                    write_timeout=self.write_timeout_s,
                    exclusive=True,
                )
            else:
                port = serial.serial_for_url(
                    self.port,
                    baudrate=self.baudrate,
                    timeout=self.read_slice_s,
                    write_timeout=self.write_timeout_s,
                )
        self._serial = port
        self._buffer.clear()
        logger.info("opened %s at %d baud", self.port, self.baudrate)

    def readline(self, timeout_s: float) -> str | None:
        """Block until a whole line arrives or ``timeout_s`` passes.

        Parameters
        ----------
        timeout_s : float
            Longest wait, s; 0 returns a line only if one is already buffered.

        Returns
        -------
        str or None
            The line without its ending (undecodable bytes replaced), or None on timeout.
            A partial line stays buffered for the next call.

        Raises
        ------
        doseprint.errors.PrintFailedError
            The port went away (cable pulled, printer switched off, socket closed).
        """
        port = self._require_open()
        line = self._take_line()
        if line is not None or timeout_s <= 0:
            return line
        deadline = time.monotonic() + timeout_s
        while True:
            # Plain try/except rather than map_exceptions: this runs for every reply.
            try:
                # Blocks for up to read_slice_s for the first byte, then takes what is waiting.
                chunk = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise self._lost(exc) from exc
            self._buffer += chunk
            line = self._take_line()
            if line is not None:
                return line
            if time.monotonic() >= deadline:
                return None

    def write(self, line: str) -> None:
        """Send one line followed by ``\\n``.

        Raises
        ------
        doseprint.errors.PrintFailedError
            The port went away or the write timed out.
        """
        port = self._require_open()
        try:
            port.write(f"{line}\n".encode())
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from exc

    def close(self) -> None:
        """Close the port (best effort: errors on closing are logged, not raised)."""
        port, self._serial = self._serial, None
        if port is None:
            return
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:
            logger.warning("closing %s failed: %s", self.port, exc)
        # pyserial's socket:// close() shuts the socket down first and, when the printer
        # has already hung up, fails before closing it: close what is left ourselves.
        sock = getattr(port, "_socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # Helpers

    def _require_open(self) -> serial.Serial:
        if self._serial is None:
            raise PrintFailedError(f"the printer port {self.port!r} is not open")
        return self._serial

    def _take_line(self) -> str | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return raw.decode("utf-8", errors="replace").rstrip("\r")

    def _open_error(self, exc: Exception) -> DoseprintError:
        return PortOpenError(
            f"cannot open the printer port {self.port!r}: {exc}",
            hint="check that the printer is switched on and plugged in, that the port name is "
            "right (`python -m serial.tools.list_ports` lists them) and that no other program "
            "(OctoPrint, Pronterface, a slicer) holds it; on Linux your user needs the "
            "'dialout' group",
        )

    def _lost(self, exc: Exception) -> DoseprintError:
        return PrintFailedError(
            f"lost the connection to the printer on {self.port!r}: {exc}",
            hint="check the USB cable and the printer's power; the batch record shows how far "
            "the print got and these tablets cannot be released",
        )


class Responder(Protocol):
    """Something that answers host lines like a printer (:class:`~.virtual.VirtualMarlin`)."""

    def connect(self) -> Iterable[str]:
        """Begin a session; return the greeting (``start`` …)."""
        ...

    def feed(self, raw: str) -> Iterable[str]:
        """Take one host line; return the reply lines."""
        ...


class LoopbackTransport:
    """An in-memory link to a simulated printer, for tests and dry runs.

    Every written line is handed to the printer at once and its replies are queued for
    ``readline``. When the queue is empty nothing can arrive until the next write, so
    ``readline`` sleeps its whole timeout and returns None, keeping the blocking contract
    of a real port.

    Parameters
    ----------
    printer : Responder
        Usually a :class:`~doseprint.comms.virtual.VirtualMarlin`.
    name : str
        Shown in messages.
    """

    def __init__(self, printer: Responder, *, name: str = "loopback") -> None:
        self.printer = printer
        self._name = name
        self._replies: deque[str] = deque()
        self._open = False

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Connect: the printer's greeting is queued as a reset board's would be."""
        if self._open:
            return
        self._open = True
        self._replies.extend(self.printer.connect())

    def readline(self, timeout_s: float) -> str | None:
        """The next queued reply, or None after sleeping ``timeout_s`` if there is none."""
        self._check_open()
        if self._replies:
            return self._replies.popleft()
        time.sleep(max(timeout_s, 0.0))
        return None

    def write(self, line: str) -> None:
        """Hand one line to the printer and queue all its replies."""
        self._check_open()
        self._replies.extend(self.printer.feed(line))

    def close(self) -> None:
        """Disconnect; queued replies are dropped."""
        self._open = False
        self._replies.clear()

    def _check_open(self) -> None:
        if not self._open:
            raise PrintFailedError(f"the link {self._name!r} is closed")
