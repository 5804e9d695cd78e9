"""The batch report as a PDF, with its dispensing label, where fpdf2 is installed.

:func:`render_batch_report_pdf` lays out the same values as the HTML report
(:func:`~doseprint.records.batch_report.batch_report_context`) on A4 pages: status and
signatures first, then identity and hashes, what was made, materials and lots, machine,
the print, QC, the audit trail and the dispensing label. It uses the PDF core fonts, so
text outside Latin-1 is written with a close ASCII stand-in (``−`` as ``-``, ``≤`` as
``<=``) or ``?``. fpdf2 (pure Python) is optional: ``pip install 'doseprint[pdf]'``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from doseprint.errors import EnvironmentFault
from doseprint.records.batch_report import batch_report_context
from doseprint.records.values import Record

__all__ = ["pdf_available", "render_batch_report_pdf", "require_pdf"]

_STAND_INS = {
    "−": "-",
    "–": "-",
    "—": "-",
    "≤": "<=",
    "≥": ">=",
    "…": "...",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "→": "->",
    "³": "3",
    "≈": "~",
}


def pdf_available() -> bool:
    """Whether fpdf2 can be imported."""
    try:
        import fpdf  # noqa: F401
    except ImportError:
        return False
    return True


def require_pdf() -> None:
    """Check that PDF export can work, before anything is read or written.

    Raises
    ------
    EnvironmentFault
        fpdf2 is not installed (exit code 3), naming the package to install.
    """
    if not pdf_available():
        raise EnvironmentFault(
            "PDF export needs the Python package 'fpdf2', which is not installed",
            hint="Install it (pip install 'doseprint[pdf]' or 'fpdf2'), or export .html.",
        )


def _latin1(value: object) -> str:
    """Text the core fonts can show: Latin-1, with stand-ins for common symbols."""
    text = "—" if value is None or value == "" else str(value)
    out = []
    for char in text:
        char = _STAND_INS.get(char, char)
        if len(char) == 1 and ord(char) > 0xFF:
            decomposed = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore")
            char = decomposed.decode("latin-1") or "?"
        out.append(char)
    return "".join(out)


def _num(value: object, digits: int = 2) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _latin1(value)


def render_batch_report_pdf(record: Record, *, now: datetime | None = None) -> bytes:
    """The batch report of a record as a PDF document.

    Parameters
    ----------
    record : Record
        From a store or from an exported JSON file.
    now : datetime, optional
        The document's creation time (default: now), for reproducible files.

    Returns
    -------
    bytes
        A PDF (``%PDF-1.x``), A4.

    Raises
    ------
    EnvironmentFault
        fpdf2 is not installed (exit code 3).
    """
    require_pdf()
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    ctx = batch_report_context(record)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(now or datetime.now(UTC))
    pdf.set_title(_latin1(f"Batch record {ctx['record_id']}"))
    pdf.set_creator("doseprint")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    width = pdf.epw

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(width, 7, _latin1(text), border="B", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
        pdf.set_font("Helvetica", "", 9)

    def line(text: str, style: str = "", size: float = 9) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, 4.5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", "", 9)

    def table(
        header: Sequence[str] | None,
        rows: Iterable[Sequence[object]],
        widths: Sequence[float],
        size: float = 8,
    ) -> None:
        pdf.set_font("Helvetica", "", size)
        with pdf.table(
            col_widths=tuple(widths),
            width=width,
            first_row_as_headings=header is not None,
            text_align="LEFT",
            line_height=pdf.font_size * 1.6,
        ) as grid:
            if header is not None:
                head = grid.row()
                for text in header:
                    head.cell(_latin1(text))
            for values in rows:
                row = grid.row()
                for value in values:
                    row.cell(_num(value))
        pdf.set_font("Helvetica", "", 9)

    # Title, status and signatures: what a pharmacist looks for first.
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(width, 8, _latin1(f"Batch record {ctx['record_id']}"),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    line(f"Status: {str(ctx['status']).upper()}    Record created {ctx['created_utc']} (UTC)",
         "B", 11)
    heading("Signatures")
    if ctx["signatures"]:
        for s in ctx["signatures"]:
            line(f"{str(s['kind']).upper()} by {s['by']} at {s['utc']} (UTC) - meaning: "
                 f"{s['meaning']}", "B", 10)
            line(f"event hash {s['hash']}", size=7)
    else:
        line("Not signed: this batch has been neither released nor rejected.", "B")
    line(f"Head hash of the event chain ({ctx['events_total']} events):")
    line(str(ctx["head_hash"]), size=7)

    heading("Identity")
    table(None, [
        ("Record id", ctx["record_id"]),
        ("Prescription id", ctx["prescription_id"]),
        ("Prescription SHA-256", ctx["prescription_sha256"]),
        ("Patient reference", ctx["patient"]),
        ("job.json SHA-256", ctx["job_json_sha256"]),
        ("job.gcode SHA-256", ctx["job_gcode_sha256"]),
        ("Record content SHA-256", ctx["content_sha256"]),
        ("doseprint version", ctx["doseprint_version"]),
        ("Operator", ctx["operator"]),
    ], (45, 135))
    for warning in ctx["warnings"]:
        line(f"Warning from the job: {warning}", "B")

    heading("What was made")
    made: list[list[object]] = []
    for t in ctx["tablets"]:
        for a in t["actives"]:
            made.append([t["index"], t["design"], a["api"], a["tool"], a["dose_mg"],
                         a["gcode_dose_mg"], a["dose_error_pct"], a["release_kind"],
                         a["t50_h"], a["t80_h"], a["met"]])
    table(["Tablet", "Design", "API", "Tool", "Prescribed mg", "G-code mg", "Error %",
           "Release", "t50 h", "t80 h", "Met"], made,
          (11, 24, 24, 10, 18, 17, 14, 20, 14, 14, 14), size=7)

    heading("Materials and lots")
    table(["Tool", "Formulation", "API", "Material lot"],
          [[f"T{_num(m['tool'])}", m["formulation"], m["api"], m["lot"]]
           for m in ctx["materials"]], (15, 65, 50, 50))

    heading("Machine")
    machine = ctx["machine"]
    table(None, [
        ("Printer profile", machine["printer"]),
        ("Profile SHA-256", machine["printer_sha256"]),
        ("Port", machine["port"]),
        ("Firmware (M115)", "; ".join(ctx["firmware"]) or None),
        ("Print started (UTC)", ctx["started_utc"]),
        ("Print ended (UTC)", ctx["ended_utc"]),
    ], (45, 135))

    heading("The print")
    p: dict[str, Any] = ctx["print"]
    rows: list[tuple[str, object]] = [("Outcome", p["end_kind"] or "not ended")]
    if p["end_error"]:
        rows.append(("Error", p["end_error"]))
    if p["end_reason"]:
        rows.append(("Reason", p["end_reason"]))
    rows += [
        ("Commands in the job", p["commands_total"]),
        ("Lines sent", p["lines_sent"]),
        ("Last acknowledged line", p["last_acked"]),
        ("Resends", p["resends"]),
        ("Busy replies", p["busy"]),
        ("Log entries", f"{p['log_entries']} in {ctx['log_events']} log events "
                        "(full log in the JSON export)"),
    ]
    table(None, rows, (45, 135))
    for error in [*p["error_events"], *p["log_errors"]]:
        line(f"Error during the print: {error}", "B")

    heading("Quality control")
    qc = ctx["qc"]
    if qc:
        verdict = "PASSED" if qc["passed"] else "FAILED"
        line(f"{qc['method']}: {verdict} - weighed by {qc['by']} at {qc['utc']} (UTC)", "B")
        line(f"Average {_num(qc['average_mg'])} mg, limit +/-{_num(qc['limit_pct'], 1)} %")
        table(["Tablet", "Mass mg", "Designed mg", "Deviation %"],
              [[r["tablet"], r["mass_mg"], r["designed_mg"], r["deviation_pct"]]
               for r in qc["rows"]], (30, 50, 50, 50))
    else:
        line("No QC recorded: the tablets have not been weighed.", "B")

    heading("Audit trail")
    table(["Seq", "UTC", "Actor", "Event", "Hash"],
          [[a["seq"], a["utc"], a["actor"], a["kind"], str(a["hash"])[:16] + "..."]
           for a in ctx["audit"]], (12, 45, 45, 28, 50), size=7)

    # The dispensing label, in a dashed-looking box, kept on one page.
    label: list[str] = [
        f"Patient: {_latin1(ctx['patient'])}",
        f"Prescription: {_latin1(ctx['prescription_id'])}",
        f"Tablets: {len(ctx['tablets'])}",
    ]
    for t in ctx["tablets"]:
        doses = ", ".join(f"{a['api']} {_num(a['dose_mg'])} mg" for a in t["actives"])
        label.append(f"Tablet {t['index']}: {doses}")
    label += [f"Beyond-use date: {ctx['beyond_use']}", f"Status: {ctx['status']}",
              f"Record: {ctx['record_id']}"]
    height = 10 + 5 * len(label)
    if pdf.get_y() + height + 6 > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(4)
    top = pdf.get_y()
    pdf.set_dash_pattern(dash=1.5, gap=1)
    pdf.rect(pdf.l_margin, top, 110, height)
    pdf.set_dash_pattern()
    pdf.set_xy(pdf.l_margin + 3, top + 3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(100, 6, "Dispensing label", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    for text in label:
        pdf.set_x(pdf.l_margin + 3)
        pdf.cell(104, 5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
