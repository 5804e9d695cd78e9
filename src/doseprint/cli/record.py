"""``doseprint record``: the batch records (list, show, verify, export, QC, release,
reject)."""

from __future__ import annotations

from pathlib import Path

import click

from doseprint.cli.options import MASS_LIST_EXAMPLE, db_option, echo_json, mass_list_option
from doseprint.errors import RecordChainError
from doseprint.job.atomic import write_file_atomic
from doseprint.records.chain import verify_record
from doseprint.records.export import export_bytes, export_format, read_exported, record_to_json
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
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
        click.echo("no records")
    for r in rows:
        click.echo(f"{r.id}  {r.created_utc}  {r.status:<11}  {r.prescription_id}  {r.patient}")


@record_group.command("show")
@click.argument("record_id")
@db_option
@click.option("--json", "as_json", is_flag=True, help="The whole record, losslessly.")
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
    click.echo(f"record       {record.id}")
    click.echo(f"status       {record.status}")
    click.echo(f"prescription {c['prescription']['id']} (patient {c['prescription']['patient']})")
    click.echo(f"printer      {c['machine']['printer']} on {c['machine']['port']}")
    click.echo(f"operator     {c['operator']}")
    click.echo(f"started      {record.started_utc or '-'}")
    click.echo(f"ended        {record.ended_utc or '-'}")
    for m in c["materials"]:
        click.echo(f"material     T{m['tool']} {m['formulation']} lot {m['lot'] or '(not given)'}")
    for t in c["tablets"]:
        for a in t["actives"]:
            click.echo(f"tablet {t['index']:>3}   {a['api']} {a['dose_mg']:g} mg prescribed, "
                       f"{a['gcode_dose_mg']:.3f} mg in G-code; release "
                       f"{'met' if a['release']['met'] else 'NOT met'}")
    sig = record.signature
    if sig is not None:
        click.echo(f"{sig.kind:<12} by {sig.by} at {sig.utc}: {sig.meaning}")
    click.echo("events:")
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
        seq = f"{e.seq}" if events[i].seq == e.seq else f"{e.seq}-{events[i].seq}"
        click.echo(f"  {seq:>7}  {e.utc}  {e.kind:<11} {e.actor:<16} {detail}")
        i += 1
    click.echo(f"head hash    {record.head_hash}")


@record_group.command("verify")
@click.argument("record_id", required=False)
@db_option
def record_verify(record_id: str | None, db: str | None) -> None:
    """Recompute the hash chain of one record, or of the whole store; exit 1 on any
    mismatch, naming the first record or event that does not match. RECORD_ID may also
    be a record exported as .json (`record export`): that file is checked instead.

    \b
    Example:
      doseprint record verify
      doseprint record verify batch-3f2a.json
    """
    if record_id is not None and record_id.lower().endswith(".json"):
        exported = read_exported(record_id)
        problems = verify_record(exported)
        if problems:
            raise RecordChainError("the exported record does not verify:\n  "
                                   + "\n  ".join(problems),
                                   hint="the file was altered after it was exported")
        click.echo(f"ok: {record_id}: record {exported.id} verified")
        return
    with open_store(db) as store:
        problems = store.verify(record_id)
        count = 1 if record_id else len(store.list_records())
    if problems:
        raise RecordChainError("the record store does not verify:\n  " + "\n  ".join(problems),
                               hint="the store was altered outside doseprint; keep a copy "
                                    "and investigate before releasing anything")
    click.echo(f"ok: {count} record(s) verified")


@record_group.command("export")
@click.argument("record_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .json (lossless record), .html or .pdf (batch report).")
@db_option
def record_export(record_id: str, out: Path, db: str | None) -> None:
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
    click.echo(f"wrote {out}")


@record_group.command("qc")
@click.argument("record_id")
@mass_list_option("Weighed mass of every tablet, mg, in tablet order, separated by commas "
                  f"or spaces: --mass-mg {MASS_LIST_EXAMPLE}.")
@click.option("--by", required=True, help="Who weighed the tablets.")
@db_option
def record_qc(record_id: str, masses: tuple[float, ...], by: str, db: str | None) -> None:
    """Record the weighed mass of each tablet, judged by Ph. Eur. 2.9.5 (uniformity of
    mass), with each tablet's estimated dose. A batch that fails cannot be released.

    \b
    Example:
      doseprint record qc 3f2a --mass-mg "412.1, 409.8, 415.0, 411.2" --by "A. Technician"
    """
    if not masses:
        raise click.UsageError("Missing option '--mass-mg': the weighed masses")
    values = list(masses)
    with open_store(db) as store:
        record = store.get(record_id)
        data = qc_event_data(record, values, by)
        store.append(record.id, "qc", data, by)
    u = data["uniformity"]
    verdict = "PASSED" if data["passed"] else "FAILED"
    click.echo(f"QC {verdict}: {len(values)} tablets, average {u['average_mg']:.1f} mg, limit "
               f"±{u['limit_pct']:g} %, {len(u['beyond_limit'])} beyond it, "
               f"{len(u['beyond_twice_limit'])} beyond twice it (record {record.id})")
    for w in data.get("warnings", []):
        click.echo(f"warning: {w}", err=True)


def _sign(kind: str, record_id: str, by: str, meaning: str, db: str | None) -> None:
    with open_store(db) as store:
        if kind == "released":
            event = store.release(record_id, by, meaning)
        else:
            event = store.reject(record_id, by, meaning)
    click.echo(f"{kind} by {by} at {event.utc}: {meaning} (record {event.record_id})")


@record_group.command("release")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer's printed name.")
@click.option("--meaning", required=True, help="What the signature means.")
@db_option
def record_release(record_id: str, by: str, meaning: str, db: str | None) -> None:
    """Sign a completed record as released for dispensing.

    \b
    Example:
      doseprint record release 3f2a --by "B. Pharmacist" --meaning "QA release"
    """
    _sign("released", record_id, by, meaning, db)


@record_group.command("reject")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer's printed name.")
@click.option("--meaning", required=True, help="Why it is rejected.")
@db_option
def record_reject(record_id: str, by: str, meaning: str, db: str | None) -> None:
    """Sign a record as rejected (not to be dispensed).

    \b
    Example:
      doseprint record reject 3f2a --by "B. Pharmacist" --meaning "print failed"
    """
    _sign("rejected", record_id, by, meaning, db)
