"""The ``doseprint`` group, its commands, and :func:`main`, the one place that maps the
error hierarchy of :mod:`doseprint.errors` to exit codes (cli.md): 0 done, 1 a failed
result, 2 bad input, 3 the environment, 70 a bug."""

from __future__ import annotations

import logging
import sys
import traceback

import click

from doseprint import __version__
from doseprint.cli.calibrate import calibrate_group
from doseprint.cli.compile import compile_cmd
from doseprint.cli.formulation import formulation_group
from doseprint.cli.gcode import gcode_group
from doseprint.cli.key import key_group
from doseprint.cli.lot import lot_group
from doseprint.cli.preview import preview_cmd
from doseprint.cli.print import print_cmd
from doseprint.cli.printer import printer_group
from doseprint.cli.record import record_group
from doseprint.cli.release import release_cmd
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
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(message)s", stream=sys.stderr)


for _command in (compile_cmd, release_cmd, gcode_group, preview_cmd, formulation_group,
                 calibrate_group, printer_group, print_cmd, virtual_printer_cmd, record_group,
                 key_group, user_group, lot_group):
    cli.add_command(_command)


def _report(exc: DoseprintError) -> None:
    if isinstance(exc, InputError) and len(exc.problems) > 1:
        click.echo(f"error: {len(exc.problems)} problems:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
    else:
        click.echo(f"error: {exc.message}", err=True)
    if isinstance(exc, InputError):
        click.echo("nothing was written.", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping errors to cli.md's exit codes (the one place that does)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="doseprint", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_INPUT)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DoseprintError as exc:
        if debug:
            traceback.print_exc()
        _report(exc)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        click.echo("interrupted.", err=True)
        sys.exit(1)
    except Exception:
        if debug:
            traceback.print_exc()
        else:
            click.echo("internal error: this is a bug in doseprint; run again with --debug "
                       "and report the traceback.", err=True)
        sys.exit(EXIT_BUG)
    sys.exit(0)
