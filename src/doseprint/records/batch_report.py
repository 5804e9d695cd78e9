"""The batch report: a record made readable for the pharmacist who releases the batch.

Not to be confused with :mod:`doseprint.report`, the preview of a compiled job that a
clinician reads before anything is printed; this page is written after the print, from
the batch record.

:func:`render_batch_report` turns a :class:`~doseprint.records.values.Record` into one
self-contained HTML page (inline CSS, no scripts, no external address) that prints on A4:
identity and hashes, what was prescribed and made, materials and lots, machine and
firmware, a summary of the print log (counts and the last entries, not every line), the
QC result, status, every signature with who, when and what it means, the head hash of
the event chain, and a dispensing label.

The page is built from the record alone, so an exported JSON record gives the same page
(:func:`~doseprint.records.export.record_from_json`). Missing content keys show as "—".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jinja2

from doseprint.records.content import materials_of, tablets_of
from doseprint.records.qc import latest_qc
from doseprint.records.states import DECISION_KINDS, ENDED_KINDS, LOG_KINDS
from doseprint.records.values import Event, Record, signer_shown

__all__ = ["BEYOND_USE_PLACEHOLDER", "LOG_TAIL", "batch_report_context", "render_batch_report"]

LOG_TAIL = 20
"""How many of the last print-log entries the report lists."""

BEYOND_USE_PLACEHOLDER = "to be set by the pharmacist"

_SIGNATURE_KINDS = frozenset({*DECISION_KINDS, "superseded"})
"""Signed decisions the report shows first: a release, a rejection, and a reprint that
superseded this batch (its reason standing for the meaning)."""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("doseprint.records", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    undefined=jinja2.StrictUndefined,
)


def _fmt(value: object, digits: int = 2) -> str:
    """A number with ``digits`` decimals, text as is, None as an em dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


