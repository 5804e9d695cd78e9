"""The sealed manifest: compile signs job.json with the site key (job.seal), and print,
gcode check, preview and `key verify` refuse a job whose seal does not verify by this
site's key or a trusted one (issue: "print trusts job.json, which nothing seals").

Each attack is one an attacker with write access to the job folder, but without the site
key, can make: job.json and every hash inside it rewritten together.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, TEST_KEY
from doseprint.compile import compile_prescription, write_job
from doseprint.errors import JobSealError
from doseprint.gcode.header import read_header
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.tokens import split_lines
from doseprint.job.folder import read_job, replaceable_problem, sha256_bytes
from doseprint.job.keys import (
    KEY_ENV,
    TRUSTED_KEYS_ENV,
    create_site_key,
    default_key_path,
    key_path,
    load_site_key,
    load_trust,
    site_key_for_compile,
)
from doseprint.job.seal import SEAL_FILE, SEAL_SCHEMA, make_seal, verify_job_seal
from doseprint.job.verify import verify_job
from doseprint.printing import print_job
from doseprint.records.store import open_store
from helpers.cli import run_cli
from helpers.rx import write_rx


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One theophylline tablet of 100 mg, compiled and sealed by the run's site key (read
    it, do not change it: change a copy)."""
    folder = tmp_path_factory.mktemp("sealed")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1, dose_mg=100.0),
                                   "generic-marlin-1x175"), out)
    return out


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another machine: its own site key (made here) and no trusted keys; the run's key,
    which sealed :func:`job`, is a stranger's."""
    site = tmp_path / "elsewhere"
    monkeypatch.setenv(KEY_ENV, str(site / "site-key.pem"))
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(site / "trusted-keys"))
    create_site_key(site="Elsewhere")
    return site


