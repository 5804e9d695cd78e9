"""``doseprint lot``, ``formulation approve|approvals|withdraw``, ``compile --dispense`` and
the lot and approval checks of ``print``, through the command line a pharmacy uses.

Passwords go in on standard input, one line each, as they do in automation."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from doseprint.errors import InputError
from doseprint.library import shipped_dir
from doseprint.printing import parse_lots
from helpers.cli import run_cli
from helpers.rx import write_rx

THEO = "theophylline-hpc-30"
PW = {"admin": "admin-secret-1", "ct": "technician-secret-1", "qa": "quality-secret-1",
      "bp": "pharmacist-secret-1"}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``doseprint ARGS`` with ``stdin`` as standard input: (exit code, stdout, stderr)."""

    def invoke(*args: object, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return run_cli(capsys, *args)

    return invoke


def controlled(run, db: Path) -> None:
    """A store with an administrator, a technician, a pharmacist and a quality user."""
    assert run("user", "add", "admin", "--name", "A. Admin", "--role", "admin", "--db", db,
               stdin=f"{PW['admin']}\n")[0] == 0
    for uid, role in [("ct", "technician"), ("qa", "quality"), ("bp", "pharmacist")]:
        code, _, err = run("user", "add", uid, "--name", uid.upper(), "--role", role, "--by",
                           "admin", "--db", db, stdin=f"{PW['admin']}\n{PW[uid]}\n")
        assert code == 0, err


def add_lot(run, db: Path, lot: str, *extra: str, by: str = "Ann Receiver",
            stdin: str = "") -> tuple[int, str, str]:
    return run("lot", "add", lot, "--formulation", THEO, "--expiry", "2027-03-31",
               "--supplier", "Acme Filaments", "--by", by, "--db", db, *extra, stdin=stdin)


def test_lots_are_received_listed_shown_and_blocked(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    code, out, err = add_lot(run, db, "L-42", "--quantity-g", "500", "--received",
                             "2026-01-05")
    assert code == 0, err
    assert "received lot L-42 of theophylline-hpc-30, expires 2027-03-31" in out
    assert "signed by site" in out  # no accounts: the site key signs for the name
    code, out, _ = run("lot", "list", "--db", db)
    assert code == 0 and "L-42" in out and "Acme Filaments" in out and "[received]" in out
    code, out, _ = run("lot", "show", "L-42", "--db", db, "--json")
    shown = json.loads(out)
    assert (shown["lot"], shown["expiry"], shown["received"], shown["quantity_g"],
            shown["by"], shown["signed_by"], shown["status"]) == \
        ("L-42", "2027-03-31", "2026-01-05", 500.0, "Ann Receiver", "site", "received")
    code, out, err = run("lot", "block", "L-42", "--reason", "supplier recall R-17",
                         "--by", "Q. Lead", "--db", db)
    assert code == 0, err
    (listed,) = json.loads(run("lot", "list", "--db", db, "--json")[1])
    assert listed["status"] == "blocked"
    assert listed["blocked"]["reason"] == "supplier recall R-17"
    assert run("record", "verify", "--db", db)[0] == 0


@pytest.mark.parametrize(("args", "key"), [
    (("--expiry", "2027-02-30"), "--expiry"),
    (("--received", "2027-01-01"), "--received"),  # after the expiry
    (("--received", "2999-01-01"), "--received"),  # not yet arrived
    (("--quantity-g", "nan"), "--quantity-g"),
    (("--quantity-g", "0"), "--quantity-g"),
    (("--formulation", "no-such-formulation"), "unknown formulation"),
    (("--supplier", "Acme\x1b[2J"), "--supplier"),
])
def test_a_bad_lot_is_refused_with_exit_2_and_nothing_written(
    run: Run, tmp_path: Path, args: tuple[str, ...], key: str
) -> None:
    db = tmp_path / "r.sqlite"
    code, _, err = run("lot", "add", "L-1", "--formulation", THEO, "--expiry", "2026-12-31",
                       "--supplier", "Acme", "--by", "Ann", "--db", db, *args)
    assert code == 2, err
    assert key in err and "Traceback" not in err
    assert json.loads(run("lot", "list", "--db", db, "--json")[1]) == []


def test_a_lot_number_is_unique_per_formulation_and_printable(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    assert add_lot(run, db, "L-1")[0] == 0
    code, _, err = add_lot(run, db, "L-1")
    assert code == 2 and "received already" in err
    code, _, err = add_lot(run, db, "L\x1b[31m-2")
    assert code == 2 and "LOT" in err and "\x1b" not in err
    code, _, err = add_lot(run, db, "L" * 65)
    assert code == 2 and "at most 64" in err
    code, _, err = run("lot", "show", "L-9", "--db", db)
    assert code == 2 and "no lot 'L-9'" in err


def test_with_accounts_lots_and_approvals_are_signed_by_permitted_people(
    run: Run, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    controlled(run, db)
    code, _, err = add_lot(run, db, "L-1", by="ct", stdin="wrong-password-1\n")
    assert code == 2 and "cannot sign" in err
    code, out, err = add_lot(run, db, "L-1", by="ct", stdin=f"{PW['ct']}\n")
    assert code == 0 and "signed by ct" in out, err
    # A technician may not approve a formulation, nor block a lot; quality may.
    code, _, err = run("formulation", "approve", THEO, "--by", "ct", "--db", db,
                       stdin=f"{PW['ct']}\n")
    assert code == 2 and "may not sign 'approve_formulation'" in err
    code, _, err = run("lot", "block", "L-1", "--reason", "recall", "--by", "ct", "--db", db,
                       stdin=f"{PW['ct']}\n")
    assert code == 2 and "may not sign 'reject'" in err
    code, out, err = run("formulation", "approve", THEO, "--by", "qa", "--db", db,
                         "--meaning", "MFR-7 rev 2 approved", stdin=f"{PW['qa']}\n")
    assert code == 0, err
    (approval,) = json.loads(run("formulation", "approvals", "--db", db, "--json")[1])
    assert (approval["formulation"], approval["by"], approval["status"],
            approval["library_file"], approval["meaning"]) == \
        (THEO, "qa", "approved", "current", "MFR-7 rev 2 approved")
    code, out, err = run("formulation", "withdraw", THEO, "--by", "qa", "--reason",
                         "deviation D-12", "--db", db, stdin=f"{PW['qa']}\n")
    assert code == 0 and "withdrew" in out, err
    (approval,) = json.loads(run("formulation", "approvals", "--db", db, "--json")[1])
    assert approval["status"] == "withdrawn"
    assert run("record", "verify", "--db", db)[0] == 0


def test_an_open_store_without_a_site_key_cannot_sign_a_lot(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSEPRINT_KEY", str(tmp_path / "no-key.pem"))
    code, _, err = add_lot(run, tmp_path / "r.sqlite", "L-1")
    assert code == 2 and "no site key" in err


def test_compile_for_dispensing_needs_the_approved_version_and_print_checks_it(
    run: Run, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(shipped_dir("formulations") / f"{THEO}.toml", site)
    rx = write_rx(tmp_path, units=1, extra_active=f't80_h = 8.0\nformulation = "{THEO}"')
    db = tmp_path / "r.sqlite"
    compile_args = ("compile", rx, "--printer", "generic-marlin-1x175", "--dispense",
                    "--db", db, "--formulations", site)

    # Not approved: refused, naming the formulation and its hash; no job written.
    code, _, err = run(*compile_args, "--out", tmp_path / "job-1")
    assert code == 2, err
    assert f"formulation {THEO} (sha256 " in err and "is not approved" in err
    assert not (tmp_path / "job-1").exists()

    code, _, err = run("formulation", "approve", THEO, "--by", "Q. Lead", "--db", db,
                         "--formulations", site)
    assert code == 0, err
    approved = json.loads(run("formulation", "approvals", "--db", db, "--json",
                              "--formulations", site)[1])[0]["sha256"]
    code, _, err = run(*compile_args, "--out", tmp_path / "job-2")
    assert code == 0, err

    # The file changed since: refused, naming both hashes.
    path = site / f"{THEO}.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited after approval\n",
                    encoding="utf-8")
    code, _, err = run(*compile_args, "--out", tmp_path / "job-3")
    assert code == 2, err
    assert "has changed since its approval" in err and approved in err
    assert not (tmp_path / "job-3").exists()
    (status,) = json.loads(run("formulation", "approvals", "--db", db, "--json",
                               "--formulations", site)[1])
    assert status["library_file"] == "changed"

    # Without --dispense a compile is design work: no approval needed.
    code, _, err = run("compile", rx, "--printer", "generic-marlin-1x175", "--out",
                       tmp_path / "job-4", "--formulations", site)
    assert code == 0, err

    # A store with accounts prints only an approved version, and a lot for every tool;
    # refused before the port is opened (nothing listens on it) and before any record.
    other = tmp_path / "controlled.sqlite"
    controlled(run, other)
    code, _, err = run("print", tmp_path / "job-2", "--port", "socket://127.0.0.1:9",
                       "--operator", "ct", "--db", other, stdin=f"{PW['ct']}\n")
    assert code == 2, err
    assert "2 problems" in err and "is not approved for dispensing" in err
    assert "T0 (theophylline-hpc-30) has no lot" in err
    assert "nothing was sent to the printer; the refusal is on record" in err
    assert json.loads(run("record", "list", "--db", other, "--json")[1]) == []


def test_print_refuses_a_lot_number_that_is_not_printable() -> None:
    with pytest.raises(InputError, match="unprintable"):
        parse_lots(["T0=L\x1b[2J"], 1)
    with pytest.raises(InputError, match="at most 64"):
        parse_lots(["T0=" + "L" * 65], 1)
    assert parse_lots(["t0= L-1 "], 1) == {0: "L-1"}
