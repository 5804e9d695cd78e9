"""The lossless JSON form, and `record export`: a JSON file that verifies on its own, and
the PDF report."""

from __future__ import annotations

import json
import re
import sys
import zlib
from pathlib import Path

import pytest

from doseprint.errors import EXIT_ENVIRONMENT, EXIT_RESULT, InputError
from doseprint.records.chain import verify_record
from doseprint.records.export import record_from_json, record_to_json
from doseprint.records.store import RecordStore, open_store
from helpers.cli import run_cli as run

from .helpers import Backend, FakeClock, pass_qc, printed


def released(url: str) -> str:
    with open_store(url, clock=FakeClock()) as store:
        record_id = printed(store)
        pass_qc(store, record_id)
        store.release(record_id, "Dr Quinn Person", "QA release for dispensing")
    return record_id


def pdf_text(data: bytes) -> str:
    """The text of a PDF's content streams (inflated where compressed).

    Only the ``\\n`` before ``endstream`` is taken as the end of a stream: a compressed
    stream may itself end in a ``\\r`` byte, which must stay in it."""
    chunks = []
    for match in re.finditer(rb"stream\r?\n(.*?)\nendstream", data, re.S):
        body = match.group(1)
        try:
            body = zlib.decompress(body)
        except zlib.error:
            pass
        chunks.append(body.decode("latin-1"))
    return "\n".join(chunks)


def test_json_form_is_lossless(store: RecordStore) -> None:
    record_id = printed(store)
    pass_qc(store, record_id)
    store.release(record_id, "Dr Q. Person", "QA release for dispensing")
    record = store.get(record_id)
    document = json.loads(json.dumps(record_to_json(record)))
    assert document["schema"] == "doseprint.record/1"
    assert document["status"] == "released"
    assert document["head_hash"] == record.events[-1].hash
    assert document["events"][3]["hash"] == record.events[3].hash
    again = record_from_json(document)
    assert again == record
    assert verify_record(again) == []

    document["events"][2]["data"]["FIRMWARE_NAME"] = "Marlin 9"
    assert "event 2" in verify_record(record_from_json(document))[0]
    with pytest.raises(InputError, match="schema"):
        record_from_json({"schema": "doseprint.record/99"}, source="x.json")
    with pytest.raises(InputError, match=r"x\.json"):
        record_from_json({"schema": "doseprint.record/1"}, source="x.json")


def test_exported_json_verifies_on_its_own(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same chain check on a file exported from either back end."""
    record_id = released(backend.url)
    out = tmp_path / "batch.json"
    code, _, err = run(capsys, "record", "export", record_id[:8], "--out", str(out),
                       "--db", backend.url)
    assert code == 0, err
    code, stdout, err = run(capsys, "record", "verify", str(out))
    assert code == 0, err
    assert record_id in stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["status"] == "released"
    # A time changed in the file after export is found.
    document["events"][1]["utc"] = "2026-01-01T00:00:00.000Z"
    out.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = run(capsys, "record", "verify", str(out))
    assert code == EXIT_RESULT
    assert "event 1 (started at 2026-01-01T00:00:00.000Z)" in err


def test_pdf_report(backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fpdf", reason="fpdf2 is in the dev extra; this covers the PDF")
    record_id = released(backend.url)
    out = tmp_path / "batch.pdf"
    code, _, err = run(capsys, "record", "export", record_id, "--out", str(out),
                       "--db", backend.url)
    assert code == 0, err
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    text = pdf_text(data)
    for shown in (record_id, "RELEASED", "Dr Quinn Person", "QA release for dispensing",
                  "Dispensing label", "RX-2026-000123", "PT-7F3A", "ABC123", "PASSED"):
        assert shown in text, shown


def test_pdf_without_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "records.sqlite"
    record_id = released(str(db))
    monkeypatch.setitem(sys.modules, "fpdf", None)  # import fpdf now raises ImportError
    out = tmp_path / "batch.pdf"
    code, _, err = run(capsys, "record", "export", record_id, "--out", str(out),
                       "--db", str(db))
    assert code == EXIT_ENVIRONMENT
    assert "fpdf2" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_both_back_ends_chain_the_same_hashes(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same events written to SQLite and to PostgreSQL give the same record, hashes
    and all, so an export from either verifies the same way."""
    import uuid

    from doseprint.records import store as store_module

    fixed = uuid.UUID("3f2a0000-0000-4000-8000-000000000001")
    monkeypatch.setattr(store_module.uuid, "uuid4", lambda: fixed)
    exported = []
    for url in (str(tmp_path / "records.sqlite"), pg_url):
        record_id = released(url)
        with open_store(url) as store:
            exported.append(record_to_json(store.get(record_id)))
    assert exported[0] == exported[1]
    assert exported[0]["id"] == str(fixed)
    assert exported[0]["status"] == "released"
