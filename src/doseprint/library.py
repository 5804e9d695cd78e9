"""The formulation and printer libraries: shipped folders plus a site's own.

Shipped data lives in the repository's ``formulations/`` and ``printer_profiles/``; a
wheel carries them as ``doseprint/_data/…``. A site adds folders with
``DOSEPRINT_FORMULATIONS`` / ``DOSEPRINT_PRINTERS`` (``os.pathsep``-separated) and with
``--formulations DIR`` / ``--printers DIR``; a later folder overrides an id of an
earlier one (shipped, then environment, then options).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from doseprint.errors import InputError, Problem
from doseprint.models.formulation import Formulation
from doseprint.models.load import load_formulation, load_printer
from doseprint.models.printer import PrinterProfile

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (``formulations`` or ``printer_profiles``).

    Inside an installed wheel it is package data; in a source checkout (editable
    install) it is the repository's top-level folder.
    """
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"doseprint's shipped {name}/ folder is missing from {_PACKAGE}")


def _folders(env: str, extra: Sequence[Path | str], option: str) -> list[Path]:
    folders = [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]
    folders += [Path(p) for p in extra]
    problems = [
        Problem(str(folder), env if i < len(folders) - len(extra) else option,
                "is not a folder")
        for i, folder in enumerate(folders)
        if not folder.is_dir()
    ]
    if problems:
        raise InputError(problems)
    return folders


@dataclass(frozen=True)
class Library:
    """Every formulation and printer profile doseprint can use, by id."""

    formulations: dict[str, Formulation]
    printers: dict[str, PrinterProfile]

    def formulation(self, fid: str) -> Formulation:
        try:
            return self.formulations[fid]
        except KeyError:
            known = ", ".join(sorted(self.formulations))
            raise InputError(f"unknown formulation {fid!r}; known: {known}",
                             file="formulation library") from None

    def printer(self, pid: str) -> PrinterProfile:
        try:
            return self.printers[pid]
        except KeyError:
            known = ", ".join(sorted(self.printers))
            raise InputError(f"unknown printer {pid!r}; known: {known}",
                             file="--printer") from None


def load_formulations(extra: Sequence[Path | str] = ()) -> dict[str, Formulation]:
    """Every formulation, shipped first, then ``DOSEPRINT_FORMULATIONS``, then ``extra``."""
    found: dict[str, Formulation] = {}
    problems: list[Problem] = []
    folders = [shipped_dir("formulations"), *_folders("DOSEPRINT_FORMULATIONS", extra,
                                                       "--formulations")]
    for folder in folders:
        for path in sorted(folder.glob("*.toml")):
            try:
                f = load_formulation(path)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            found[f.id] = f
    if problems:
        raise InputError(problems)
    return found


def load_printers(extra: Sequence[Path | str] = ()) -> dict[str, PrinterProfile]:
    """Every printer profile, shipped first, then ``DOSEPRINT_PRINTERS``, then ``extra``."""
    shipped = shipped_dir("printer_profiles")
    found: dict[str, PrinterProfile] = {}
    problems: list[Problem] = []
    for folder in [shipped, *_folders("DOSEPRINT_PRINTERS", extra, "--printers")]:
        for path in sorted(folder.glob("*.toml")):
            try:
                p = load_printer(path, template_roots=(shipped / "templates",))
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            found[p.id] = p
    if problems:
        raise InputError(problems)
    return found


def load_library(
    formulation_dirs: Sequence[Path | str] = (), printer_dirs: Sequence[Path | str] = ()
) -> Library:
    return Library(load_formulations(formulation_dirs), load_printers(printer_dirs))
