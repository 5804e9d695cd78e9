"""Flow calibration by weighing: one extrusion multiplier per printer and formulation.

A printer feeds filament by its E steps; what it lays differs from what the G-code asks
for by a few per cent (filament diameter, extruder gear, melt). The calibration prints a
few solid discs of known volume, the pharmacist weighs them, and

    k = nominal mass / mean weighed mass        (the extrusion multiplier)

A printer that lays 3 % too much weighs 1.03 × nominal, so k = 1/1.03. Every later job
for that printer and formulation sets the firmware's flow factor to k (``M221 S97.09``
when the tool is selected, reset to 100 at the end; :func:`doseprint.gcode.render.
flow_command`), and the E values stay the prescription's filament: the dose read from
the G-code by job.md's rule is the dose the printer lays, so any reader of the file
agrees with the prescription. The job's own check also requires that no other flow
factor is in force while a tool lays tablets (:func:`doseprint.job.verify.flow_problems`).

The multipliers live in one JSON file (``--calibrations``, ``DOSEPRINT_CALIBRATIONS``,
default ``calibrations.json`` in the user's data directory, beside the record store),
keyed by printer id and formulation id together with both files' SHA-256: a changed
profile or formulation makes its calibration stale, which compile reports and ignores.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
import shapely

from doseprint import __version__
from doseprint.errors import DoseCheckError, InputError, Problem
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.render import render_gcode
from doseprint.gcode.tokens import split_lines
from doseprint.job.atomic import write_file_atomic
from doseprint.job.folder import sha256_bytes
from doseprint.job.keys import Trust
from doseprint.job.manifest import FLOW_JOB_SCHEMA
from doseprint.job.prepare import prepare
from doseprint.job.seal import check_seal as seal_check
from doseprint.job.verify import limit_problems
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.fill import perimeters, rectilinear
from doseprint.slicer.plan import SliceSettings
from doseprint.slicer.plate import place_tablets
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads

CALIBRATIONS_SCHEMA = "doseprint.calibrations/1"
CALIBRATIONS_ENV = "DOSEPRINT_CALIBRATIONS"

DISCS = 3
"""Discs in a calibration job: three weighings average out one bad part."""

DISC_DIAMETER_MM = 15.0
DISC_HEIGHT_MM = 3.0
"""A solid disc of about 530 mm³ (some 600 mg): a 0.1 mg balance resolves 0.02 %."""

MULTIPLIER_RANGE = (0.85, 1.15)
"""A multiplier outside this range means a wrong material, a slipping extruder or a
typing error, not a calibration."""

MASS_CHECK_REL = 0.005
"""The calibration G-code, read back, must carry each disc's nominal mass this closely."""


@dataclass(frozen=True)
class FlowCalibration:
    """One stored multiplier and where it comes from."""

    printer: str
    printer_sha256: str
    formulation: str
    formulation_sha256: str
    multiplier: float
    nominal_mass_mg: float
    masses_mg: tuple[float, ...]
    calibrated_utc: str
    calibration_job_sha256: str
    file: str = ""

    def to_json(self) -> dict[str, Any]:
        """The entry as stored (without ``file``)."""
        return {"printer": self.printer, "printer_sha256": self.printer_sha256,
                "formulation": self.formulation,
                "formulation_sha256": self.formulation_sha256,
                "extrusion_multiplier": self.multiplier,
                "nominal_mass_mg": self.nominal_mass_mg, "masses_mg": list(self.masses_mg),
                "calibrated_utc": self.calibrated_utc,
                "calibration_job_gcode_sha256": self.calibration_job_sha256}


def default_calibrations_path() -> Path:
    """``DOSEPRINT_CALIBRATIONS`` if set, else ``calibrations.json`` in the user's data
    directory (where the record store keeps ``records.sqlite``)."""
    env = os.environ.get(CALIBRATIONS_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("doseprint", appauthor=False)) / "calibrations.json"


# The calibration job ------------------------------------------------------------------


