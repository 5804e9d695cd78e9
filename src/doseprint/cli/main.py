"""The ``doseprint`` group, its commands, and :func:`main`, the one place that maps the
error hierarchy of :mod:`doseprint.errors` to exit codes (cli.md): 0 done, 1 a failed
result, 2 bad input, 3 the environment, 70 a bug.

An error is shown on stderr a line at a time, each line escaped
(:mod:`doseprint.cli.terminal`): the first line of the message, then each of its items
(``details``, or an input error's problems) on a line of its own, then the hint. The line
breaks are the ones doseprint puts between the items; a line break inside an item, such as
one in a record id or a file name the user typed, is shown as ``\\n`` and cannot start a
line of its own. A command run with ``--json`` also writes the error as a JSON object on
stdout (:func:`error_json`), with the same exit code.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, NoReturn

import click

from doseprint import __version__
from doseprint.cli.calibrate import calibrate_group
from doseprint.cli.compile import compile_cmd
from doseprint.cli.formulation import formulation_group
from doseprint.cli.gcode import gcode_group
from doseprint.cli.key import key_group
from doseprint.cli.lot import lot_group
from doseprint.cli.options import echo_json, json_requested, start_json_request
from doseprint.cli.preview import preview_cmd
from doseprint.cli.print import print_cmd
from doseprint.cli.printer import printer_group
from doseprint.cli.record import record_group
from doseprint.cli.release import release_cmd
from doseprint.cli.terminal import SafeLogFormatter, echo_line
from doseprint.cli.user import user_group
from doseprint.cli.virtual_printer import virtual_printer_cmd
from doseprint.errors import (
    EXIT_BUG,
    EXIT_INPUT,
    DoseprintError,
    InputError,
    exit_code_for,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="doseprint")
@click.option("--debug", is_flag=True, help="Show the Python traceback of any error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """doseprint: personalised tablets printed on demand.

    \b
    Example, a first job start to finish:
      doseprint compile examples/theophylline-sustained.toml \\
          --printer generic-marlin-1x175 --out job-123
      doseprint virtual-printer --tcp 5555 &
      doseprint print job-123 --port socket://127.0.0.1:5555 --operator "A. Pharmacist"
      doseprint record list
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeLogFormatter("%(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])


for _command in (compile_cmd, release_cmd, gcode_group, preview_cmd, formulation_group,
                 calibrate_group, printer_group, print_cmd, virtual_printer_cmd, record_group,
                 key_group, user_group, lot_group):
    cli.add_command(_command)


def _error_lines(exc: DoseprintError) -> list[str]:
    """The lines that tell the user about ``exc``; :func:`echo_line` escapes each."""
    if isinstance(exc, InputError):
        items = [str(p) for p in exc.problems] or [exc.message]
        lines = ([f"error: {items[0]}"] if len(items) == 1
                 else [f"error: {len(items)} problems:", *(f"  {p}" for p in items)])
        lines.append(exc.after_note)
    else:
        lines = [f"error: {exc.summary}", *(f"  {item}" for item in exc.details)]
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    return lines


def error_json(exc: BaseException) -> dict[str, Any]:
    """The ``error`` member of the JSON a failed ``--json`` command writes (formats.md):
    ``kind`` (the error's class), ``message`` (all of it, as doseprint wrote it),
    ``details`` (its items, one string each), ``problems`` (an input error's, each
    ``{file, key, message}``), ``file`` and ``key`` (of the first problem, or the option
    of a usage error) and ``hint``; absent values are null or empty."""
    error = _error(type(exc).__name__, str(exc))
    if isinstance(exc, DoseprintError):
        error.update(message=exc.message, details=list(exc.details), hint=exc.hint)
    if isinstance(exc, InputError):
        error["problems"] = [{"file": p.file, "key": p.key, "message": p.message}
                             for p in exc.problems]
        if exc.problems:
            error.update(file=exc.problems[0].file or None, key=exc.problems[0].key or None)
    elif isinstance(exc, click.ClickException):
        error.update(message=exc.format_message(), hint=_help_hint(exc) or None)
        param = getattr(exc, "param", None)
        if isinstance(param, click.Option):
            error.update(file="command line", key=max(param.opts, key=len))
        elif isinstance(param, click.Parameter):
            error.update(file="command line", key=param.human_readable_name)
    return error


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"kind": kind, "message": message, "details": [], "problems": [], "file": None,
            "key": None, "hint": None}


def _help_hint(exc: click.ClickException) -> str:
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is None or ctx.command.get_help_option(ctx) is None:
        return ""
    names = ctx.command.get_help_option_names(ctx)
    return f"Try '{ctx.command_path} {max(names, key=len)}' for help."


def _click_lines(exc: click.ClickException) -> list[str]:
    """What click's own ``show`` writes, with the message escaped like any other."""
    lines: list[str] = []
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is not None:
        lines += ctx.get_usage().splitlines()
        hint = _help_hint(exc)
        lines += [hint, ""] if hint else [""]
    return [*lines, f"Error: {exc.format_message()}"]


def _fail(code: int, lines: list[str], error: dict[str, Any], as_json: bool) -> NoReturn:
    """Tell the user (stderr, line by line, escaped), and with ``--json`` write
    ``{"ok": false, "exit_code", "error"}`` on stdout; exit ``code``."""
    for line in lines:
        echo_line(line, err=True)
    if as_json:
        echo_json({"ok": False, "exit_code": code, "error": error})
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping errors to cli.md's exit codes (the one place that does)."""
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    start_json_request()
    try:
        cli.main(args=argv, prog_name="doseprint", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(1, ["aborted."], _error("Aborted", "aborted."), json_requested())
    except click.ClickException as exc:
        _fail(exc.exit_code if exc.exit_code else EXIT_INPUT, _click_lines(exc),
              error_json(exc), json_requested(exc, args))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DoseprintError as exc:
        if debug:
            traceback.print_exc()
        _fail(exit_code_for(exc), _error_lines(exc), error_json(exc), json_requested())
    except KeyboardInterrupt:
        _fail(1, ["interrupted."], _error("Interrupted", "interrupted."), json_requested())
    except Exception:
        message = ("internal error: this is a bug in doseprint; run again with --debug "
                   "and report the traceback.")
        if debug:
            traceback.print_exc()
        _fail(EXIT_BUG, [] if debug else [message], _error("InternalError", message),
              json_requested())
    sys.exit(0)
