"""The doseprint command line (cli.md): a thin click layer over the stage functions,
one module per command or command group. :mod:`doseprint.cli.main` holds the group and
:func:`main`, the one place exit codes are mapped from :mod:`doseprint.errors`."""

from doseprint.cli.main import cli, main

__all__ = ["cli", "main"]
