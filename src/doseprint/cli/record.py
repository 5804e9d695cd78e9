"""``doseprint record``: the batch records (list, show, verify, export, QC and its
investigations, release, reject, anchors, refused prints).

Every subcommand takes ``--json`` (:func:`~doseprint.cli.options.json_option`): its result
as JSON on stdout, and a failure as a JSON error object with the same exit code
(formats.md, "Command output"). Human-readable lines go out through
:func:`~doseprint.cli.terminal.echo_line`, which escapes whatever a user, a file or the
store put in them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from doseprint.cli.anchor import anchor_group, trusted_site_keys
from doseprint.cli.options import (
    MASS_LIST_EXAMPLE,
    db_option,
    echo_json,
    json_option,
    mass_list_option,
)
from doseprint.cli.refusals import refusals_cmd
from doseprint.cli.signing import sign_for
from doseprint.cli.terminal import echo_line
from doseprint.errors import EXIT_RESULT, RecordChainError, ResultError
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
from doseprint.records.qc import describe_rule, qc_event_data, qc_targets
from doseprint.records.states import DECISION_KINDS, qc_standing
from doseprint.records.store import open_store
from doseprint.records.values import Event, Record


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
    echo_line(f"qc           {_qc_summary(record)}")
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
    kind_width = max([11, *(len(e.kind) for e in events)])
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
        elif e.kind == "qc":
            detail = _qc_detail(e)
        elif e.kind == "investigation_opened":
            detail = (f"of the QC of event {e.data.get('failed_qc_seq')}: "
                      f"{e.data.get('reason', '')}")
        elif e.kind == "investigation_closed":
            detail = (f"investigation of event {e.data.get('investigation_seq')}, outcome: "
                      f"{e.data.get('outcome', '')}")
        seq = f"{e.seq}" if events[i].seq == e.seq else f"{e.seq}-{events[i].seq}"
        echo_line(f"  {seq:>7}  {e.utc}  {e.kind:<{kind_width}} {e.actor:<16} {detail}")
        i += 1
    echo_line(f"head hash    {record.head_hash}")


def _qc_detail(event: Event) -> str:
    """A ``qc`` event in one line: verdict, rule, units, average."""
    uniformity = event.data.get("uniformity")
    u: dict[str, Any] = uniformity if isinstance(uniformity, dict) else {}
    verdict = "PASSED" if event.data.get("passed") is True else "FAILED"
    rule = event.data.get("rule") or u.get("rule") or "rule not recorded"
    average = u.get("average_mg")
    mean = f", average {average:.1f} mg" if isinstance(average, int | float) else ""
    return f"{verdict} ({rule}): {u.get('units_tested', '?')} tablets{mean}"


def _qc_summary(record: Record) -> str:
    """Where the record's QC stands, for `record show`."""
    standing = qc_standing(record.events)
    if standing.latest_qc_passed is None:
        text = "none yet"
    else:
        verdict = "passed" if standing.latest_qc_passed else "FAILED"
        text = f"latest {verdict} (event {standing.latest_qc_seq})"
    if standing.investigation_open:
        text += f"; investigation open (event {standing.investigation_seq})"
    return text


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
@mass_list_option("Weighed mass of every tablet, mg, in tablet order, separated by commas "
                  f"or spaces: --mass-mg {MASS_LIST_EXAMPLE}.")
@click.option("--by", default=None, help="Who weighed the tablets (needed with --mass-mg).")
@click.option("--targets", is_flag=True,
              help="Print each tablet's target mass and acceptance window, before weighing; "
                   "writes nothing.")
@db_option
@json_option()
def record_qc(record_id: str, masses: tuple[float, ...], by: str | None, targets: bool,
              db: str | None, as_json: bool) -> None:
    """Record the weighed mass of each tablet, judged for uniformity of mass with each
    tablet's estimated dose; exit 1 if the QC fails. From 20 tablets on the rule is Ph.
    Eur. 2.9.5 (at most 2 beyond the limit, none beyond twice it); below 20 every tablet
    must lie within the limit. Masses that cannot be weighings of the tablets in mg are
    refused and nothing is written. A failed QC is final: the batch cannot be released,
    and the tablets are weighed again only while an investigation is open (`record
    investigate`). --targets prints what to aim for first.

    \b
    Example:
      doseprint record qc 3f2a --targets
      doseprint record qc 3f2a --mass-mg "412.1, 409.8, 415.0, 411.2" --by "A. Technician"
    """
    if targets:
        if masses or by is not None:
            raise click.UsageError("--targets only prints the target masses; give --mass-mg "
                                   "and --by in a run of their own")
        with open_store(db) as store:
            record = store.get(record_id)
        _echo_targets(record, as_json)
        return
    if not masses:
        raise click.UsageError("give the weighed masses (--mass-mg) and who weighed them "
                               "(--by), or --targets to see the target masses first")
    if by is None:
        raise click.UsageError("Missing option '--by': who weighed the tablets")
    with open_store(db) as store:
        record = store.get(record_id)
        sign_for(store, by, "qc")
        data = qc_event_data(record, masses, by)
        # The store refuses a new QC after a failed one unless an investigation is open.
        event = store.append(record.id, "qc", data, by)
    u = data["uniformity"]
    verdict = "PASSED" if data["passed"] else "FAILED"
    if as_json:
        echo_json({"ok": data["passed"], "record_id": record.id, "record": record.id,
                   "seq": event.seq, **data, "qc": event.data, "event": event_to_json(event)})
        if not data["passed"]:
            # The result above is the one JSON document; it says the QC failed (exit 1).
            raise SystemExit(EXIT_RESULT)
    else:
        beyond = ", ".join(str(i) for i in u["beyond_limit"]) or "none"
        echo_line(f"QC {verdict}: {len(masses)} tablets, average {u['average_mg']:.1f} mg; "
                   f"tablets beyond ±{u['limit_pct']:g} %: {beyond}; beyond twice it: "
                   f"{len(u['beyond_twice_limit'])}; estimated doses "
                   f"{'within' if data['doses_within_limits'] else 'NOT within'} 85-115 % "
                   f"(record {record.id}, event {event.seq})")
        echo_line(f"rule {data['rule']}: {describe_rule(data['rule'], u['limit_pct'])}")
    for w in data.get("warnings", []):
        echo_line(f"warning: {w}", err=True)
    if not data["passed"]:
        raise ResultError(
            f"record {record.id}: QC FAILED (event {event.seq}, rule {data['rule']}); the "
            "result is recorded and the batch cannot be released",
            hint="reject the batch (`doseprint record reject ID --by NAME --meaning TEXT`), "
            "or open an investigation (`doseprint record investigate ID --by NAME --reason "
            "TEXT`) before the tablets are weighed again",
        )


