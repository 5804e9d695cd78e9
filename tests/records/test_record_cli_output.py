"""What the `record` commands print, for a record whose fields an attacker typed.

A regulator's tester put a newline and ANSI escapes in the operator (``x\\n status
released\\x1b[2J``), an escape in a material lot, a bidi override in the patient reference
…, and `record show` printed them raw: a forged ``status released`` line on the
terminal. Now every human-readable line is escaped (doseprint.cli.terminal), and every
`record` subcommand takes ``--json``, its result or its failure (with the same exit
code) as one JSON document on stdout.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from doseprint.errors import EXIT_ENVIRONMENT, EXIT_INPUT, EXIT_OK, EXIT_RESULT
from doseprint.records.qc import designed_masses_mg
from doseprint.records.store import open_store
from helpers.cli import run_cli as run

from .helpers import Backend, FakeClock
from .qc_helpers import full_content

OPERATOR = "x\n status       released\x1b[2J"
LOT = "LOT-\x1b[31mRED\x1b[0m"
PATIENT = "PT-\u202eA3F7\u2066"
RX_ID = "RX-1\r\x1b[1Astatus       released"
BY = "Eve\x1b]0;owned\x07 \u200bHacker"
MEANING = "looks fine\nstatus       released\u2028\x9b2J"
NAMES = {"operator": OPERATOR, "lot": LOT, "patient": PATIENT, "rx": RX_ID}

ACTS = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def acting(text: str) -> list[str]:
    """The characters of ``text`` that a terminal could act on, its line ends apart."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ACTS]


def attacked_content() -> dict[str, Any]:
    content = full_content(patient=PATIENT)
    content["operator"] = OPERATOR
    content["materials"][0]["lot"] = LOT
    content["prescription"]["id"] = RX_ID
    content["note"] = "Tablette für Frau Müller, 中文"
    return content


def make_record(url: str, end: str = "completed") -> str:
    with open_store(url, clock=FakeClock()) as store:
        record_id = store.create(attacked_content(), actor=OPERATOR)
        store.append(record_id, "started", {"port": "socket://x\x1b[2J"}, OPERATOR)
        if end != "printing":
            store.append(record_id, end, {"last_acked": 3, "error": "halted\nstatus released"},
                         "doseprint")
    return record_id


def passing_masses(url: str, record_id: str) -> str:
    with open_store(url) as store:
        designed = designed_masses_mg(store.get(record_id).content)
    assert designed is not None
    return ",".join(f"{m:.3f}" for m in designed)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "records.sqlite")


