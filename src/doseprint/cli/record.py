"""``doseprint record``: the batch records (list, show, verify, export, QC, release,
reject).

Every subcommand takes ``--json`` (:func:`~doseprint.cli.options.json_option`): its result
as JSON on stdout, and a failure as a JSON error object with the same exit code
(formats.md, "Command output"). Human-readable lines go out through
:func:`~doseprint.cli.terminal.echo_line`, which escapes whatever a user, a file or the
store put in them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from doseprint.cli.anchor import anchor_group, trusted_site_keys
from doseprint.cli.options import db_option, echo_json, json_option
from doseprint.cli.refusals import refusals_cmd
from doseprint.cli.signing import sign_for
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError, RecordChainError
from doseprint.job.atomic import write_file_atomic
from doseprint.job.keys import load_trust
from doseprint.records.anchor import anchor_problems, read_anchor
from doseprint.records.chain import verify_record
from doseprint.records.export import (
    event_to_json,
    export_bytes,
    export_format,
    read_exported,
    record_to_json,
)
from doseprint.records.qc import qc_event_data
from doseprint.records.states import DECISION_KINDS
from doseprint.records.store import open_store


@click.group("record")
def record_group() -> None:
    """The batch records.

    \b
    Example:
      doseprint record list
      doseprint record show 3f2a
      doseprint record verify
    """


@record_group.command("list")
@db_option
@json_option()
def record_list(db: str | None, as_json: bool) -> None:
    """List every record, newest last.

    \b
    Example:
      doseprint record list --db records.sqlite
    """
    with open_store(db) as store:
        rows = store.list_records()
    if as_json:
        echo_json([{"id": r.id, "created_utc": r.created_utc,
                     "prescription_id": r.prescription_id, "patient": r.patient,
                     "status": r.status} for r in rows])
        return
    if not rows:
        echo_line("no records")
    for r in rows:
        echo_line(f"{r.id}  {r.created_utc}  {r.status:<11}  {r.prescription_id}  {r.patient}")


@record_group.command("show")
@click.argument("record_id")
@db_option
@json_option("The whole record, losslessly, as JSON (a failure as a JSON error object).")
def record_show(record_id: str, db: str | None, as_json: bool) -> None:
    """Show one record (a unique prefix of its id is enough).

    \b
    Example:
      doseprint record show 3f2a --json
    """
    with open_store(db) as store:
        record = store.get(record_id)
    if as_json:
        echo_json(record_to_json(record))
        return
    c = record.content
    echo_line(f"record       {record.id}")
    echo_line(f"status       {record.status}")
    echo_line(f"prescription {c['prescription']['id']} (patient {c['prescription']['patient']})")
    echo_line(f"printer      {c['machine']['printer']} on {c['machine']['port']}")
    echo_line(f"operator     {c['operator']}")
    echo_line(f"started      {record.started_utc or '-'}")
    echo_line(f"ended        {record.ended_utc or '-'}")
    for m in c["materials"]:
        echo_line(f"material     T{m['tool']} {m['formulation']} lot {m['lot'] or '(not given)'}")
    for t in c["tablets"]:
        for a in t["actives"]:
            echo_line(f"tablet {t['index']:>3}   {a['api']} {a['dose_mg']:g} mg prescribed, "
                      f"{a['gcode_dose_mg']:.3f} mg in G-code; release "
                      f"{'met' if a['release']['met'] else 'NOT met'}")
    sig = record.signature
    if sig is not None:
        echo_line(f"{sig.kind:<12} by {sig.by} at {sig.utc}: {sig.meaning}")
    echo_line("events:")
    events = list(record.events)
    i = 0
    while i < len(events):
        e = events[i]
        detail = ""
        if e.kind == "lines":
            # Print-log batches are many; show each run of them as one row.
            j = i
            while j + 1 < len(events) and events[j + 1].kind == "lines":
                j += 1
            entries = sum(len(x.data.get("entries", [])) for x in events[i:j + 1])
            detail = (f"{j - i + 1} batch(es), {entries} log entries, last acknowledged line "
                      f"{events[j].data.get('last_acked')}")
            i = j
        elif e.kind in ("failed", "aborted", "interrupted"):
            detail = (f"{e.data.get('error', '')} (last acknowledged line "
                      f"{e.data.get('last_acked')})")
        elif e.kind == "completed":
            detail = (f"{e.data.get('commands_acked')} commands, {e.data.get('resends')} "
                      "resends")
        elif e.kind == "firmware":
            detail = str((e.data.get("lines") or [""])[0])[:80]
        elif e.kind in DECISION_KINDS:
            detail = str(e.data.get("meaning", ""))
        elif e.kind == "superseded":
            detail = f"by record {e.data.get('superseded_by')}: {e.data.get('reason', '')}"
        elif e.kind == "created" and isinstance(e.data.get("supersedes"), list):
            detail = (f"supersedes {', '.join(map(str, e.data['supersedes']))}: "
                      f"{e.data.get('reason', '')}")
        seq = f"{e.seq}" if events[i].seq == e.seq else f"{e.seq}-{events[i].seq}"
        echo_line(f"  {seq:>7}  {e.utc}  {e.kind:<11} {e.actor:<16} {detail}")
        i += 1
    echo_line(f"head hash    {record.head_hash}")


@record_group.command("verify")
@click.argument("record_id", required=False)
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also check the store against this signed anchor "
              "(`record anchor export`): no record or event it lists removed or changed.")
@db_option
@json_option()
def record_verify(record_id: str | None, anchor_file: Path | None, db: str | None,
                  as_json: bool) -> None:
    """Recompute the hash chain of one record, or of the whole store, and check every
    signature (people's on events and on the site chain, the site key's on sealed heads);
    exit 1 on any mismatch, naming the first record or event that does not match.
    RECORD_ID may also be a record exported as .json (`record export`): that file is
    checked instead.

    \b
    Example:
      doseprint record verify
      doseprint record verify --anchor anchors/2026-12-02.json
      doseprint record verify batch-3f2a.json
    """
    anchor = read_anchor(anchor_file) if anchor_file is not None else None
    if record_id is not None and record_id.lower().endswith(".json"):
        exported = read_exported(record_id)
        problems = verify_record(exported)
        if problems:
            raise RecordChainError("the exported record does not verify:", details=problems,
                                   hint="the file was altered after it was exported")
        if as_json:
            echo_json({"ok": True, "records_verified": 1, "problems": [], "file": record_id,
                       "record_id": exported.id})
            return
        echo_line(f"ok: {record_id}: record {exported.id} verified")
        return
    with open_store(db) as store:
        problems = store.verify(record_id, site_keys=trusted_site_keys())
        if anchor is not None:
            problems += anchor_problems(store, anchor, load_trust())
        count = 1 if record_id else len(store.list_records())
    if problems:
        raise RecordChainError("the record store does not verify:", details=problems,
                               hint="the store was altered outside doseprint; keep a copy "
                                    "and investigate before releasing anything")
    if as_json:
        echo_json({"ok": True, "records_verified": count, "problems": []})
        return
    echo_line(f"ok: {count} record(s) verified")


@record_group.command("export")
@click.argument("record_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .json (lossless record), .html or .pdf (batch report).")
@db_option
@json_option()
def record_export(record_id: str, out: Path, db: str | None, as_json: bool) -> None:
    """Write a record to a file: JSON (lossless, every event with its hashes; `verify`
    works on it) or an HTML batch report with a dispensing label (.pdf too where fpdf2
    is installed).

    \b
    Example:
      doseprint record export 3f2a --out batch-3f2a.json
    """
    fmt = export_format(out)  # before the store is opened: a bad name reads nothing
    with open_store(db) as store:
        record = store.get(record_id)
    data = export_bytes(record, fmt)
    write_file_atomic(out, data)
    if as_json:
        echo_json({"ok": True, "record_id": record.id, "file": str(out), "format": fmt,
                   "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        return
    echo_line(f"wrote {out}")


@record_group.command("qc")
@click.argument("record_id")
@click.option("--mass-mg", "masses", required=True,
              help="Weighed mass of every tablet, mg, in tablet order, comma-separated.")
@click.option("--by", required=True, help="Who weighed the tablets.")
@db_option
@json_option()
def record_qc(record_id: str, masses: str, by: str, db: str | None, as_json: bool) -> None:
    """Record the weighed mass of each tablet, judged by Ph. Eur. 2.9.5 (uniformity of
    mass), with each tablet's estimated dose. A batch that fails cannot be released.

    \b
    Example:
      doseprint record qc 3f2a --mass-mg 412.1,409.8,415.0,411.2 --by "A. Technician"
    """
    try:
        values = [float(m) for m in masses.replace(" ", "").split(",") if m]
    except ValueError:
        raise InputError(f"is {masses!r}; give numbers separated by commas",
                         file="command line", key="--mass-mg") from None
    with open_store(db) as store:
        record = store.get(record_id)
        sign_for(store, by, "qc")
        data = qc_event_data(record, values, by)
        event = store.append(record.id, "qc", data, by)
    u = data["uniformity"]
    verdict = "PASSED" if data["passed"] else "FAILED"
    if as_json:
        echo_json({"ok": True, "record_id": record.id, "passed": data["passed"],
                   "qc": event.data, "event": event_to_json(event)})
    else:
        echo_line(f"QC {verdict}: {len(values)} tablets, average {u['average_mg']:.1f} mg, "
                  f"limit ±{u['limit_pct']:g} %, {len(u['beyond_limit'])} beyond it, "
                  f"{len(u['beyond_twice_limit'])} beyond twice it (record {record.id})")
    for w in data.get("warnings", []):
        echo_line(f"warning: {w}", err=True)


def _sign(kind: str, record_id: str, by: str, meaning: str, db: str | None,
          as_json: bool, justification: str = "") -> None:
    with open_store(db) as store:
        store.resolve_id(record_id)  # an unknown id is refused before any password
        if kind == "released":
            sign_for(store, by, "release")
            event = store.release(record_id, by, meaning, justification)
        else:
            sign_for(store, by, "reject")
            event = store.reject(record_id, by, meaning)
    if as_json:
        echo_json({"ok": True, "record_id": event.record_id, "status": event.kind,
                   "by": event.actor, "utc": event.utc, "meaning": event.data["meaning"],
                   "event": event_to_json(event)})
        return
    echo_line(f"{kind} by {by} at {event.utc}: {meaning} (record {event.record_id})")


@record_group.command("release")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer: a user id in a store with accounts "
              "(the password is asked for, or read from standard input), else a printed "
              "name.")
@click.option("--meaning", required=True, help="What the signature means.")
@click.option("--justification", default="", help="Why the releaser also printed or "
              "recorded QC of this batch, where the site policy allows it at all.")
@db_option
@json_option()
def record_release(record_id: str, by: str, meaning: str, justification: str,
                   db: str | None, as_json: bool) -> None:
    """Sign a completed, QC-passed record as released for dispensing. In a store with
    accounts the releaser is a pharmacist who neither printed the batch nor recorded its
    QC (separation of duties; the site policy may allow it with a justification).

    \b
    Example:
      doseprint record release 3f2a --by bp --meaning "QA release"
    """
    _sign("released", record_id, by, meaning, db, as_json, justification)


@record_group.command("reject")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer: a user id in a store with accounts "
              "(the password is asked for, or read from standard input), else a printed "
              "name.")
@click.option("--meaning", required=True, help="Why it is rejected.")
@db_option
@json_option()
def record_reject(record_id: str, by: str, meaning: str, db: str | None,
                  as_json: bool) -> None:
    """Sign a record as rejected (not to be dispensed).

    \b
    Example:
      doseprint record reject 3f2a --by "B. Pharmacist" --meaning "print failed"
    """
    _sign("rejected", record_id, by, meaning, db, as_json)


record_group.add_command(anchor_group)
record_group.add_command(refusals_cmd)
