"""``doseprint virtual-printer``: a simulated Marlin printer, with faults on request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from doseprint.cli.options import FiniteFloatRange
from doseprint.comms.virtual import FAULT_OPTIONS, Faults, run_virtual_printer

F = TypeVar("F", bound=Callable[..., Any])


def _fault_options(func: F) -> F:
    """One option per field of the virtual printer's Faults, which declares them."""
    for name, option in reversed(FAULT_OPTIONS.items()):
        flag = "--" + name.replace("_", "-")
        if option.default is None:  # a count: every Nth line, or after N lines
            func = click.option(flag, type=click.IntRange(min=1), default=None,
                                help=option.metadata["help"])(func)
        else:  # a duration
            func = click.option(flag, type=FiniteFloatRange(min=0.0), default=option.default,
                                show_default=True, help=option.metadata["help"])(func)
    return func


@click.command("virtual-printer")
@click.option("--pty", "use_pty", is_flag=True,
              help="Serve on a new pseudo-terminal; its path is the first line printed.")
@click.option("--tcp", "tcp_port", type=click.IntRange(1, 65535), default=None,
              help="Serve on this TCP port of 127.0.0.1 (connect with socket://127.0.0.1:PORT).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every accepted command to this file, one per line.")
@_fault_options
@click.option("--heat-rate", "heat_rate_c_s", type=FiniteFloatRange(min=0.1), default=1000.0,
              show_default=True, help="Heating speed of the simulated heaters, °C/s.")
@click.option("--extrude-min-temp", "extrude_min_temp_c", type=FiniteFloatRange(min=0.0),
              default=170.0, show_default=True,
              help="The firmware's minimum extrusion temperature, °C (Marlin's "
                   "EXTRUDE_MINTEMP; M302 S<t> changes it at run time).")
@click.option("--advanced-ok", is_flag=True,
              help="Report Cap:ADVANCED_OK:1 and free slots in every ok (ok N12 P15 B3).")
@click.option("--buffer-lines", "rx_buffer_lines", type=click.IntRange(1, 64), default=4,
              show_default=True, help="Command queue slots (Marlin's BUFSIZE).")
def virtual_printer_cmd(
    use_pty: bool, tcp_port: int | None, log_path: Path | None, heat_rate_c_s: float,
    extrude_min_temp_c: float, advanced_ok: bool, rx_buffer_lines: int, **fault_options: Any,
) -> None:
    """Run a simulated Marlin printer until interrupted (Ctrl-C or SIGTERM).

    \b
    Example:
      doseprint virtual-printer --tcp 5555 --log accepted.gcode
      doseprint virtual-printer --pty        # prints e.g. /dev/pts/7
      doseprint virtual-printer --tcp 5555 --drop-ok-every 50 --halt-after 2000
    """
    if use_pty == (tcp_port is not None):
        raise click.UsageError("give exactly one of --pty or --tcp PORT")
    faults = Faults.from_options(fault_options)
    options: dict[str, Any] = {
        "faults": faults, "heat_rate_c_s": heat_rate_c_s,
        "extrude_min_temp_c": extrude_min_temp_c, "advanced_ok": advanced_ok,
        "rx_buffer_lines": rx_buffer_lines,
    }
    if use_pty:
        run_virtual_printer("pty", log_path=log_path, **options)
    else:
        run_virtual_printer("tcp", port=tcp_port, log_path=log_path, **options)
