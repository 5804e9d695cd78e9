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


def doseprint(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "doseprint", *args]
    print("$ doseprint " + " ".join(args), flush=True)
    return subprocess.run(cmd, check=True, text=True, env=ENV,  # type: ignore[call-overload]
                          **kwargs)


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
    for rx in sorted(HERE.glob("*.toml")) + sorted(HERE.glob("*.json")):
        doseprint("compile", str(rx), "--printer", printer_for(rx), "--out", str(OUT / rx.stem))
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
                  "--operator", "Demo Pharmacist", "--lot", "T0=DEMO-LOT-1")
    finally:
        printer.terminate()
        printer.wait(timeout=10)
    listing = doseprint("record", "list", "--db", db, "--json", capture_output=True)
    record_id = json.loads(listing.stdout)[-1]["id"]
    doseprint("record", "list", "--db", db)
    doseprint("record", "show", record_id, "--db", db)
    print(f"\nJob folders, the printer's log, the record store and the demo's site key are "
          f"in {OUT}/; open {OUT / PRINTED / 'preview.html'} for the clinician's preview.")


if __name__ == "__main__":
    main()