def _copy(job: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "job"
    shutil.copytree(job, copy)
    return copy


def _edit_json(job: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((job / "job.json").read_text(encoding="utf-8"))
    edit(data)
    (job / "job.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def _forge_double_dose(job: Path) -> None:
    """Double tablet 0's dose everywhere, consistently: every E of its sections, the
    G-code header's dose line, job.json's dose and the G-code's SHA-256 in job.json."""
    path = job / "job.gcode"
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith(";TABLET:"):
            inside = line == ";TABLET:0"
        elif inside and line.startswith("G1 ") and " E" in line:
            line = re.sub(r"E([-0-9.]+)", lambda m: f"E{2 * float(m[1]):.5f}", line)
        elif line.startswith("; dose tablet 0 T0 100.0 mg"):
            line = line.replace("100.0 mg", "200.0 mg")
        out.append(line)
    path.write_text("\n".join(out), encoding="utf-8")
    digest = sha256_bytes(path.read_bytes())

    def edit(d: dict[str, Any]) -> None:
        d["gcode"]["sha256"] = digest
        d["tablets"][0]["actives"][0]["dose_mg"] = 200.0

    _edit_json(job, edit)


def _print_refused(job: Path, tmp_path: Path) -> JobSealError:
    """``print_job`` refuses with the seal's error, before any record (nothing sent)."""
    with open_store(str(tmp_path / "records.sqlite")) as store:
        with pytest.raises(JobSealError) as caught:
            print_job(job, "socket://127.0.0.1:9", store, operator="Tess Technician")
        assert store.list_records() == []
    return caught.value


def _refused_everywhere(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], words: str
) -> None:
    """print, gcode check, preview and key verify all exit 2 naming ``words``; print
    leaves no record."""
    assert words in _print_refused(job, tmp_path).message
    db = tmp_path / "cli-records.sqlite"
    for args in (["print", job, "--port", "socket://127.0.0.1:9", "--db", db],
                 ["gcode", "check", job], ["key", "verify", job],
                 ["preview", job, "--out", tmp_path / "p.html"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 2, (args, out, err)
        assert words in err and SEAL_FILE in err and "Traceback" not in err, (args, err)
    assert not (tmp_path / "p.html").exists()
    with open_store(str(db)) as store:
        assert store.list_records() == []


# What compile writes


def test_compile_seals_the_exact_bytes_of_job_json(job: Path) -> None:
    seal = json.loads((job / SEAL_FILE).read_text(encoding="utf-8"))
    data = (job / "job.json").read_bytes()
    site = load_site_key(TEST_KEY).public
    assert seal["schema"] == SEAL_SCHEMA and seal["algorithm"] == "ed25519"
    assert seal["file"] == "job.json" and seal["sha256"] == sha256_bytes(data)
    assert seal["fingerprint"] == site.fingerprint == sha256_bytes(site.raw)
    assert base64.b64decode(seal["public_key"]) == site.raw
    assert seal["site"] == "Test Pharmacy"
    assert site.verifies(base64.b64decode(seal["signature"]), data)
    # job.json's own format is unchanged: the seal is an extra file, listed nowhere.
    manifest = json.loads(data)
    assert SEAL_FILE not in manifest["files"] and SEAL_FILE not in json.dumps(manifest)
    check = verify_job_seal(job)
    assert check.trusted_as == "this site's key" and check.signer.site == "Test Pharmacy"


def test_a_sealed_job_passes_every_reader(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert read_job(job).prescription.id == "RX-TEST-1"
    code, out, _ = run_cli(capsys, "gcode", "check", job)
    assert code == 0 and "ok" in out
    code, out, _ = run_cli(capsys, "key", "verify", job, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["ok"] and shown["signer"]["fingerprint"] == load_site_key().public.fingerprint
    assert shown["files"] == ["job.gcode", "preview.html", "tablets.3mf"]


def test_force_may_replace_a_sealed_job(job: Path, tmp_path: Path) -> None:
    assert replaceable_problem(_copy(job, tmp_path)) is None


# The attacks: each one is refused, exit 2, nothing sent, no record


def test_a_consistent_forgery_of_the_dose_is_refused_by_the_seal_alone(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)
    _forge_double_dose(copy)
    # Every check beneath the seal agrees with the forgery: hashes, header, doses.
    forged = read_job(copy, check_seal=False)
    lines = split_lines((copy / "job.gcode").read_text(encoding="utf-8"))
    assert verify_job(read_gcode(lines), forged, read_header(lines)).ok
    _refused_everywhere(copy, tmp_path, capsys, "job.json was changed after compile")


def test_a_dose_changed_in_job_json_with_every_hash_rewritten_is_refused(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)

    def edit(d: dict[str, Any]) -> None:
        d["tablets"][0]["actives"][0]["dose_mg"] = 150.0
        d["gcode"]["sha256"] = sha256_bytes((copy / "job.gcode").read_bytes())
        d["files"] = {name: sha256_bytes((copy / name).read_bytes()) for name in d["files"]}

    _edit_json(copy, edit)
    _refused_everywhere(copy, tmp_path, capsys, "job.json was changed after compile")


def test_changed_gcode_with_its_hash_rewritten_is_refused(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)
    gcode = copy / "job.gcode"
    gcode.write_text(gcode.read_text(encoding="utf-8") + "G1 X1 E5\n", encoding="utf-8")
    _edit_json(copy, lambda d: d["gcode"].update(sha256=sha256_bytes(gcode.read_bytes())))
    _refused_everywhere(copy, tmp_path, capsys, "job.json was changed after compile")


def test_a_job_without_its_seal_is_refused(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)
    (copy / SEAL_FILE).unlink()
    _refused_everywhere(copy, tmp_path, capsys, "is missing: the job is not sealed")


def test_a_forgery_sealed_by_the_attackers_own_key_is_refused_naming_it(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)
    _forge_double_dose(copy)
    mallory = create_site_key(tmp_path / "mallory.pem", "Test Pharmacy").key
    (copy / SEAL_FILE).write_bytes(make_seal((copy / "job.json").read_bytes(), mallory))
    _refused_everywhere(copy, tmp_path, capsys, mallory.public.fingerprint)
    _, _, err = run_cli(capsys, "gcode", "check", copy)
    assert "does not trust" in err and "doseprint key trust" in err


def test_a_seal_claiming_the_site_key_but_signed_by_another_is_refused(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(job, tmp_path)
    _forge_double_dose(copy)
    mallory = create_site_key(tmp_path / "mallory.pem").key
    data = (copy / "job.json").read_bytes()
    seal = json.loads(make_seal(data, mallory))
    site = load_site_key().public
    seal.update(public_key=site.base64, fingerprint=site.fingerprint)
    (copy / SEAL_FILE).write_text(json.dumps(seal), encoding="utf-8")
    _refused_everywhere(copy, tmp_path, capsys, "signature does not verify")


def test_a_seal_whose_fingerprint_was_swapped_is_refused(job: Path, tmp_path: Path) -> None:
    copy = _copy(job, tmp_path)
    seal = json.loads((copy / SEAL_FILE).read_text(encoding="utf-8"))
    seal["fingerprint"] = "0" * 64
    (copy / SEAL_FILE).write_text(json.dumps(seal), encoding="utf-8")
    assert "not that of its public key" in _print_refused(copy, tmp_path).message


# Other sites, rotation


def test_a_job_from_another_site_verifies_once_its_key_is_trusted(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], elsewhere: Path
) -> None:
    # Here the run's key is another site's: its jobs are refused, its fingerprint named.
    other = load_site_key(TEST_KEY).public
    code, _, err = run_cli(capsys, "gcode", "check", job)
    assert code == 2 and other.fingerprint in err and "Test Pharmacy" in err
    # That site exports its public key; this one trusts it.
    exported = tmp_path / "test-pharmacy.pub.json"
    code, _, _ = run_cli(capsys, "key", "export-public", "--key", TEST_KEY, "--out", exported)
    assert code == 0
    code, out, _ = run_cli(capsys, "key", "trust", exported, "--name", "Main Street")
    assert code == 0 and other.fingerprint in out
    code, out, _ = run_cli(capsys, "gcode", "check", job)
    assert code == 0, out
    code, out, _ = run_cli(capsys, "key", "verify", job)
    assert code == 0 and "Main Street" in out and "trusted key" in out
    code, out, _ = run_cli(capsys, "key", "list", "--json")
    roles = {(r["role"], r["site"]) for r in json.loads(out)}
    assert roles == {("site", "Elsewhere"), ("trusted", "Main Street")}


def test_a_pem_public_key_can_be_trusted(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], elsewhere: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = load_site_key(TEST_KEY).private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(pem)
    code, _, _ = run_cli(capsys, "key", "trust", tmp_path / "other.pem", "--name", "Other")
    assert code == 0
    assert verify_job_seal(job).signer.site == "Other"


def test_rotation_keeps_the_old_key_and_its_jobs_verify(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], elsewhere: Path
) -> None:
    copy = _copy(job, tmp_path)
    old = load_site_key()
    (copy / SEAL_FILE).write_bytes(make_seal((copy / "job.json").read_bytes(), old))
    assert verify_job_seal(copy).trusted_as == "this site's key"
    code, out, _ = run_cli(capsys, "key", "init", "--force", "--json")
    assert code == 0
    made = json.loads(out)
    new = load_site_key()
    assert new.public.fingerprint == made["fingerprint"] != old.public.fingerprint
    assert new.public.site == "Elsewhere"  # the name is kept unless --site renames it
    backup = Path(made["backup"])
    assert backup.parent == elsewhere and "retired" in backup.name
    assert load_site_key(backup).public.raw == old.public.raw
    # The old key's jobs still verify: its public half is trusted now.
    check = verify_job_seal(copy)
    assert check.signer.fingerprint == old.public.fingerprint
    assert check.trusted_as.startswith("trusted key")
    code, _, err = run_cli(capsys, "gcode", "check", copy)
    assert code == 0, err


# The key itself


def test_the_private_key_is_readable_by_its_owner_only(elsewhere: Path) -> None:
    path = key_path()
    assert path == elsewhere / "site-key.pem"
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in path.read_bytes()
    assert b"PRIVATE" not in (elsewhere / "site-key.pub.json").read_bytes()


def test_init_without_force_on_an_existing_key_changes_nothing(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, "key", "init", "--site", "Other")
    assert code == 2 and "exists already" in err and "--force" in err
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir() if p.is_file()} == before
    assert not (elsewhere / "trusted-keys").exists()


def test_show_without_a_key_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "none.pem"))
    code, _, err = run_cli(capsys, "key", "show")
    assert code == 2 and "doseprint key init" in err


def test_compile_makes_the_site_key_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "cfg" / "site-key.pem"))
    with caplog.at_level(logging.WARNING):
        key = site_key_for_compile()
    assert key.path.exists() and key.public.fingerprint in caplog.text
    assert site_key_for_compile().public.raw == key.public.raw  # made once


