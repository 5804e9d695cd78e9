"""A pharmacy with accounts, through the real command line: people sign in with their
passwords on standard input, print, weigh, release; the wrong person is refused; the
store is checked against an anchor after an attacker cut its tail."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.compile import compile_prescription, write_job
from helpers.rx import write_rx

PW = {"admin": "admin-secret-1", "ct": "technician-secret-1", "bp": "pharmacist-secret-1",
      "qa": "quality-secret-1"}


def doseprint(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doseprint", *args], capture_output=True,
                          text=True, timeout=120, input=stdin)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("people")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1), "generic-marlin-1x175"), out)
    return out


@pytest.fixture
def printer() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "doseprint", "virtual-printer", "--tcp",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # it says where it listens once it does
        yield f"socket://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def _people(db: str) -> None:
    out = doseprint("user", "add", "admin", "--name", "A. Admin", "--role", "admin",
                    "--db", db, stdin=PW["admin"] + "\n")
    assert out.returncode == 0, out.stderr
    for uid, name, role in [("ct", "C. Technician", "technician"),
                            ("bp", "B. Pharmacist", "pharmacist"),
                            ("qa", "Q. Quality", "quality")]:
        out = doseprint("user", "add", uid, "--name", name, "--role", role, "--by", "admin",
                        "--db", db, stdin=f"{PW['admin']}\n{PW[uid]}\n")
        assert out.returncode == 0, out.stderr


def test_a_signed_batch_from_print_to_anchor(job: Path, printer: str, tmp_path: Path) -> None:
    db = str(tmp_path / "records.sqlite")
    _people(db)
    listed = json.loads(doseprint("user", "list", "--db", db, "--json").stdout)
    assert [u["id"] for u in listed] == ["admin", "bp", "ct", "qa"]
    assert all("password_hash" not in u for u in listed)

    # Dispensing needs the formulation approved (by quality) and the lot received.
    tool = json.loads((job / "job.json").read_text())["tools"][0]
    out = doseprint("formulation", "approve", tool["formulation"], "--by", "qa", "--db", db,
                    stdin=PW["qa"] + "\n")
    assert out.returncode == 0, out.stderr
    out = doseprint("lot", "add", "LOT-7", "--formulation", tool["formulation"], "--expiry",
                    "2099-12-31", "--supplier", "Acme", "--by", "ct", "--db", db,
                    stdin=PW["ct"] + "\n")
    assert out.returncode == 0, out.stderr

    # A wrong password does not print; nothing is sent and the failure is on record.
    out = doseprint("print", str(job), "--port", printer, "--db", db, "--operator", "ct",
                    "--lot", "T0=LOT-7", stdin="not-my-password\n")
    assert out.returncode == 2 and "cannot sign" in out.stderr, out.stderr
    assert json.loads(doseprint("record", "list", "--db", db, "--json").stdout) == []

    out = doseprint("print", str(job), "--port", printer, "--db", db, "--operator", "ct",
                    "--lot", "T0=LOT-7", stdin=PW["ct"] + "\n")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(doseprint("record", "list", "--db", db, "--json").stdout)
    rid = summary["id"]

    weighed = json.loads((job / "job.json").read_text())
    designed = sum(a["design_volume_mm3"] for a in weighed["tablets"][0]["actives"]) * \
        weighed["tools"][0]["density_g_cm3"]
    out = doseprint("record", "qc", rid, "--mass-mg", f"{designed:.1f}", "--by", "ct",
                    "--db", db, stdin=PW["ct"] + "\n")
    assert out.returncode == 0 and "QC PASSED" in out.stdout, out.stdout + out.stderr

    # The technician may not release; the operator may not either, whatever their role.
    out = doseprint("record", "release", rid, "--by", "ct", "--meaning", "release",
                    "--db", db, stdin=PW["ct"] + "\n")
    assert out.returncode == 2 and "may not sign 'release'" in out.stderr, out.stderr
    out = doseprint("record", "release", rid, "--by", "bp", "--meaning", "QA release",
                    "--db", db, stdin=PW["bp"] + "\n")
    assert out.returncode == 0, out.stderr
    shown = json.loads(doseprint("record", "show", rid, "--db", db, "--json").stdout)
    released = shown["events"][-1]
    assert released["actor"] == "bp" and released["data"]["signer_name"] == "B. Pharmacist"

    out = doseprint("record", "verify", "--db", db)
    assert out.returncode == 0, out.stderr
    anchor = tmp_path / "anchor.json"
    out = doseprint("record", "anchor", "export", "--out", str(anchor), "--by", "qa",
                    "--db", db, stdin=PW["qa"] + "\n")
    assert out.returncode == 0, out.stderr
    assert doseprint("record", "verify", "--anchor", str(anchor), "--db", db).returncode == 0

    # The attacker removes the release and every site event since it was sealed.
    with sqlite3.connect(db) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                    ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        (last,) = conn.execute("SELECT MAX(seq) FROM events WHERE record_id = ?",
                               (rid,)).fetchone()
        (sealed,) = conn.execute("SELECT MIN(seq) FROM site_events WHERE kind = 'head_sealed'"
                                 " AND data LIKE ?", (f'%"seq":{last}%',)).fetchone()
        conn.execute("DELETE FROM event_signatures WHERE record_id = ? AND seq = ?", (rid, last))
        conn.execute("DELETE FROM events WHERE record_id = ? AND seq = ?", (rid, last))
        conn.execute("DELETE FROM site_events WHERE seq >= ?", (sealed,))
    out = doseprint("record", "verify", "--anchor", str(anchor), "--db", db)
    assert out.returncode == 1
    assert f"record {rid}: its event {last}" in out.stderr
