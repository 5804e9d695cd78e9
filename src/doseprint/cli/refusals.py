"""Refused prints on record: a ``print_refused`` site event for every print that
``doseprint print`` refuses for a reason a user can cause, and ``doseprint record
refusals`` to list them.

A *refused* print is one where nothing was attempted: no record was created and nothing
was sent (the job's seal or hashes do not match, a lot or option is wrong, the printer
profile changed, a template does not render, the dose check fails, the prescription was
printed before and no ``--supersede-reason`` was given, the operator may not supersede).
A *failed* print is one whose attempt began: its record exists and says ``failed`` (the
port would not open, the firmware refused, the printer halted). A refused sign-in is on
record already, as ``login_failed``.

The refusal goes into the store the print would have gone to, signed by the operator
when they signed in, else by this installation's site key (actor ``site``, the operator
named in the data). A store that does not exist yet is not made only to hold a refusal
(a SQLite file that is not there; a PostgreSQL URL is a store someone set up, and is
opened); a refusal that cannot be recorded (no store, no key, the store unreachable) is
logged as a warning and the refusal itself is reported as usual.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from doseprint.cli.options import db_option, echo_json, json_option
from doseprint.cli.signing import site_key_signer
from doseprint.cli.terminal import echo_line
from doseprint.errors import DoseCheckError, DoseprintError, InputError
from doseprint.job.folder import sha256_bytes
from doseprint.records.location import default_store_path, resolve_store_url
from doseprint.records.store import RecordStore, open_store

__all__ = ["REFUSALS", "record_refusal", "refusals_cmd"]

log = logging.getLogger(__name__)

REFUSALS: tuple[type[DoseprintError], ...] = (InputError, DoseCheckError)
"""What ``print`` raises when it refuses a job before anything is attempted."""

_MAX_JOB_JSON = 16 * 1024 * 1024
"""job.json larger than this is not read for the refusal's prescription id and hash."""


def refusal_data(job_dir: Path, operator: str, reason: str) -> dict[str, Any]:
    """What a ``print_refused`` event holds: the job folder's name (not its path), the
    prescription id and job.json SHA-256 where job.json reads, the operator, the reason."""
    folder = job_dir.name or job_dir.resolve().name
    data: dict[str, Any] = {"job": folder, "operator": operator.strip(), "reason": reason}
    try:
        path = job_dir / "job.json"
        if path.is_file() and path.stat().st_size <= _MAX_JOB_JSON:
            raw = path.read_bytes()
            data["job_json_sha256"] = sha256_bytes(raw)
            prescription = json.loads(raw).get("prescription")
            if isinstance(prescription, dict) and isinstance(prescription.get("id"), str):
                data["prescription_id"] = prescription["id"]
    except (OSError, ValueError, AttributeError, RecursionError):
        pass  # an unreadable job is what was refused; the reason says so
    return data


def _existing_store(db: str | None) -> RecordStore | None:
    """The store ``db`` names when it exists (a PostgreSQL URL always does), else None."""
    if not (db or "").strip() and not os.environ.get("DOSEPRINT_DB", "").strip():
        if not default_store_path().exists():
            return None
    else:
        _, target = resolve_store_url(db)
        if target == ":memory:" or (not target.startswith("postgresql://")
                                    and not Path(target).exists()):
            return None
    return open_store(db)


def record_refusal(job_dir: Path, operator: str, refusal: DoseprintError, *,
                   store: RecordStore | None = None, db: str | None = None) -> None:
    """Write a ``print_refused`` site event for ``refusal``; log why when it cannot be.

    Parameters
    ----------
    store : RecordStore, optional
        The store the print opened (signed in or not); else ``db`` is opened if it exists.
    """
    data = refusal_data(job_dir, operator, refusal.message)
    try:
        if store is not None:
            _append(store, data)
            return
        opened = _existing_store(db)
        if opened is None:
            log.warning("the refused print is not on record: there is no record store yet")
            return
        with opened:
            _append(opened, data)
    except DoseprintError as exc:
        log.warning("the refused print could not be recorded: %s", exc.message)


def _append(store: RecordStore, data: dict[str, Any]) -> None:
    if not store.durable:
        return  # nothing kept once closed: :memory: is refused for printing anyway
    signer = store.signer
    if signer is None or signer.user_id != data["operator"]:
        signer = site_key_signer()
    if signer is None:
        log.warning("the refused print is not on record: this installation has no site key "
                    "to sign it with (`doseprint key init`)")
        return
    store.append_site("print_refused", data, signer.user_id, signer)
    log.info("the refusal is on record (`doseprint record refusals`)")


@click.command("refusals")
@db_option
@json_option()
def refusals_cmd(db: str | None, as_json: bool) -> None:
    """List the prints that were refused (nothing sent, no batch record made), oldest
    first: when, the operator, the job folder, the prescription and why.

    \b
    Example:
      doseprint record refusals --db records.sqlite
    """
    with open_store(db) as store:
        events = store.site_events(("print_refused",))
    rows = [{"seq": e.seq, "utc": e.utc, "signed_by": e.actor,
             "operator": e.data.get("operator", ""), "job": e.data.get("job", ""),
             "prescription_id": e.data.get("prescription_id", ""),
             "job_json_sha256": e.data.get("job_json_sha256", ""),
             "reason": e.data.get("reason", "")} for e in events]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo_line("no refused prints")
    for r in rows:
        first, *more = str(r["reason"]).splitlines() or [""]
        echo_line(f"{r['utc']}  {r['operator'] or '-'}  {r['job'] or '-'}  "
                  f"{r['prescription_id'] or '-'}  {first}")
        for line in more:
            echo_line(f"    {line}")