def test_a_broken_trusted_key_file_is_named(
    job: Path, tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (elsewhere / "trusted-keys").mkdir()
    (elsewhere / "trusted-keys" / "junk.json").write_text("{}", encoding="utf-8")
    code, _, err = run_cli(capsys, "gcode", "check", job)
    assert code == 2 and "junk.json" in err


def test_an_altered_public_key_file_is_refused(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "site.pub.json"
    assert run_cli(capsys, "key", "export-public", "--out", exported)[0] == 0
    data = json.loads(exported.read_text(encoding="utf-8"))
    data["public_key"] = load_site_key(TEST_KEY).public.base64
    exported.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = run_cli(capsys, "key", "trust", exported)
    assert code == 2 and "fingerprint" in err
    assert load_trust().trusted == ()


# The tests' own keys


def test_the_tests_never_use_the_users_keys() -> None:
    assert key_path() == TEST_KEY != default_key_path()


def test_a_child_process_uses_the_tests_key() -> None:
    done = subprocess.run([sys.executable, "-m", "doseprint", "key", "show", "--json"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fingerprint"] == load_site_key(TEST_KEY).public.fingerprint


def test_an_account_that_cannot_read_the_private_key_verifies_with_its_public_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A technician's account may print without being able to read the key that seals.
    key = tmp_path / "site-key.pem"
    made = create_site_key(key, site="Ward 3")
    readable = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        return False if Path(path) == key else readable(path, mode, **kw)

    monkeypatch.setattr("doseprint.job.keys.os.access", access)
    trust = load_trust(key, tmp_path / "trusted")
    assert trust.own is not None and trust.own.fingerprint == made.key.public.fingerprint