def test_show_and_list_print_no_control_characters(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    record_id = make_record(db)
    with open_store(db) as store:
        store.reject(record_id, BY, MEANING)  # the signer's fields are shown too
    for args in (("record", "show", record_id), ("record", "list")):
        code, out, err = run(capsys, *args, "--db", db)
        assert code == EXIT_OK, err
        assert acting(out) == [], (args, acting(out))
        lines = out.splitlines()
        # The forged line is not a line of its own; the only status line is the true one.
        assert not any(line.lstrip().startswith("status") and "released" in line
                       for line in lines), out
        if args[1] == "show":
            assert [line for line in lines if line.startswith("status")] == [
                "status       rejected"]
            shown = "\n".join(lines)
            for escaped in ("operator     x\\n status       released\\x1b[2J",
                            "lot LOT-\\x1b[31mRED\\x1b[0m", "PT-\\u202eA3F7\\u2066",
                            "RX-1\\r\\x1b[1Astatus       released",
                            "Eve\\x1b]0;owned\\x07 \\u200bHacker",
                            "looks fine\\nstatus       released\\u2028\\x9b2J"):
                assert escaped in shown, escaped
        else:
            (line,) = lines
            assert line.startswith(record_id) and "PT-\\u202eA3F7\\u2066" in line


def test_ordinary_non_ascii_text_is_left_as_it_is(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(db, clock=FakeClock()) as store:
        content = full_content(patient="PT-Müller-中文-é")
        content["operator"] = "Zoë Ångström"
        record_id = store.create(content, actor="Zoë Ångström")
    code, out, _ = run(capsys, "record", "show", record_id, "--db", db)
    assert code == EXIT_OK
    assert "(patient PT-Müller-中文-é)" in out
    assert "operator     Zoë Ångström" in out


def test_json_output_is_lossless_and_acts_on_nothing(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """json.dumps escapes the C0 controls; the output escapes DEL, C1, bidi and the other
    format characters too, as JSON escapes that read back as the same text."""
    record_id = make_record(db)
    with open_store(db) as store:
        store.reject(record_id, BY, MEANING)
    code, out, _ = run(capsys, "record", "show", record_id, "--db", db, "--json")
    assert code == EXIT_OK
    assert acting(out) == []
    document = json.loads(out)
    assert document["content"]["operator"] == OPERATOR
    assert document["content"]["materials"][0]["lot"] == LOT
    assert document["content"]["prescription"]["patient"] == PATIENT
    assert document["content"]["note"] == "Tablette für Frau Müller, 中文"
    assert "Frau Müller, 中文" in out  # not \u-escaped: ordinary text stays readable
    assert document["events"][-1]["actor"] == BY
    assert document["events"][-1]["data"]["meaning"] == MEANING.strip()
    code, out, _ = run(capsys, "record", "list", "--db", db, "--json")
    assert acting(out) == []
    (row,) = json.loads(out)
    assert (row["prescription_id"], row["patient"]) == (RX_ID, PATIENT)


def test_signing_echoes_the_signer_escaped(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    record_id = make_record(db)
    code, out, err = run(capsys, "record", "reject", record_id[:8], "--by", BY, "--meaning",
                         MEANING, "--db", db)
    assert code == EXIT_OK, err
    assert acting(out) == []
    assert len(out.splitlines()) == 1
    assert out.startswith("rejected by Eve\\x1b]0;owned\\x07 \\u200bHacker at ")


def test_an_error_quoting_user_input_is_escaped(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_record(db)
    code, _, err = run(capsys, "record", "show", "ab\nerror: fake\x1b[2J", "--db", db)
    assert code == EXIT_INPUT
    assert acting(err) == []
    assert "'ab\\nerror: fake\\x1b[2J' is not a record id" in err
    assert not any(line.startswith("error: fake") for line in err.splitlines())
    code, _, err = run(capsys, "record", "qc", "ab", "--mass-mg", "1\n2\x1b[2J", "--by", "x",
                       "--db", db)
    assert code == EXIT_INPUT
    assert acting(err) == []


def test_a_store_that_does_not_verify(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every problem on a line of its own (doseprint's line breaks), each escaped; with
    --json the problems are the error's details, exit 1."""
    record_id = make_record(backend.url)
    backend.tamper(("UPDATE events SET actor = ? WHERE record_id = ? AND seq = 1",
                    ("Mallory\nstatus       released", record_id)))
    code, out, err = run(capsys, "record", "verify", "--db", backend.url)
    assert code == EXIT_RESULT
    lines = err.splitlines()
    assert lines[0] == "error: the record store does not verify:"
    problems = [line for line in lines if line.startswith("  ")]
    assert any(record_id in p and "event 1" in p for p in problems), err
    assert acting(err) == []
    code, out, err = run(capsys, "record", "verify", "--db", backend.url, "--json")
    assert code == EXIT_RESULT
    document = json.loads(out)
    assert document["ok"] is False and document["exit_code"] == EXIT_RESULT
    assert document["error"]["kind"] == "RecordChainError"
    assert [f"  {p}" for p in document["error"]["details"]] == problems
    assert document["error"]["message"].startswith("the record store does not verify:\n  ")


def _failure(out: str, code: int) -> dict[str, Any]:
    document = json.loads(out)
    assert document["ok"] is False
    assert document["exit_code"] == code
    error = document["error"]
    assert set(error) == {"kind", "message", "details", "problems", "file", "key", "hint"}
    assert error["kind"] and error["message"]
    return error


def test_every_subcommand_answers_json_on_success_and_on_failure(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_id = make_record(db)
    printing = make_record(db, end="printing")
    unreachable = str(tmp_path / "no-such-folder" / "records.sqlite")
    out_json = tmp_path / "batch.json"
    masses = passing_masses(db, record_id)

    def ok(*args: object) -> Any:
        code, out, err = run(capsys, *args, "--json")
        assert code == EXIT_OK, (args, err)
        return json.loads(out)

    def fails(code: int, *args: object) -> dict[str, Any]:
        got, out, err = run(capsys, *args, "--json")
        assert got == code, (args, out, err)
        assert err.strip(), "the human message goes to stderr as well"
        return _failure(out, code)

    # list
    (row,) = [r for r in ok("record", "list", "--db", db) if r["id"] == record_id]
    assert row["status"] == "completed"
    assert fails(EXIT_ENVIRONMENT, "record", "list", "--db", unreachable)["kind"] == \
        "RecordStoreError"
    assert fails(EXIT_INPUT, "record", "list", "--no-such-option")["kind"] == "NoSuchOption"
    # show
    assert ok("record", "show", record_id[:8], "--db", db)["id"] == record_id
    error = fails(EXIT_INPUT, "record", "show", "ffffffff", "--db", db)
    assert error["kind"] == "InputError" and error["problems"][0]["message"] == \
        "no record 'ffffffff'" and error["hint"]
    assert fails(EXIT_ENVIRONMENT, "record", "show", record_id, "--db", unreachable)
    assert fails(EXIT_INPUT, "record", "show", "--db", db)["key"] == "RECORD_ID"
    # qc
    error = fails(EXIT_INPUT, "record", "qc", record_id, "--mass-mg", "heavy", "--by", "T",
                  "--db", db)
    assert (error["file"], error["key"]) == ("command line", "--mass-mg")
    assert fails(EXIT_RESULT, "record", "qc", printing, "--mass-mg", masses, "--by", "T",
                 "--db", db)["kind"] == "RecordStateError"
    assert fails(EXIT_ENVIRONMENT, "record", "qc", record_id, "--mass-mg", masses, "--by",
                 "T", "--db", unreachable)
    qc = ok("record", "qc", record_id, "--mass-mg", masses, "--by", "Tess", "--db", db)
    assert qc["ok"] is True and qc["passed"] is True and qc["record_id"] == record_id
    assert qc["qc"]["passed"] is True and qc["event"]["kind"] == "qc"
    # release
    error = fails(EXIT_INPUT, "record", "release", record_id, "--meaning", "QA", "--db", db)
    assert (error["kind"], error["file"], error["key"]) == ("MissingParameter",
                                                            "command line", "--by")
    assert fails(EXIT_RESULT, "record", "release", printing, "--by", "B", "--meaning", "QA",
                 "--db", db)["kind"] == "RecordStateError"
    assert fails(EXIT_ENVIRONMENT, "record", "release", record_id, "--by", "B", "--meaning",
                 "QA", "--db", unreachable)
    released = ok("record", "release", record_id, "--by", "B. Pharmacist", "--meaning",
                  "QA release", "--db", db)
    assert (released["status"], released["by"], released["meaning"]) == (
        "released", "B. Pharmacist", "QA release")
    assert released["event"]["hash"] and released["event"]["seq"] > 0
    # export
    error = fails(EXIT_INPUT, "record", "export", record_id, "--out", tmp_path / "x.txt",
                  "--db", db)
    assert error["key"] == "--out"
    assert fails(EXIT_ENVIRONMENT, "record", "export", record_id, "--out", out_json, "--db",
                 unreachable)
    exported = ok("record", "export", record_id, "--out", out_json, "--db", db)
    assert exported["format"] == "json" and exported["bytes"] == out_json.stat().st_size
    # verify
    assert ok("record", "verify", "--db", db) == {"ok": True, "records_verified": 2,
                                                    "problems": []}
    assert ok("record", "verify", out_json) == {"ok": True, "records_verified": 1,
                                                 "problems": [], "file": str(out_json),
                                                 "record_id": record_id}
    assert fails(EXIT_ENVIRONMENT, "record", "verify", "--db", unreachable)
    bad = tmp_path / "bad.json"
    bad.write_text("not json", encoding="utf-8")
    assert fails(EXIT_INPUT, "record", "verify", bad)["file"] == str(bad)
    document = json.loads(out_json.read_text(encoding="utf-8"))
    document["events"][1]["utc"] = "2026-01-01T00:00:00.000Z"
    out_json.write_text(json.dumps(document), encoding="utf-8")
    error = fails(EXIT_RESULT, "record", "verify", out_json)
    assert error["details"] and "event 1" in error["details"][0]
    # reject
    assert fails(EXIT_INPUT, "record", "reject", record_id, "--by", " ", "--meaning", "x",
                 "--db", db)["key"] == "--by"
    assert fails(EXIT_RESULT, "record", "reject", printing, "--by", "B", "--meaning", "x",
                 "--db", db)["kind"] == "RecordStateError"
    assert fails(EXIT_ENVIRONMENT, "record", "reject", record_id, "--by", "B", "--meaning",
                 "x", "--db", unreachable)
    rejected = ok("record", "reject", record_id, "--by", "B", "--meaning", "recall", "--db",
                  db)
    assert rejected["status"] == "rejected"


def test_every_record_subcommand_has_json() -> None:
    """Any subcommand added to `record` gets --json by the one option (json_option)."""
    import click

    from doseprint.cli.options import JsonOption
    from doseprint.cli.record import record_group

    def leaves(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += leaves(command, f"{prefix}{name} ")
            else:
                found.append((prefix + name, command))
        return found

    for name, command in leaves(record_group, ""):
        assert any(isinstance(p, JsonOption) for p in command.params), name


def test_without_json_a_failure_writes_nothing_on_stdout(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "record", "show", "ffffffff", "--db", db)
    assert code == EXIT_INPUT
    assert out == ""
    assert err.startswith("error: ")
