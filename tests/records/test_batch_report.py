"""The HTML batch report: what it must show, and that it stays self-contained."""

from __future__ import annotations

import re
from typing import Any

import pytest

from doseprint.records.batch_report import (
    BEYOND_USE_PLACEHOLDER,
    LOG_TAIL,
    render_batch_report,
)
from doseprint.records.export import record_from_json, record_to_json
from doseprint.records.qc import qc_event_data
from doseprint.records.states import EVENT_KINDS
from doseprint.records.store import RecordStore
from doseprint.records.values import Record

from .qc_helpers import extend, full_content


def _entries(first: int, last: int) -> list[dict[str, Any]]:
    out = []
    for n in range(first, last + 1):
        out.append({"t_s": n * 0.01, "kind": "sent", "n": n, "text": f"G1 X{n}", "utc": "u"})
        out.append({"t_s": n * 0.01, "kind": "ok", "n": n, "text": "ok", "utc": "u"})
    return out


def _completed(store: RecordStore, content: dict[str, Any] | None = None) -> Record:
    record_id = store.create(content or full_content(), actor="Ana Operator")
    store.append(record_id, "started", {"port": "p", "commands_total": 40}, "Ana Operator")
    store.append(record_id, "firmware", {"lines": ["FIRMWARE_NAME:Marlin 2.1.2.4"]}, "Ana")
    store.append(record_id, "lines", {"entries": _entries(1, 20), "last_acked": 20}, "Ana")
    store.append(record_id, "lines", {"entries": _entries(21, 40), "last_acked": 40}, "Ana")
    store.append(
        record_id,
        "completed",
        {
            "commands_total": 40,
            "commands_acked": 40,
            "lines_sent": 41,
            "resends": 1,
            "elapsed_s": 12.5,
            "last_acked": 40,
        },
        "Ana Operator",
    )
    return store.get(record_id)


def _qc_and_release(record: Record) -> Record:
    data = qc_event_data(record, [416.0, 334.0, 250.5], by="Petra Harmacist")
    record = extend(record, "qc", data, "Petra Harmacist")
    return extend(record, "released", {"meaning": "QA release for dispensing"}, "Dr Quinn Person")


def test_completed_record_report_shows_identity_doses_lots_and_signatures(
    store: RecordStore,
) -> None:
    record = _qc_and_release(_completed(store))
    html = render_batch_report(record)
    for text in (
        record.id,
        "RX-2026-000123",
        "ab" * 32,
        "PT-7F3A",
        "cd" * 32,
        "ef" * 32,
        "125.00",
        "100.00",
        "75.00",
        "125.12",  # G-code dose
        "LOT-ABC123",
        "theophylline-hpc-30",
        "marlin-dual-175",
        "Marlin 2.1.2.4",
        "Dr Quinn Person",
        "QA release for dispensing",
        "Petra Harmacist",
        "PASSED",
        record.head_hash,
        BEYOND_USE_PLACEHOLDER,
        "Dispensing label",
        "released",
    ):
        assert text in html, text
    assert "http://" not in html
    assert "https://" not in html
    assert "<script" not in html


def test_report_lists_only_the_last_log_entries(store: RecordStore) -> None:
    html = render_batch_report(_completed(store))
    texts = re.findall(r"<code>G1 X(\d+)</code>", html)
    # 80 log entries; the last 20 are sent/ok pairs of lines 31..40
    assert len(re.findall(r"<code>", html)) == LOG_TAIL
    assert texts == [str(n) for n in range(31, 41)]
    assert "No QC recorded" in html
    assert "Not signed" in html


def test_failed_record_shows_its_error_and_last_acknowledged_line(store: RecordStore) -> None:
    record_id = store.create(full_content(), actor="Ana Operator")
    store.append(record_id, "started", {"commands_total": 400}, "Ana Operator")
    store.append(record_id, "lines", {"entries": _entries(1, 42), "last_acked": 42}, "Ana")
    store.append(
        record_id,
        "failed",
        {
            "error": "printer halted: Error:MINTEMP triggered",
            "error_type": "PrinterHaltedError",
            "last_acked": 42,
            "commands_total": 400,
        },
        "Ana Operator",
    )
    store.reject(record_id, by="Dr Quinn Person", meaning="print failed; destroyed")
    html = render_batch_report(store.get(record_id))
    assert "Error:MINTEMP triggered" in html
    assert "PrinterHaltedError" in html
    assert "<strong>42</strong>" in html
    assert "failed" in html
    assert "print failed; destroyed" in html
    assert "REJECTED" in html


def test_report_escapes_record_text(store: RecordStore) -> None:
    record = _completed(store, full_content(patient="<script>alert(1)</script>"))
    html = render_batch_report(record)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_report_of_a_sparse_record_renders(store: RecordStore) -> None:
    record_id = store.create({"prescription": {"id": "RX-1", "patient": "P"}}, actor="Ana")
    html = render_batch_report(store.get(record_id))
    assert "RX-1" in html
    assert "created" in html


@pytest.mark.parametrize(
    "with_qc",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(
                "qc" not in EVENT_KINDS, reason="the store does not read 'qc' events yet"
            ),
        ),
    ],
)
def test_exported_json_gives_the_same_report(store: RecordStore, with_qc: bool) -> None:
    record = _completed(store)
    if with_qc:
        record = _qc_and_release(record)
    again = record_from_json(record_to_json(record))
    assert render_batch_report(again) == render_batch_report(record)
