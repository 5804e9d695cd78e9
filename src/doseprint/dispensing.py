"""What makes a job fit to print for a patient: approved formulations and good lots.

Two checks, each against the record store's site chain:

* :func:`check_dispensable`, for ``doseprint compile --dispense``: every formulation file
  the job is designed with must be a version (SHA-256) approved for dispensing
  (:mod:`doseprint.records.approvals`). Without ``--dispense`` a compile stays free:
  design work needs no approval.
* :func:`print_materials`, for ``doseprint print``, before the record is created and the
  printer contacted. In a store with accounts every tool must be given a lot that was
  received for that tool's formulation, is not blocked and has not expired on the print
  date (UTC), and the formulation version the job was compiled with must be approved. In
  a store without accounts a lot stays free text and may be left out, but a lot number
  the store knows is still refused when it is expired, blocked or of another
  formulation. It returns what each tool's ``materials`` entry of the record links of
  its lot (:meth:`doseprint.records.lots.Lot.link`).

In a store with accounts a refused print is put on record as a ``print_refused`` site
event signed by the operator, who signed in to print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from doseprint.errors import InputError, Problem
from doseprint.job.manifest import JobManifest
from doseprint.models.formulation import Formulation
from doseprint.records.approvals import (
    APPROVAL_KINDS,
    Approval,
    approval_problem,
    approvals_of,
)
from doseprint.records.lots import LOT_KINDS, find_lots, lots_of
from doseprint.records.people import is_controlled
from doseprint.records.store import RecordStore

__all__ = ["check_dispensable", "dispensing_approvals", "print_materials"]


def dispensing_approvals(store: RecordStore) -> list[Approval]:
    """Every approval on record in ``store`` (read before a compile for dispensing)."""
    return approvals_of(store.site_events(APPROVAL_KINDS))


def check_dispensable(approvals: Sequence[Approval],
                      formulations: Sequence[Formulation]) -> None:
    """Refuse formulation files whose current version is not approved for dispensing.

    Raises
    ------
    InputError
        One problem per formulation: not approved, or changed since its approval (the
        message names the id, the file's hash now and the approved one).
    """
    problems = []
    for f in formulations:
        why = approval_problem(approvals, f.id, f.sha256)
        if why is not None:
            problems.append(Problem(f.path or f.id, "--dispense", why))
    if problems:
        raise InputError(problems, hint="a quality user approves the file with `doseprint "
                                        "formulation approve ID --by USER`; compile without "
                                        "--dispense for design work")


def print_materials(store: RecordStore, job: JobManifest, job_file: str,
                    lots: Mapping[int, str]) -> dict[int, dict[str, Any]]:
    """Check the job's formulations and the lots given for its tools; what each tool's
    record entry links of its lot.

    Parameters
    ----------
    store : RecordStore
        Where the lots and approvals are; its clock gives the print date.
    job : JobManifest
        The job about to be printed.
    job_file : str
        Its ``job.json``, for messages.
    lots : mapping of int to str
        Lot numbers by tool, as :func:`doseprint.printing.parse_lots` gives them.

    Returns
    -------
    dict
        By tool: ``lot_expiry``, ``lot_supplier``, ``lot_event`` ({seq, hash}) for each
        tool whose lot the store holds.

    Raises
    ------
    InputError
        Every problem at once (see the module docstring); nothing was sent or created.
    """
    events = store.site_events((*LOT_KINDS, *APPROVAL_KINDS))
    controlled = is_controlled(events)
    known = lots_of(events)
    approvals = approvals_of(events)
    today = date.fromisoformat(store.now_utc()[:10])
    problems: list[Problem] = []
    links: dict[int, dict[str, Any]] = {}
    for tool in job.tools:
        name = f"T{tool.tool}"
        if controlled:
            why = approval_problem(approvals, tool.formulation, tool.formulation_sha256)
            if why is not None:
                problems.append(Problem(job_file, f"tools[{tool.tool}].formulation_sha256",
                                        f"{name}: {why}"))
        number = lots.get(tool.tool)
        if number is None:
            if controlled:
                problems.append(Problem("command line", "--lot",
                                        f"{name} ({tool.formulation}) has no lot: this store "
                                        f"has accounts, so every tool's lot is given, as "
                                        f"--lot {name}=LOT"))
            continue
        mine = find_lots(known, number, tool.formulation)
        if not mine:
            others = find_lots(known, number)
            if others:
                problems.append(Problem("command line", "--lot", (
                    f"{name}={number}: lot {number} is material of "
                    f"{', '.join(o.formulation for o in others)}, but {name} prints "
                    f"{tool.formulation}")))
            elif controlled:
                problems.append(Problem("command line", "--lot", (
                    f"{name}={number}: no lot {number} of {tool.formulation} was received "
                    "into this store (`doseprint lot add`)")))
            continue
        lot = mine[0]
        if lot.blocked is not None:
            problems.append(Problem("command line", "--lot", (
                f"{name}={number}: lot {number} of {tool.formulation} is blocked since "
                f"{lot.blocked['utc'][:10]} ({lot.blocked['reason']})")))
        elif lot.expired_on(today):
            problems.append(Problem("command line", "--lot", (
                f"{name}={number}: lot {number} of {tool.formulation} expired on "
                f"{lot.expiry} (today is {today})")))
        else:
            links[tool.tool] = lot.link()
    if problems:
        signer = store.signer
        if controlled and signer is not None:
            store.append_site("print_refused", {"job": job_file,
                                                "prescription": job.prescription.id,
                                                "lots": {f"T{k}": v for k, v in lots.items()},
                                                "problems": [str(p) for p in problems]},
                              signer.user_id, signer)
        on_record = "; the refusal is on record" if controlled and signer is not None else ""
        raise InputError(problems, hint=f"nothing was sent to the printer{on_record}; "
                                        "`doseprint lot list` shows the lots this store holds")
    return links