def _disc_toolpaths(
    index: int, formulation: Formulation, settings: SliceSettings, layers: int
) -> tuple[CompartmentToolpaths, float]:
    """One solid disc sliced like a tablet: its toolpaths and its exact volume (mm³)."""
    region = shapely.Point(0.0, 0.0).buffer(DISC_DIAMETER_MM / 2.0, quad_segs=32)
    out = []
    z = 0.0
    for n in range(layers):
        height = settings.first_layer_mm if n == 0 else settings.layer_mm
        z += height
        roads, inner = perimeters(region, settings.width_mm, height, settings.perimeters)
        roads += rectilinear(inner, settings.width_mm, height, 45.0 if n % 2 == 0 else 135.0)
        out.append(LayerRoads(n, round(z, 6), height, settings.width_mm, tuple(roads)))
    volume = float(region.area) * z
    return CompartmentToolpaths(index, formulation.api, 0, tuple(out), volume), volume


def make_flow_job(profile: PrinterProfile, formulation: Formulation) -> dict[str, bytes]:
    """A calibration job's files: ``job.gcode`` (``DISCS`` solid discs of ``formulation``,
    sliced and rendered like any job, extrusion multiplier 1) and ``job.json`` (a
    manifest with each disc's nominal mass, the profile's and formulation's hashes).

    Raises
    ------
    InputError
        The filament does not match the printer, or a temperature exceeds a limit.
    DoseCheckError
        The G-code, read back, does not carry the nominal masses (a bug).
    """
    prepared = prepare(profile)
    prepared.check_filament([formulation])
    settings = prepared.settings
    layers = 1 + max(1, round((DISC_HEIGHT_MM - settings.first_layer_mm) / settings.layer_mm))
    discs = [_disc_toolpaths(i, formulation, settings, layers) for i in range(DISCS)]
    plate = place_tablets(profile, [DISC_DIAMETER_MM] * DISCS, "--printer")
    header = [f"flow calibration: {DISCS} discs of {formulation.id}",
              f"printer {profile.id} sha256 {profile.sha256}",
              f"tool T0 formulation {formulation.id} sha256 {formulation.sha256}"]
    program = render_gcode(profile, [formulation], plate, [(p,) for p, _ in discs], header)
    reading = read_gcode(split_lines(program.text), source="job.gcode", flavor=profile.flavor)
    area = math.pi * formulation.filament_diameter_mm**2 / 4.0
    problems = limit_problems(reading, [formulation], profile)
    objects = []
    for (paths, volume), center in zip(discs, plate.centers_mm, strict=True):
        nominal = volume * formulation.density_g_cm3  # g/cm³ = mg/mm³
        fed = reading.filament_mm.get((paths.tablet, 0), 0.0) * area * formulation.density_g_cm3
        if abs(fed - nominal) > MASS_CHECK_REL * nominal:
            problems.append(f"disc {paths.tablet}: the G-code feeds {fed:.2f} mg, "
                            f"nominal {nominal:.2f} mg")
        objects.append({"index": paths.tablet, "shape": "disc",
                        "center_mm": [round(center[0], 3), round(center[1], 3)],
                        "diameter_mm": DISC_DIAMETER_MM,
                        "height_mm": round(paths.layers[-1].z_mm, 4), "layers": layers,
                        "volume_mm3": round(volume, 4), "nominal_mass_mg": round(nominal, 4),
                        "gcode_mass_mg": round(fed, 4),
                        "flow_multiplier": round(paths.flow_multiplier, 5)})
    if problems:
        raise DoseCheckError("the calibration G-code, read back, fails its checks:",
                             details=problems)
    gcode = program.text.encode()
    manifest = {
        "schema": FLOW_JOB_SCHEMA, "doseprint_version": __version__,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "printer": {"id": profile.id, "sha256": profile.sha256},
        "formulation": {"id": formulation.id, "sha256": formulation.sha256,
                        "density_g_cm3": formulation.density_g_cm3,
                        "filament_diameter_mm": formulation.filament_diameter_mm},
        "extrusion_multiplier_used": 1.0,
        "nominal_mass_mg": objects[0]["nominal_mass_mg"],
        "objects": objects,
        "gcode": {"file": "job.gcode", "sha256": sha256_bytes(gcode), "lines": program.lines,
                  "estimated_print_s": program.estimated_print_s},
        "instructions": f"print job.gcode with the multiplier in force set to 1, let the "
                        f"{DISCS} discs cool, weigh each to 0.1 mg and run: doseprint "
                        f"calibrate flow --printer {profile.id} --formulation "
                        f"{formulation.id} --job <this folder> --mass-mg M1 M2 M3",
    }
    return {"job.gcode": gcode,
            "job.json": (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()}


def read_flow_job(
    job: Path | str, *, check_seal: bool = True, trust: Trust | None = None
) -> dict[str, Any]:
    """A calibration job's manifest (``JOB/job.json`` or the file itself), checked: with
    ``check_seal`` its seal (``job.seal`` beside it) must verify by this site's key or a
    trusted one, since its nominal mass sets every later dose's flow factor.

    Raises
    ------
    InputError
        Missing, not a calibration job, or its G-code differs from the one it describes.
    JobSealError
        The seal is missing, does not match job.json, or is not by a trusted key.
    """
    path = Path(job)
    folder = path if path.is_dir() else path.parent
    manifest_path = path / "job.json" if path.is_dir() else path
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=str(manifest_path), key="--job") from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=str(manifest_path),
                         key="--job") from None
    if check_seal:
        seal_check(folder, raw, trust)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"is not a readable JSON manifest ({exc})", file=str(manifest_path),
                         key="--job") from None
    if not isinstance(data, dict) or data.get("schema") != FLOW_JOB_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise InputError(f"is {found!r}; a calibration job made by `doseprint calibrate "
                         f"flow --out` has schema {FLOW_JOB_SCHEMA!r}",
                         file=str(manifest_path), key="schema")
    try:
        nominal = float(data["nominal_mass_mg"])
        gcode = data["gcode"]
        _ = (data["printer"]["id"], data["printer"]["sha256"],
             data["formulation"]["id"], data["formulation"]["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"lacks {exc}", file=str(manifest_path), key="nominal_mass_mg") from None
    if not math.isfinite(nominal) or nominal <= 0.0:
        raise InputError(f"is {nominal!r}; must be a positive mass", file=str(manifest_path),
                         key="nominal_mass_mg")
    gcode_path = folder / str(gcode.get("file", "job.gcode"))
    if gcode_path.is_file() and sha256_bytes(gcode_path.read_bytes()) != gcode.get("sha256"):
        raise InputError(f"{gcode_path.name} is not the G-code this manifest describes "
                         "(its SHA-256 differs)", file=str(manifest_path), key="gcode.sha256")
    data["_path"] = str(manifest_path)
    return data


# Computing and storing -----------------------------------------------------------------


def compute_flow_calibration(
    manifest: Mapping[str, Any],
    profile: PrinterProfile,
    formulation: Formulation,
    masses_mg: Sequence[float],
) -> FlowCalibration:
    """The multiplier ``nominal / mean(masses)`` from a calibration job and its weighings.

    Raises
    ------
    InputError
        No mass, a mass that is not positive or implies a multiplier outside
        :data:`MULTIPLIER_RANGE` (``--mass-mg`` named), or a job made for another printer
        or formulation, or with other versions of their files.
    """
    source = str(manifest.get("_path", "--job"))
    problems: list[Problem] = []
    for key, ours, what in (("printer", profile, "--printer"),
                            ("formulation", formulation, "--formulation")):
        made = manifest[key]
        if made["id"] != ours.id:
            problems.append(Problem(source, f"{key}.id", f"is {made['id']!r} but {what} is "
                                    f"{ours.id!r}; weigh a job made for this {key}"))
        elif made["sha256"] != ours.sha256:
            problems.append(Problem(source, f"{key}.sha256",
                                    f"{ours.id}'s file ({ours.path}) changed since this "
                                    "calibration job was made: make and print a new one"))
    nominal = float(manifest["nominal_mass_mg"])
    if not masses_mg:
        problems.append(Problem("command line", "--mass-mg", "give the weighed mass of "
                                "each disc in mg"))
    low, high = MULTIPLIER_RANGE
    for i, m in enumerate(masses_mg):
        if not math.isfinite(m) or m <= 0.0:
            problems.append(Problem("command line", f"--mass-mg[{i}]",
                                    f"is {m:g}; a weighed mass is a positive number of mg"))
        elif not low <= nominal / m <= high:
            problems.append(Problem("command line", f"--mass-mg[{i}]",
                                    f"is {m:g} mg against a nominal {nominal:.1f} mg "
                                    f"(multiplier {nominal / m:.3f}, allowed {low:g}..{high:g})"
                                    ": check the balance, the material and the extruder"))
    if problems:
        raise InputError(problems)
    mean = sum(masses_mg) / len(masses_mg)
    return FlowCalibration(
        printer=profile.id, printer_sha256=profile.sha256, formulation=formulation.id,
        formulation_sha256=formulation.sha256, multiplier=round(nominal / mean, 6),
        nominal_mass_mg=nominal, masses_mg=tuple(float(m) for m in masses_mg),
        calibrated_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        calibration_job_sha256=str(manifest["gcode"]["sha256"]),
    )


def _entry(raw: Any, path: Path, i: int) -> FlowCalibration:
    key = f"flow[{i}]"
    if not isinstance(raw, dict):
        raise InputError("must be a table", file=str(path), key=key)
    try:
        k = float(raw["extrusion_multiplier"])
        entry = FlowCalibration(
            printer=str(raw["printer"]), printer_sha256=str(raw["printer_sha256"]),
            formulation=str(raw["formulation"]),
            formulation_sha256=str(raw["formulation_sha256"]), multiplier=k,
            nominal_mass_mg=float(raw["nominal_mass_mg"]),
            masses_mg=tuple(float(m) for m in raw["masses_mg"]),
            calibrated_utc=str(raw["calibrated_utc"]),
            calibration_job_sha256=str(raw.get("calibration_job_gcode_sha256", "")),
            file=str(path))
    except KeyError as exc:
        raise InputError(f"lacks {exc.args[0]}", file=str(path), key=key) from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"has a value of the wrong type ({exc})", file=str(path),
                         key=key) from None
    low, high = MULTIPLIER_RANGE
    if not low <= k <= high:
        raise InputError(f"is {k!r}; allowed {low:g}..{high:g}", file=str(path),
                         key=f"{key}.extrusion_multiplier")
    return entry


def load_calibrations(path: Path | str) -> list[FlowCalibration]:
    """Every stored flow calibration (none when the file does not exist).

    Raises
    ------
    InputError
        The file is not a calibrations file or an entry is malformed (file and key named).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"is not a readable calibrations file ({exc})", file=str(path),
                         key="--calibrations") from None
    if not isinstance(data, dict) or data.get("schema") != CALIBRATIONS_SCHEMA:
        raise InputError(f"must be {CALIBRATIONS_SCHEMA!r}", file=str(path), key="schema")
    flow = data.get("flow", [])
    if not isinstance(flow, list):
        raise InputError("must be a list", file=str(path), key="flow")
    return [_entry(raw, path, i) for i, raw in enumerate(flow)]


def store_flow_calibration(path: Path | str, entry: FlowCalibration) -> None:
    """Add ``entry`` to the calibrations file (replacing the same printer and
    formulation's), written atomically; the folder is made if needed."""
    path = Path(path)
    kept = [e for e in load_calibrations(path)
            if (e.printer, e.formulation) != (entry.printer, entry.formulation)]
    kept.append(entry)
    kept.sort(key=lambda e: (e.printer, e.formulation))
    text = json.dumps({"schema": CALIBRATIONS_SCHEMA, "flow": [e.to_json() for e in kept]},
                      indent=1, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(path, text.encode("utf-8"))


def find_flow_calibration(
    path: Path | str | None, profile: PrinterProfile, formulation: Formulation
) -> tuple[FlowCalibration | None, str | None]:
    """The calibration that applies to ``formulation`` on ``profile``, and a warning when
    one exists but was made with other versions of their files (then it is not applied).
    """
    if path is None:
        return None, None
    for e in load_calibrations(path):
        if (e.printer, e.formulation) != (profile.id, formulation.id):
            continue
        if (e.printer_sha256, e.formulation_sha256) != (profile.sha256, formulation.sha256):
            return None, (f"the flow calibration of {formulation.id} on {profile.id} "
                          f"({e.calibrated_utc}) was made with another version of the "
                          "profile or formulation file: not applied; calibrate again")
        return replace(e, file=str(path)), None
    return None, None


__all__ = [
    "CALIBRATIONS_ENV",
    "FlowCalibration",
    "compute_flow_calibration",
    "default_calibrations_path",
    "find_flow_calibration",
    "load_calibrations",
    "make_flow_job",
    "read_flow_job",
    "store_flow_calibration",
]
