"""What several commands share: the library folder options, the record store option,
the ``--json`` option and JSON output, and the ``doseprint`` logger."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

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
