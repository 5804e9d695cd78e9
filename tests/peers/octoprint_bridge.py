"""Put OctoPrint's virtual printer on a pseudo-terminal, for doseprint to print to.

Run with the peers' interpreter (never doseprint's)::

    .venv-peers/bin/python tests/peers/octoprint_bridge.py CONFIG.json

The first line of stdout is the device path to open. Bytes the host writes to the
pseudo-terminal are handed line by line to ``VirtualPrinter.write``; lines
``VirtualPrinter.readline`` returns are written back. The printer's settings are the
plugin's own defaults (``octoprint/plugins/virtual_printer/__init__.py``,
``get_settings_defaults``) with the config's ``settings`` laid over them.

Faults of the printer are the printer's own settings (``simulated_errors``,
``resend_ratio``, ``sendBusy`` …) and its ``!!DEBUG:`` commands (``inject_after`` writes
one to the printer after a numbered line, as if the host had sent it). Faults of the wire
are the bridge's: ``drop_host`` loses the first arrival of a numbered line, ``corrupt_host``
flips one bit of it, ``drop_ok`` and ``corrupt_ok`` lose or garble the ``ok`` answering a
numbered line (its first arrival).

Every command the printer runs is appended to ``log`` as it reaches the printer's command
dispatch (``VirtualPrinter.command_regex.match``, called once per command that passed the
line-number and checksum checks), so a test can prove what ran, in order.

SIGTERM or SIGINT ends the bridge; so does the printer dropping the connection, which
closes the pseudo-terminal as an unplugged USB printer would.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import tty
from pathlib import Path
from typing import Any

NUMBERED = re.compile(rb"^N(\d+)\s")


class Settings:
    """The subset of OctoPrint's plugin settings API the virtual printer calls."""

    def __init__(self, values: dict[str, Any], basefolder: str) -> None:
        self.values = values
        self.basefolder = basefolder

    def get(self, path: list[str], merged: bool = False) -> Any:
        value: Any = self.values
        for key in path:
            value = value[key]
        return value

    def get_int(self, path: list[str]) -> int:
        return int(self.get(path))

    def get_float(self, path: list[str]) -> float:
        return float(self.get(path))

    def get_boolean(self, path: list[str]) -> bool:
        return bool(self.get(path))

    def global_get_basefolder(self, name: str) -> str:
        folder = Path(self.basefolder) / name
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)


class NoProfiles:
    def get_current_or_default(self) -> dict[str, Any]:
        return {}


class NoHooks:
    def get_hooks(self, name: str) -> dict[str, Any]:
        return {}


class LoggingRegex:
    """Stands in for ``VirtualPrinter.command_regex``: logs each command it is asked to
    match (every command the printer runs), then matches as the original does."""

    def __init__(self, pattern: re.Pattern[str], log: Path | None) -> None:
        self.pattern = pattern
        self.log = log.open("a", encoding="utf-8") if log is not None else None
        self.lock = threading.Lock()

    def match(self, data: str) -> re.Match[str] | None:
        if self.log is not None:
            with self.lock:
                self.log.write(data.strip() + "\n")
                self.log.flush()
        return self.pattern.match(data)


def merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def flip(line: bytes) -> bytes:
    """One bit of the command's last character flipped: the checksum no longer matches."""
    body, star, tail = line.rpartition(b"*")
    if not star or not body:
        return line
    return body[:-1] + bytes([body[-1] ^ 1]) + star + tail


def main() -> None:
    # This folder holds the tests' own modules; none of them may shadow OctoPrint's.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from octoprint.plugins.virtual_printer import VirtualPrinterPlugin, virtual

    config = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING)
    data_folder = tempfile.mkdtemp(prefix="octoprint-vp-")
    defaults = VirtualPrinterPlugin().get_settings_defaults()
    values = merged(defaults, config.get("settings", {}))
    if values.get("pinnedExtruders"):
        values["pinnedExtruders"] = {int(k): v for k, v in values["pinnedExtruders"].items()}
    log = Path(config["log"]) if config.get("log") else None
    virtual.plugin_manager = NoHooks  # no plugin hooks: the printer runs alone
    virtual.VirtualPrinter.command_regex = LoggingRegex(  # type: ignore[assignment]
        virtual.VirtualPrinter.command_regex, log
    )
    printer = virtual.VirtualPrinter(
        Settings(values, data_folder), NoProfiles(), data_folder=data_folder,
        read_timeout=0.05, faked_baudrate=115200,
    )

    drop_host = {int(n) for n in config.get("drop_host", [])}
    corrupt_host = {int(n) for n in config.get("corrupt_host", [])}
    drop_ok = {int(n) for n in config.get("drop_ok", [])}
    corrupt_ok = {int(n) for n in config.get("corrupt_ok", [])}
    inject_after = {int(n): text for n, text in config.get("inject_after", {}).items()}

    master, slave = os.openpty()
    tty.setraw(slave)
    sys.stdout.write(os.ttyname(slave) + "\n")
    sys.stdout.flush()

    stop = threading.Event()
    state = {"last_numbered": -1}
    lock = threading.Lock()

    def hang_up() -> None:
        if not stop.is_set():
            stop.set()
            os.close(master)  # the host's reads fail: the link is gone

    def write_all(data: bytes) -> None:
        # VirtualPrinter.write takes what fits in its receive buffer (rxBuffer, 64 bytes)
        # and says how much; a serial port's driver holds the rest until there is room.
        while data:
            written = printer.write(data)
            data = data[written:]

    def host_to_printer() -> None:
        buffer = b""
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                number = NUMBERED.match(line)
                n = int(number.group(1)) if number else None
                if n is not None and n in drop_host:
                    drop_host.discard(n)
                    continue  # lost on the wire
                if n is not None and n in corrupt_host:
                    corrupt_host.discard(n)
                    line = flip(line)
                if n is not None:
                    with lock:
                        state["last_numbered"] = n
                try:
                    write_all(line + b"\n")
                    if n is not None and n in inject_after:
                        write_all(inject_after.pop(n).encode() + b"\n")
                except Exception:  # the printer dropped the connection
                    hang_up()
                    return

    def printer_to_host() -> None:
        while not stop.is_set():
            try:
                line = printer.readline()
            except Exception:  # the printer dropped the connection
                hang_up()
                return
            if not line:
                continue
            if line.startswith(b"ok"):
                with lock:
                    n = state["last_numbered"]
                if n in drop_ok:
                    drop_ok.discard(n)
                    continue
                if n in corrupt_ok:
                    corrupt_ok.discard(n)
                    line = b"o#k" + line[2:]
            try:
                os.write(master, line if line.endswith(b"\n") else line + b"\n")
            except OSError:
                return

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=f, daemon=True) for f in (host_to_printer, printer_to_host)]
    for thread in threads:
        thread.start()
    while not stop.wait(0.2):
        pass
    printer.close()
    os._exit(0)  # the printer's own threads are not daemons


if __name__ == "__main__":
    main()
