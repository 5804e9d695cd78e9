"""What several commands share: the library folder options, the record store option,
the ``--json`` option and JSON output, the weighed-mass list, and the ``doseprint``
logger."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from doseprint.cli.terminal import json_text

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
    """Write ``value`` as JSON on stdout, every character that could act on a terminal
    escaped (:func:`~doseprint.cli.terminal.json_text`)."""
    click.echo(json_text(value))


_json_requested: ContextVar[bool] = ContextVar("doseprint_json_requested", default=False)


class JsonOption(click.Option):
    """``--json``: output and, when the command fails, its error as JSON on stdout (the
    error mapping of :mod:`doseprint.cli.main` writes it, with the same exit code)."""


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _json_requested.set(True)
    return value


def json_option(help_text: str = "Machine-readable output: the result as JSON on stdout; "
                                 "a failure as a JSON error object with the same exit "
                                 "code.") -> Callable[[F], F]:
    """The ``--json`` flag (parameter ``as_json``) of every command that has one.

    Eager, so it is noted before any other option is checked: a missing or bad option of
    a command run with ``--json`` is reported as JSON too."""
    return click.option("--json", "as_json", cls=JsonOption, is_flag=True, is_eager=True,
                        callback=_note_json, help=help_text)


def start_json_request() -> None:
    """Forget any ``--json`` of an earlier run in this process (:func:`main` calls it)."""
    _json_requested.set(False)


def json_requested(exc: BaseException | None = None, argv: Sequence[str] = ()) -> bool:
    """Whether the command that ran, or failed, was given ``--json``.

    Noted by the option itself; or, for a command line click could not even parse (an
    unknown option, an option without its value), when the command it names has a
    ``--json`` option and ``argv`` holds ``--json`` before any ``--``."""
    if _json_requested.get():
        return True
    ctx = getattr(exc, "ctx", None)
    if not isinstance(ctx, click.Context):
        return False
    if not any(isinstance(p, JsonOption) for p in ctx.command.params):
        return False
    words = list(argv)
    return "--json" in (words[:words.index("--")] if "--" in words else words)


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


_MASS_SEPARATORS = re.compile(r"[\s,]+")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
MASS_LIST_EXAMPLE = '"412.1, 409.8 415.0"'


def parse_mass_list(text: str) -> tuple[float, ...]:
    """Weighed masses in mg from one text: decimal numbers separated by commas and/or
    white space (``"412.1, 409.8 415.0"``, ``412.1,409.8``). The decimal mark is a point.

    Raises
    ------
    ValueError
        No number, or one that is not a plain decimal number (text, ``nan``, ``inf``,
        ``1_000``) or not positive; the message names it and its place.
    """
    parts = [part for part in _MASS_SEPARATORS.split(text.strip()) if part]
    if not parts:
        raise ValueError("no mass given")
    masses = []
    for place, part in enumerate(parts, start=1):
        if not _DECIMAL.fullmatch(part):
            raise ValueError(f"mass {place}, {part!r}, is not a number")
        mass = float(part)
        if not math.isfinite(mass) or mass <= 0.0:
            raise ValueError(f"mass {place}, {part!r}, is not a positive finite mass")
        masses.append(mass)
    return tuple(masses)


if TYPE_CHECKING:  # click is generic in its value type from 8.4 on, not at run time before
    _MassListBase = click.ParamType[tuple[float, ...]]
else:
    _MassListBase = click.ParamType


class MassList(_MassListBase):
    """An option value holding weighed masses in mg (:func:`parse_mass_list`), converted
    to a tuple of floats; every command that takes weighed masses uses it."""

    name = "mass list"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return parse_mass_list(str(value))
        except ValueError as exc:
            self.fail(f"{exc}; give each mass in mg, numbers separated by commas or spaces, "
                      f"e.g. {MASS_LIST_EXAMPLE}", param, ctx)


MASS_LIST = MassList()


def _flatten_masses(ctx: click.Context, param: click.Parameter,
                    value: Sequence[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(mass for group in value for mass in group)


def mass_list_option(help_text: str) -> Callable[[F], F]:
    """``--mass-mg``: weighed masses in mg, as one value (``--mass-mg "412.1, 409.8
    415.0"``) or repeated (``--mass-mg 412.1 --mass-mg 409.8``), in the order given; the
    command receives them as one tuple of floats (empty when the option is not given)."""
    return click.option("--mass-mg", "masses", type=MASS_LIST, multiple=True,
                        callback=_flatten_masses, metavar="MASSES", help=help_text)


def trailing_masses(values: Sequence[str]) -> tuple[float, ...]:
    """Masses given as further arguments after ``--mass-mg`` (``--mass-mg 641.2 638.9``,
    the older form of ``calibrate flow``), read like one ``--mass-mg`` value; a bad one
    is reported as ``--mass-mg``'s. Call it inside the command."""
    if not values:
        return ()
    ctx = click.get_current_context()
    param = next((p for p in ctx.command.params if p.name == "masses"), None)
    result: tuple[float, ...] = MASS_LIST.convert(" ".join(values), param, ctx)
    return result
