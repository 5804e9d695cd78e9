"""The lossless JSON form, and `record export`: a JSON file that verifies on its own, and
the PDF report."""

from __future__ import annotations

import json
import re
import sys
import zlib
from pathlib import Path

import pytest

from doseprint.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_RESULT,
    EnvironmentFault,
    InputError,
)
from doseprint.records.chain import verify_record
from doseprint.records.export import (
    export_bytes,
    export_format,
    read_exported,
    record_from_json,
    record_to_json,
)
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


# The files of `record export`, function by function


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("b.json", "json"), ("b.JSON", "json"), ("b.html", "html"), ("b.htm", "html")],
)
def test_export_format_follows_the_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    assert export_format(tmp_path / name) == fmt


@pytest.mark.parametrize(("name", "shown"), [("b.txt", "is .txt"), ("b", "is without a suffix")])
def test_export_format_refuses_other_suffixes(tmp_path: Path, name: str, shown: str) -> None:
    with pytest.raises(InputError, match=shown) as info:
        export_format(tmp_path / name)
    (problem,) = info.value.problems
    assert (problem.file, problem.key) == (str(tmp_path / name), "--out")
    assert ".json" in problem.message and ".pdf" in problem.message


def test_export_format_needs_the_pdf_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fpdf", None)  # import fpdf now raises ImportError
    with pytest.raises(EnvironmentFault, match="fpdf2") as info:
        export_format(tmp_path / "b.pdf")
    assert info.value.exit_code == EXIT_ENVIRONMENT


@pytest.mark.parametrize("suffix", [".json", ".html"])
def test_export_bytes_are_what_record_export_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """The functions give the very bytes the command writes, so it can call them."""
    db = str(tmp_path / "records.sqlite")
    record_id = released(db)
    out = tmp_path / f"batch{suffix}"
    code, _, err = run(capsys, "record", "export", record_id, "--out", out, "--db", db)
    assert code == 0, err
    with open_store(db) as store:
        record = store.get(record_id)
    assert export_bytes(record, export_format(out)) == out.read_bytes()


def test_export_bytes_pdf(tmp_path: Path) -> None:
    pytest.importorskip("fpdf", reason="fpdf2 is in the dev extra; this covers the PDF")
    db = str(tmp_path / "records.sqlite")
    record_id = released(db)
    with open_store(db) as store:
        data = export_bytes(store.get(record_id), "pdf")
    assert data.startswith(b"%PDF-")
    assert record_id in pdf_text(data)


def test_read_exported_gives_back_the_record(tmp_path: Path) -> None:
    db = str(tmp_path / "records.sqlite")
    record_id = released(db)
    with open_store(db) as store:
        record = store.get(record_id)
    out = tmp_path / "batch.json"
    out.write_bytes(export_bytes(record, "json"))
    again = read_exported(str(out))
    assert again == record
    assert verify_record(again) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (None, "cannot read it"),
        ("{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "not an exported doseprint record"),
        ('{"schema": "doseprint.record/1"}', "not a complete doseprint record"),
        ('{"schema": "doseprint.record/2"}', "unknown record schema"),
    ],
)
def test_read_exported_refuses_what_is_not_an_export(
    tmp_path: Path, text: str | bytes | None, shown: str
) -> None:
    path = tmp_path / "batch.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=shown) as info:
        read_exported(str(path))
    assert info.value.problems[0].file == str(path)


def test_a_garbled_printer_reply_is_exported(tmp_path: Path) -> None:
    """The store keeps any text the printer sent, even a lone surrogate; the exported
    JSON still reads back as the same record, and the page shows the character escaped."""
    garbled = "ok T:21\udcff"
    db = str(tmp_path / "records.sqlite")
    with open_store(db, clock=FakeClock()) as store:
        record_id = printed(store)
        store.append(record_id, "error", {"response": garbled}, "doseprint")
        entry = {"kind": "ok", "n": 4, "text": garbled, "utc": "2026-11-22T10:00:01.000Z"}
        store.append(record_id, "lines", {"entries": [entry], "last_acked": 4}, "doseprint")
        record = store.get(record_id)
    out = tmp_path / "batch.json"
    out.write_bytes(export_bytes(record, "json"))
    again = read_exported(str(out))
    assert again == record
    assert again.events[-2].data["response"] == garbled
    assert verify_record(again) == []
    page = export_bytes(record, "html").decode("utf-8")
    assert "ok T:21\\udcff" in page


def test_record_export_of_a_garbled_reply_keeps_the_spec_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record export` writes a record holding a garbled printer reply (a lone surrogate)
    as `export_bytes` does: exit 0, not the internal error (70) it once gave; the file
    verifies; the same file altered is a broken chain (1), and one garbled past reading
    is bad input (2) -- never a bug (cli.md, exit codes)."""
    db = str(tmp_path / "records.sqlite")
    with open_store(db, clock=FakeClock()) as store:
        record_id = printed(store)
        store.append(record_id, "error", {"response": "ok T:21\udcff"}, "doseprint")
    out = tmp_path / "batch.json"
    code, _, err = run(capsys, "record", "export", record_id, "--out", out, "--db", db)
    assert code == EXIT_OK, err
    code, _, err = run(capsys, "record", "verify", out)
    assert code == EXIT_OK, err
    out.write_text(out.read_text(encoding="utf-8").replace("ok T:21", "ok T:22"),
                   encoding="utf-8")
    code, _, err = run(capsys, "record", "verify", out)
    assert code == EXIT_RESULT
    assert "does not verify" in err
    out.write_bytes(b"\xff\xfe garbled")
    code, _, err = run(capsys, "record", "verify", out)
    assert code == EXIT_INPUT
    assert "not JSON" in err and "internal error" not in err
