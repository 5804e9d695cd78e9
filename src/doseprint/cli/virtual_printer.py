"""``doseprint virtual-printer``: a simulated Marlin printer, with faults on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from doseprint.comms.virtual import Faults, run_virtual_printer


@click.command("virtual-printer")
@click.option("--pty", "use_pty", is_flag=True,
              help="Serve on a new pseudo-terminal; its path is the first line printed.")
@click.option("--tcp", "tcp_port", type=click.IntRange(1, 65535), default=None,
              help="Serve on this TCP port of 127.0.0.1 (connect with socket://127.0.0.1:PORT).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every accepted command to this file, one per line.")
@click.option("--resend-every", type=click.IntRange(min=1), default=None,
              help="Fault: ask for a resend of every Nth line, as after a corrupted checksum.")
@click.option("--drop-ok-every", type=click.IntRange(min=1), default=None,
              help="Fault: run every Nth line but never send its ok.")
@click.option("--corrupt-ok-every", type=click.IntRange(min=1), default=None,
              help="Fault: answer every Nth line with a garbled ok.")
@click.option("--busy-every", type=click.IntRange(min=1), default=None,
              help="Fault: report busy before answering every Nth line.")
@click.option("--busy-s", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
              help="How long each busy spell lasts, seconds.")
@click.option("--halt-after", type=click.IntRange(min=1), default=None,
              help="Fault: halt with a firmware error after N lines.")
@click.option("--disconnect-after", type=click.IntRange(min=1), default=None,
              help="Fault: drop the connection after N lines.")
@click.option("--reset-after", type=click.IntRange(min=1), default=None,
              help="Fault: reset like a rebooting board after N lines.")
@click.option("--hang-after", type=click.IntRange(min=1), default=None,
              help="Fault: stop answering (link kept open) after N lines.")
@click.option("--heat-rate", "heat_rate_c_s", type=click.FloatRange(min=0.1), default=1000.0,
              show_default=True, help="Heating speed of the simulated heaters, °C/s.")
@click.option("--extrude-min-temp", "extrude_min_temp_c", type=click.FloatRange(min=0.0),
              default=170.0, show_default=True,
              help="The firmware's minimum extrusion temperature, °C (Marlin's "
                   "EXTRUDE_MINTEMP; M302 S<t> changes it at run time).")
@click.option("--advanced-ok", is_flag=True,
              help="Report Cap:ADVANCED_OK:1 and free slots in every ok (ok N12 P15 B3).")
@click.option("--buffer-lines", "rx_buffer_lines", type=click.IntRange(1, 64), default=4,
              show_default=True, help="Command queue slots (Marlin's BUFSIZE).")
def virtual_printer_cmd(
    use_pty: bool, tcp_port: int | None, log_path: Path | None, resend_every: int | None,
    drop_ok_every: int | None, corrupt_ok_every: int | None, busy_every: int | None,
    busy_s: float, halt_after: int | None, disconnect_after: int | None,
    reset_after: int | None, hang_after: int | None, heat_rate_c_s: float,
    extrude_min_temp_c: float, advanced_ok: bool, rx_buffer_lines: int,
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
    faults = Faults(
        resend_every=resend_every, drop_ok_every=drop_ok_every,
        corrupt_ok_every=corrupt_ok_every, busy_every=busy_every, busy_s=busy_s,
        halt_after=halt_after, disconnect_after=disconnect_after, reset_after=reset_after,
        hang_after=hang_after,
    )
    options: dict[str, Any] = {
        "faults": faults, "heat_rate_c_s": heat_rate_c_s,
        "extrude_min_temp_c": extrude_min_temp_c, "advanced_ok": advanced_ok,
        "rx_buffer_lines": rx_buffer_lines,
    }
    if use_pty:
        run_virtual_printer("pty", log_path=log_path, **options)
    else:
        run_virtual_printer("tcp", port=tcp_port, log_path=log_path, **options)
