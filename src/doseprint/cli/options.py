"""What several commands share: the library folder options, the record store option,
JSON output and the ``doseprint`` logger."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("doseprint")


def library_options(func: F) -> F:
    """``--printers`` and ``--formulations``: extra library folders."""
    func = click.option("--printers", "printer_dirs", multiple=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Extra printer profile folder (repeatable; also "
                             "DOSEPRINT_PRINTERS).")(func)
    func = click.option("--formulations", "formulation_dirs", multiple=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Extra formulation folder (repeatable; also "
                             "DOSEPRINT_FORMULATIONS). Its ids override shipped ones.")(func)
    return func


db_option = click.option("--db", default=None,
                         help="Record store: a SQLite path or postgresql://… URL (default: "
                              "DOSEPRINT_DB, else the user's data directory).")


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf``, which click's
    range lets through (``nan`` compares false with any bound): a timeout of ``nan`` would
    never expire, and one of ``inf`` never either."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number
