"""`make demo`: compile every example prescription, print one on the virtual printer over a
pseudo-terminal, and show its batch record. Everything goes to ./demo-out/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "demo-out"
PRINTED = "hydrochlorothiazide-immediate"


# The demo seals its jobs with a site key of its own, kept in demo-out/ and never in the
# user's configuration folder.
ENV = {**os.environ, "DOSEPRINT_KEY": str(OUT / "keys" / "site-key.pem"),
       "DOSEPRINT_TRUSTED_KEYS": str(OUT / "keys" / "trusted-keys")}


# The demo pharmacy's people. A real site types passwords at a hidden prompt; the demo
# signs non-interactively, as automation does, with each password on a line of stdin.
PEOPLE = [
    ("admin", "A. Admin", "admin", "demo-admin-pass"),
    ("tech", "T. Technician", "technician", "demo-tech-pass"),
    ("pharm", "P. Pharmacist", "pharmacist", "demo-pharm-pass"),
    ("qa", "Q. Quality", "quality", "demo-quality-pass"),
]
PASSWORD = {uid: pw for uid, _, _, pw in PEOPLE}


def doseprint(*args: str, passwords: tuple[str, ...] = (),
              **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run one doseprint command; ``passwords`` go to its stdin, one per line, and are
    shown as ``****`` in the echoed command."""
    cmd = [sys.executable, "-m", "doseprint", *args]
    shown = "".join(" <<< " + "****" for _ in passwords[:1])
    print("$ doseprint " + " ".join(args) + shown, flush=True)
    if passwords:
        kwargs["input"] = "".join(f"{p}\n" for p in passwords)
    return subprocess.run(cmd, check=True, text=True, env=ENV,  # type: ignore[call-overload]
                          **kwargs)


def make_people(db: str) -> None:
    """The first account (an administrator's) and, signed by it, the others."""
    uid, name, role, password = PEOPLE[0]
    doseprint("user", "add", uid, "--name", name, "--role", role, "--db", db,
              passwords=(password,))
    for uid, name, role, password in PEOPLE[1:]:
        doseprint("user", "add", uid, "--name", name, "--role", role, "--by", "admin",
                  "--db", db, passwords=(PASSWORD["admin"], password))


def printer_for(rx: Path) -> str:
    """One extruder per active: a polypill goes to the two-extruder printer."""
    text = rx.read_text(encoding="utf-8")
    data = json.loads(text) if rx.suffix == ".json" else tomllib.loads(text)
    return "generic-marlin-2x175" if len(data["actives"]) > 1 else "generic-marlin-1x175"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    db = str(OUT / "records.sqlite")
    doseprint("key", "init", "--site", "Demo Pharmacy")
    make_people(db)
    for rx in sorted(HERE.glob("*.toml")) + sorted(HERE.glob("*.json")):
        doseprint("compile", str(rx), "--printer", printer_for(rx), "--out", str(OUT / rx.stem))
    stock(db, OUT / PRINTED)
    doseprint("key", "verify", str(OUT / PRINTED))
    doseprint("gcode", "check", str(OUT / PRINTED))

    printer = subprocess.Popen(
        [sys.executable, "-m", "doseprint", "virtual-printer", "--pty",
         "--log", str(OUT / "virtual-printer.log")],
        stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert printer.stdout is not None
        device = printer.stdout.readline().strip()
        print(f"virtual printer on {device}", flush=True)
        doseprint("print", str(OUT / PRINTED), "--port", device, "--db", db,
                  "--operator", "tech", "--lot", "T0=DEMO-LOT-1", passwords=(PASSWORD["tech"],))
    finally:
        printer.terminate()
        printer.wait(timeout=10)
    listing = doseprint("record", "list", "--db", db, "--json", capture_output=True)
    record_id = json.loads(listing.stdout)[-1]["id"]
    sign_off(db, record_id)
    doseprint("record", "list", "--db", db)
    doseprint("record", "show", record_id, "--db", db)
    print(f"\nJob folders, the printer's log, the record store and the demo's site key are "
          f"in {OUT}/; open {OUT / PRINTED / 'preview.html'} for the clinician's preview.")


def stock(db: str, job: Path) -> None:
    """Before dispensing: quality approves the formulation the job was compiled from (its
    file's hash) and a technician receives the material lot loaded in the printer."""
    tool = json.loads((job / "job.json").read_text(encoding="utf-8"))["tools"][0]
    doseprint("formulation", "approve", tool["formulation"], "--by", "qa", "--db", db,
              "--meaning", "master formulation record approved for dispensing (demo)",
              passwords=(PASSWORD["qa"],))
    doseprint("lot", "add", "DEMO-LOT-1", "--formulation", tool["formulation"], "--expiry",
              "2099-12-31", "--supplier", "Demo Filaments", "--by", "tech", "--db", db,
              passwords=(PASSWORD["tech"],))


def sign_off(db: str, record_id: str) -> None:
    """Weigh (the demo takes the designed masses: the virtual printer makes no tablets),
    release by a pharmacist who neither printed nor weighed, anchor, verify."""
    targets = json.loads(doseprint("record", "qc", record_id, "--targets", "--json",
                                   "--db", db, capture_output=True).stdout)
    masses = ",".join(f"{t['designed_mg']:.1f}" for t in targets["tablets"])
    doseprint("record", "qc", record_id, "--mass-mg", masses, "--by", "tech", "--db", db,
              passwords=(PASSWORD["tech"],))
    doseprint("record", "release", record_id, "--by", "pharm", "--meaning",
              "released for dispensing (demo)", "--db", db, passwords=(PASSWORD["pharm"],))
    anchor = str(OUT / "anchor.json")
    doseprint("record", "anchor", "export", "--out", anchor, "--by", "qa", "--db", db,
              passwords=(PASSWORD["qa"],))
    doseprint("record", "verify", "--anchor", anchor, "--db", db)


if __name__ == "__main__":
    main()
