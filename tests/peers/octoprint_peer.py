"""OctoPrint's virtual printer as a test peer: start it behind a pseudo-terminal, read back
what it ran.

:class:`OctoPrintPrinter` runs ``octoprint_bridge.py`` with the peers' interpreter (never
doseprint's own: OctoPrint is not importable there) and yields the device path to print to.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doseprint.gcode.motion import motion_limits, plan_commands
from doseprint.library import load_printers

from . import peer_python

BRIDGE = Path(__file__).with_name("octoprint_bridge.py")

FAST_HEAT: dict[str, Any] = {"ambientTemperature": 250.0}
"""Settings that make heating instant: every heater starts above any target, and the
printer's M109/M190 (without R) wait only while below it (``_waitForHeatup``)."""


@dataclass
class OctoPrintPrinter:
    """A running bridge: ``path`` to open, ``log`` of what the printer ran."""

    path: str
    log: Path
    process: subprocess.Popen[str]

    def ran(self) -> list[str]:
        """Every command the printer ran, in order (the handshake and probes included)."""
        if not self.log.exists():
            return []
        return self.log.read_text(encoding="utf-8").splitlines()

    def job_ran(self, host_lines: Sequence[str] = ()) -> list[str]:
        """What the printer ran less what the host sends besides the job: the handshake
        ``M115``, pings and polls (``M105``; the jobs here use none) and ``host_lines``
        (the pre-flight's probes). OctoPrint's printer takes ``M110`` before its command
        dispatch, so it is not logged."""
        skip = {"M115", "M105", *host_lines}
        return [c for c in self.ran() if c not in skip]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def octoprint_printer(tmp_path: Path, settings: dict[str, Any] | None = None,
                      **wire: Any) -> Iterator[OctoPrintPrinter]:
    """Start OctoPrint's virtual printer behind a pseudo-terminal.

    Parameters
    ----------
    tmp_path : Path
        Where the config and the log go.
    settings : dict, optional
        Laid over the plugin's default settings.
    **wire
        The bridge's wire faults and injections: ``drop_host``, ``corrupt_host``,
        ``drop_ok``, ``corrupt_ok`` (lists of line numbers), ``inject_after`` (line number
        to a ``!!DEBUG:`` command).
    """
    log = tmp_path / "octoprint-ran.log"
    config = tmp_path / "octoprint-bridge.json"
    # The plugin's default simulated_errors include "105:resend_with_timeout", which takes
    # line 105's number and then ignores the line sent again: it never runs, and no host can
    # know (see test_its_resend_with_timeout_loses_a_line_no_host_can_know_of). Off unless
    # a test asks for them.
    settings = {"simulated_errors": [], **(settings or {})}
    config.write_text(json.dumps({"settings": settings, "log": str(log), **wire}),
                      encoding="utf-8")
    process = subprocess.Popen([str(peer_python()), str(BRIDGE), str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        if not path.startswith("/dev/"):
            error = process.stderr.read() if process.stderr is not None else ""
            raise RuntimeError(f"OctoPrint's virtual printer did not start: {path!r} {error}")
        yield OctoPrintPrinter(path, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def planned_durations(commands: Sequence[str]) -> list[float]:
    """Each command's planned time, s, as ``doseprint print`` plans it for the shipped
    Marlin profile (:mod:`doseprint.gcode.motion`): the waits for each ``ok`` follow."""
    profile = load_printers(())["generic-marlin-1x175"]
    return list(plan_commands(list(commands), motion_limits(profile)).durations_s)


def tablet_gcode(roads: int = 80, road_mm: float = 10.0, tools: int = 1) -> str:
    """A job's G-code: a start section, one tablet's roads back and forth at 20 mm/s (the
    shipped profiles' print speed) with each tool in turn, a travel at 120 mm/s, and an
    end section; ``;TABLET:`` markers as doseprint writes them."""
    start = ["M140 S40", *(f"M104 T{t} S170" for t in range(tools)), "G21", "G90", "G28",
             "M190 S40", *(f"M109 T{t} S170" for t in range(tools)), "T0", "M83", "G92 E0",
             ";TABLET:NONE", "G0 X10 Y10 Z0.2 F7200", ";TABLET:0"]
    body: list[str] = []
    for i in range(roads):
        if tools > 1 and i == roads // 2:
            body += ["T1", "M109 T1 S170"]
        body.append(f"G1 X{10 + road_mm * ((i + 1) % 2):.3f} Y{10 + 0.4 * i:.3f} E0.05 F1200")
    end = [";TABLET:NONE", "G0 X100 Y100 F7200", "M400", "G91", "G1 Z5 F600", "G90",
           *(f"M104 T{t} S0" for t in range(tools)), "M140 S0", "M84"]
    return "\n".join([*start, *body, *end]) + "\n"
