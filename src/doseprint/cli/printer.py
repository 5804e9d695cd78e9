"""``doseprint printer``: the printer profiles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from doseprint.cli.options import echo_json, json_option, library_options
from doseprint.cli.terminal import echo_line
from doseprint.library import Library, load_printers


@click.group("printer")
def printer_group() -> None:
    """The printer profiles.

    \b
    Example:
      doseprint printer list
      doseprint printer show generic-marlin-1x175
    """


@printer_group.command("list")
@library_options
@json_option()
def printer_list(
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...], as_json: bool
) -> None:
    """List every printer profile.

    \b
    Example:
      doseprint printer list
    """
    printers = load_printers(printer_dirs)
    if as_json:
        echo_json([{"id": p.id, "name": p.name, "flavor": p.flavor, "extruders": p.extruders}
                    for p in printers.values()])
        return
    for p in sorted(printers.values(), key=lambda p: p.id):
        echo_line(f"{p.id:<28} {p.flavor:<15} {p.extruders} extruder(s)  {p.name}")


@printer_group.command("show")
@click.argument("printer_id")
@library_options
@json_option()
def printer_show(
    printer_id: str, formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Show one printer profile.

    \b
    Example:
      doseprint printer show generic-marlin-2x175
    """
    p = Library({}, load_printers(printer_dirs)).printer(printer_id)
    data = dataclasses.asdict(p)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        echo_line(f"{key}: {value}")