_ENV.filters["fmt"] = _fmt


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _tablets(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tablet in tablets_of(content):
        actives = []
        for a in tablet.actives:
            release = _map(a.get("release"))
            actives.append(
                {
                    "api": a.get("api", ""),
                    "tool": a.get("tool"),
                    "dose_mg": a.get("dose_mg"),
                    "gcode_dose_mg": a.get("gcode_dose_mg"),
                    "dose_error_pct": a.get("dose_error_pct"),
                    "release_kind": release.get("kind"),
                    "release_target": release.get("target"),
                    "t50_h": release.get("t50_h"),
                    "t80_h": release.get("t80_h"),
                    "f2": release.get("f2"),
                    "met": release.get("met"),
                }
            )
        design = tablet.design
        out.append(
            {
                "index": tablet.index,
                "design": design.get("summary") or design.get("shape") or "—",
                "volume_mm3": design.get("volume_mm3"),
                "infill": design.get("infill"),
                "layers": design.get("layers"),
                "actives": actives,
            }
        )
    return out


def _firmware(events: tuple[Event, ...]) -> list[str]:
    for event in reversed(events):
        if event.kind == "firmware":
            return [str(line) for line in _list(event.data.get("lines"))]
    for event in reversed(events):
        if event.kind == "completed":
            fw = event.data.get("firmware")
            if isinstance(fw, str) and fw:
                return [fw]
            if isinstance(fw, Mapping):
                return [f"{k}: {v}" for k, v in fw.items()]
    return []


def _print_summary(record: Record) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    tail: list[dict[str, Any]] = []
    entries_total = 0
    log_errors: list[str] = []
    for event in record.events:
        if event.kind not in LOG_KINDS:
            continue
        for entry in _list(event.data.get("entries")):
            e = _map(entry)
            kind = str(e.get("kind", ""))
            counts[kind] += 1
            entries_total += 1
            if kind in ("error", "timeout"):
                log_errors.append(str(e.get("text", "")))
            tail.append(
                {
                    "utc": e.get("utc", event.utc),
                    "kind": kind,
                    "n": e.get("n"),
                    "text": str(e.get("text", "")),
                }
            )
            if len(tail) > LOG_TAIL:
                del tail[0]
    started = next((e for e in record.events if e.kind == "started"), None)
    ended = next((e for e in reversed(record.events) if e.kind in ENDED_KINDS), None)
    end_data = _map(ended.data) if ended is not None else {}
    errors = [
        f"{e.utc} {e.actor}: {e.data.get('error') or e.data.get('message') or e.data}"
        for e in record.events
        if e.kind == "error"
    ]
    commands_total = end_data.get("commands_total")
    if commands_total is None and started is not None:
        commands_total = started.data.get("commands_total")
    lines_sent = end_data.get("lines_sent", counts.get("sent") or None)
    resends = end_data.get("resends", counts.get("resend", 0))
    return {
        "commands_total": commands_total,
        "lines_sent": lines_sent,
        "last_acked": record.last_acked
        if end_data.get("last_acked") is None
        else end_data.get("last_acked"),
        "acknowledged": counts.get("ok", 0),
        "resends": resends,
        "busy": counts.get("busy", 0),
        "temperature_reports": counts.get("temperature", 0),
        "log_entries": entries_total,
        "log_errors": log_errors,
        "error_events": errors,
        "end_kind": ended.kind if ended is not None else None,
        "end_error": end_data.get("error"),
        "end_error_type": end_data.get("error_type"),
        "end_reason": end_data.get("reason"),
        "elapsed_s": end_data.get("elapsed_s"),
        "tail": tail,
        "tail_size": LOG_TAIL,
    }


def _qc(record: Record) -> dict[str, Any] | None:
    data = latest_qc(record)
    if data is None:
        return None
    event = next(e for e in reversed(record.events) if str(e.kind) == "qc")
    uniformity = _map(data.get("uniformity"))
    masses = [float(m) for m in _list(data.get("masses_mg"))]
    designed = data.get("designed_masses_mg")
    deviations = _list(uniformity.get("deviations_pct"))
    rows = []
    for i, mass in enumerate(masses):
        rows.append(
            {
                "tablet": i,
                "mass_mg": mass,
                "designed_mg": designed[i] if isinstance(designed, list) else None,
                "deviation_pct": deviations[i] if i < len(deviations) else None,
            }
        )
    return {
        "passed": data.get("passed") is True,
        "by": signer_shown(event),
        "utc": event.utc,
        "method": data.get("method", ""),
        "average_mg": uniformity.get("average_mg"),
        "limit_pct": uniformity.get("limit_pct"),
        "units_tested": uniformity.get("units_tested"),
        "standard_sample": uniformity.get("standard_sample"),
        "note": uniformity.get("note", ""),
        "beyond_limit": _list(uniformity.get("beyond_limit")),
        "beyond_twice_limit": _list(uniformity.get("beyond_twice_limit")),
        "rows": rows,
        "estimated_doses": [_map(d) for d in _list(data.get("estimated_doses"))],
        "assumption": data.get("assumption", ""),
        "missing": _list(data.get("missing")),
        "warnings": [str(w) for w in _list(data.get("warnings"))],
        "normalised": data.get("basis") == "normalised",
    }


def batch_report_context(record: Record) -> dict[str, Any]:
    """The values the batch report template shows (for tests and other renderers).

    Parameters
    ----------
    record : Record

    Returns
    -------
    dict
        Plain values; every key the template reads is present.
    """
    content = record.content
    prescription = _map(content.get("prescription"))
    job = _map(content.get("job"))
    machine = _map(content.get("machine"))
    tablets = _tablets(content)
    materials = [
        {
            "tool": m.get("tool"),
            "formulation": m.get("formulation"),
            "api": m.get("api"),
            "formulation_sha256": m.get("formulation_sha256"),
            "lot": m.get("lot"),
        }
        for m in materials_of(content)
    ]
    signatures = [
        {
            "kind": e.kind,
            "by": signer_shown(e),
            "utc": e.utc,
            "meaning": str(e.data.get("meaning", e.data.get("reason", ""))),
            "hash": e.hash,
        }
        for e in record.events
        if e.kind in _SIGNATURE_KINDS
    ]
    audit = [
        {"seq": e.seq, "utc": e.utc, "actor": e.actor, "kind": e.kind, "hash": e.hash}
        for e in record.events
        if e.kind not in LOG_KINDS
    ]
    log_events = sum(1 for e in record.events if e.kind in LOG_KINDS)
    return {
        "record_id": record.id,
        "created_utc": record.created_utc,
        "content_sha256": record.content_sha256,
        "status": record.status,
        "head_hash": record.head_hash,
        "events_total": len(record.events),
        "log_events": log_events,
        "prescription_id": prescription.get("id", ""),
        "prescription_sha256": prescription.get("sha256"),
        "patient": prescription.get("patient", ""),
        "job_json_sha256": job.get("json_sha256"),
        "job_gcode_sha256": job.get("gcode_sha256"),
        "job_folder": job.get("folder"),
        "doseprint_version": content.get("doseprint_version"),
        "job_doseprint_version": job.get("doseprint_version"),
        "operator": content.get("operator"),
        "warnings": [str(w) for w in _list(content.get("warnings"))],
        "tablets": tablets,
        "materials": materials,
        "machine": {
            "printer": machine.get("printer"),
            "printer_sha256": machine.get("printer_sha256"),
            "port": machine.get("port"),
            "baud": machine.get("baud"),
        },
        "firmware": _firmware(record.events),
        "started_utc": record.started_utc,
        "ended_utc": record.ended_utc,
        "print": _print_summary(record),
        "qc": _qc(record),
        "signatures": signatures,
        "audit": audit,
        "beyond_use": BEYOND_USE_PLACEHOLDER,
    }


def render_batch_report(record: Record) -> str:
    """The batch report of a record as one self-contained HTML page.

    Parameters
    ----------
    record : Record
        From a store or from an exported JSON file.

    Returns
    -------
    str
        HTML5 with inline CSS; no scripts and no external address. Every text from the
        record is escaped.
    """
    return _ENV.get_template("batch_report.html.j2").render(**batch_report_context(record))
