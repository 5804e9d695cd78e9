"""`doseprint user` and signing in, in this process: passwords on standard input, lock-out,
refusals with exit 2 and no traceback, the policy file checked."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from helpers.cli import run_cli

PW = {"admin": "admin-secret-1", "bp": "pharmacist-secret-1"}


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def call(*args: object, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return run_cli(capsys, *args)
    return call


@pytest.fixture
def db(tmp_path: Path, run) -> str:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "records.sqlite")
    code, _, err = run("user", "add", "admin", "--name", "A. Admin", "--role", "admin",
                       "--db", path, stdin=PW["admin"] + "\n")
    assert code == 0, err
    code, _, err = run("user", "add", "bp", "--name", "B. Pharmacist", "--role", "pharmacist",
                       "--by", "admin", "--db", path, stdin=f"{PW['admin']}\n{PW['bp']}\n")
    assert code == 0, err
    return path


def test_five_wrong_passwords_lock_an_account(run, db: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        code, _, err = run("user", "passwd", "bp", "--db", db, stdin="wrong-password\nx\n")
        assert code == 2 and "cannot sign" in err and "Traceback" not in err
    assert "locked" in err
    code, out, _ = run("user", "list", "--db", db, "--json")
    assert {u["id"]: u["status"] for u in json.loads(out)}["bp"] == "locked"
    code, _, err = run("user", "passwd", "bp", "--db", db, stdin=f"{PW['bp']}\nx\n")
    assert code == 2  # the right password no longer opens a locked account
    code, _, err = run("user", "enable", "bp", "--by", "admin", "--reason", "checked",
                       "--db", db, stdin=PW["admin"] + "\n")
    assert code == 0, err
    code, _, err = run("user", "passwd", "bp", "--db", db,
                       stdin=f"{PW['bp']}\nanother-secret-22\n")
    assert code == 0, err
    assert run("record", "verify", "--db", db)[0] == 0


def test_passwords_missing_on_stdin_are_an_input_error(run, db: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("user", "add", "zz", "--name", "Z", "--role", "technician", "--by",
                       "admin", "--db", db, stdin=PW["admin"] + "\n")
    assert code == 2 and "no line left on standard input" in err


def test_only_an_administrator_manages_accounts(run, db: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("user", "add", "zz", "--name", "Z", "--role", "admin", "--by", "bp",
                       "--db", db, stdin=f"{PW['bp']}\nzz-secret-123\n")
    assert code == 2 and "may not sign 'manage_users'" in err
    code, _, err = run("user", "add", "bp", "--name", "Again", "--role", "pharmacist",
                       "--by", "admin", "--db", db, stdin=f"{PW['admin']}\nbp-secret-1234\n")
    assert code == 2 and "taken" in err
    code, _, err = run("user", "disable", "bp", "--by", "admin", "--reason", "left",
                       "--db", db, stdin=PW["admin"] + "\n")
    assert code == 0, err
    code, _, err = run("record", "release", "nothing", "--by", "bp", "--meaning", "m",
                       "--db", db, stdin=PW["bp"] + "\n")
    assert code == 2


def test_a_first_account_that_is_not_an_administrators_is_refused(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "r.sqlite")
    code, _, err = run("user", "add", "bp", "--name", "B", "--role", "pharmacist",
                       "--db", path, stdin=PW["bp"] + "\n")
    assert code == 2 and "first account must be an administrator" in err


def test_a_policy_file_is_checked_and_put_in_force(run, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "doseprint.site-policy/1",
                               "permissions": {"release": ["wizard"]}}))
    code, _, err = run("user", "policy", "set", str(bad), "--by", "admin", "--db", db,
                       stdin=PW["admin"] + "\n")
    assert code == 2 and "permissions.release" in err and "wizard" in err
    good = tmp_path / "policy.json"
    good.write_text(json.dumps({"schema": "doseprint.site-policy/1", "lockout_after": 3,
                                "release_by_operator": True}))
    code, _, err = run("user", "policy", "set", str(good), "--by", "admin", "--db", db,
                       stdin=PW["admin"] + "\n")
    assert code == 0, err
    code, out, _ = run("user", "policy", "show", "--json", "--db", db)
    shown = json.loads(out)
    assert shown["lockout_after"] == 3 and shown["release_by_operator"] is True
    assert shown["permissions"]["release"] == ["pharmacist"]