def _echo_targets(record: Record, as_json: bool) -> None:
    """`record qc --targets`: each tablet's target mass and windows."""
    t = qc_targets(record)
    standing = qc_standing(record.events)
    t["new_qc_refused"] = standing.failed and not standing.investigation_open
    if as_json:
        echo_json(t)
        return
    echo_line(f"record {record.id}: weigh {t['units']} tablets, in tablet order (mg)")
    echo_line(f"rule {t['rule']}: {t['rule_text']}")
    if t["missing"]:
        echo_line(f"no designed masses in the record ({', '.join(t['missing'])}): "
                   f"{t['note']}")
    else:
        echo_line(f"{'tablet':>6}  {'target':>8}  {'window':>17}  {'dose window':>17}  "
                   f"{'refused outside':>17}")

        def span(pair: list[float]) -> str:
            return f"{pair[0]:.1f}-{pair[1]:.1f}"

        for row in t["tablets"]:
            echo_line(f"{row['tablet']!s:>6}  {row['designed_mg']:>8.1f}  "
                       f"{span(row['window_mg']):>17}  {span(row['dose_window_mg']):>17}  "
                       f"{span(row['plausible_mg']):>17}")
        echo_line(f"window: target ±{t['limit_pct']:g} %; dose window: 85-115 % of the "
                   f"target; {t['note']}")
    if t["new_qc_refused"]:
        echo_line(f"note: the latest QC (event {standing.latest_qc_seq}) failed: a new QC "
                   "is refused until an investigation is opened (`doseprint record "
                   "investigate`)")


@record_group.command("investigate")
@click.argument("record_id")
@click.option("--by", required=True, help="Who opens or closes the investigation.")
@click.option("--reason", default=None, help="Why the failed QC is investigated (to open).")
@click.option("--close", "close", is_flag=True, help="Close the open investigation.")
@click.option("--outcome", default=None, help="What the investigation found (with --close).")
@db_option
@json_option()
def record_investigate(record_id: str, by: str, reason: str | None, close: bool,
                       outcome: str | None, db: str | None, as_json: bool) -> None:
    """Open an investigation of a failed QC, or close it. While it is open the tablets
    may be weighed again (`record qc`; the failed result stays in the record) and the
    batch cannot be released; once closed, the latest QC decides.

    \b
    Example:
      doseprint record investigate 3f2a --by "Q. Person" --reason "balance not tared"
      doseprint record investigate 3f2a --close --by "Q. Person" \\
          --outcome "balance error confirmed; re-weighed, passed"
    """
    if close:
        if reason is not None or outcome is None:
            raise click.UsageError("--close takes --outcome (what was found), not --reason")
        with open_store(db) as store:
            store.resolve_id(record_id)
            sign_for(store, by, "investigate")
            event = store.close_investigation(record_id, outcome, by)
            record = store.get(event.record_id)
        if as_json:
            echo_json({"ok": True, "record_id": event.record_id, "event": event_to_json(event)})
            return
        standing = qc_standing(record.events)
        then = ("the latest QC passed: the batch may be released" if standing.latest_qc_passed
                else "the latest QC failed: the batch cannot be released; reject it")
        echo_line(f"investigation closed by {by} at {event.utc}: {outcome.strip()} (record "
                   f"{event.record_id}, event {event.seq}); {then}")
        return
    if outcome is not None or reason is None:
        raise click.UsageError("give --reason to open an investigation (or --close with "
                               "--outcome to close one)")
    with open_store(db) as store:
        store.resolve_id(record_id)
        sign_for(store, by, "investigate")
        event = store.open_investigation(record_id, reason, by)
    if as_json:
        echo_json({"ok": True, "record_id": event.record_id, "event": event_to_json(event)})
        return
    echo_line(f"investigation opened by {by} at {event.utc} of the failed QC of event "
               f"{event.data['failed_qc_seq']}: {reason.strip()} (record {event.record_id}, "
               f"event {event.seq}); the tablets may be weighed again with `doseprint record "
               "qc`")


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
