"""Verify a program from its own text: dose per tablet and API, temperatures, bounds.

This is the pipeline's independent check: it reads the G-code back the way a printer
executes it (:mod:`doseprint.gcode.reader`), never the planner's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from doseprint.errors import DoseCheckError, InputError
from doseprint.gcode.header import GcodeHeader, read_header
from doseprint.gcode.reader import GcodeReading, dose_mg, read_gcode_file
from doseprint.gcode.tokens import split_lines
from doseprint.job.folder import read_job
from doseprint.job.manifest import JobManifest
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.tolerances import tol
from doseprint.typed import FLAVORS


class DoseMaterial(Protocol):
    """What the dose rule needs of the material in a tool: a
    :class:`~doseprint.models.formulation.Formulation` at compile time, a job.json
    :class:`~doseprint.job.manifest.ToolEntry` when a job folder is checked again."""

    @property
    def filament_diameter_mm(self) -> float: ...
    @property
    def density_g_cm3(self) -> float: ...
    @property
    def drug_loading(self) -> float: ...
    @property
    def drug_free(self) -> bool: ...


@dataclass(frozen=True)
class DoseCheck:
    """One tablet's dose of one API: prescribed, read from G-code, and the error.

    ``gcode_mg`` is the dose as job.md computes it from the filament fed (E × area ×
    density × loading). A flow calibration does not change it: the printer's own flow
    factor (``M221``) corrects what it lays, so the E in the file stays the dose.
    """

    tablet: int
    api: str
    tool: int
    prescribed_mg: float
    gcode_mg: float
    filament_mm: float

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.gcode_mg - self.prescribed_mg) / self.prescribed_mg

    @property
    def ok(self) -> bool:
        return abs(self.gcode_mg - self.prescribed_mg) <= tol.dose_rel * self.prescribed_mg


@dataclass(frozen=True)
class Verification:
    doses: tuple[DoseCheck, ...]
    problems: tuple[str, ...]
    """Every failure: doses beyond tolerance, stray drug, temperatures, bounds."""
    other_problems: tuple[str, ...] = ()
    """The failures that are not a dose beyond tolerance (those are in ``doses``)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_reading(
    reading: GcodeReading,
    expected: Sequence[tuple[int, str, int, float]],
    tools: Sequence[DoseMaterial],
    profile: PrinterProfile | None,
    multipliers: Sequence[float] | None = None,
) -> Verification:
    """Compare a reading of the G-code with what the job promises.

    Compile runs it before it writes a job; ``gcode check`` and ``print`` run it again on
    the job folder (:func:`verify_job`), so the three can never judge a dose differently.

    Parameters
    ----------
    reading : GcodeReading
        The program as the reader saw it.
    expected : sequence of (tablet, api, tool, dose_mg)
        Every tablet's prescribed dose of every API and the tool that lays it.
    tools : sequence of DoseMaterial
        ``tools[k]`` is loaded in tool *k*.
    profile : PrinterProfile or None
        Limits: bed, ``max_z_mm``, temperatures (checked against each tool's
        ``max_temp_c`` where ``tools`` are formulations); None checks the doses only.
    multipliers : sequence of float, optional
        Each tool's flow calibration (1 when None): the flow factor that must be in force
        whenever the tool extrudes into a tablet (:func:`flow_problems`).
    """
    problems: list[str] = []
    checks = []
    expected_keys = set()
    for tablet, api, tool, prescribed in expected:
        f = tools[tool]
        length = reading.filament_mm.get((tablet, tool), 0.0)
        got = dose_mg(length, f.filament_diameter_mm, f.density_g_cm3, f.drug_loading)
        check = DoseCheck(tablet, api, tool, prescribed, got, length)
        checks.append(check)
        expected_keys.add((tablet, tool))
        if not check.ok:
            problems.append(f"tablet {tablet}: {api} from the G-code is {got:.3f} mg, "
                            f"prescribed {prescribed:g} mg ({check.error_pct:+.2f} %, "
                            f"tolerance ±{100 * tol.dose_rel:g} %)")
    others = flow_problems(reading, multipliers or [1.0] * len(tools))
    for (section, tool), length in reading.filament_mm.items():
        if section is None or (section, tool) in expected_keys or abs(length) < 1e-6:
            continue
        if tool < len(tools) and tools[tool].drug_free:
            continue  # a drug-free shell or barrier carries no dose
        others.append(f"tablet {section}: tool T{tool} feeds {length:.4f} mm of filament "
                      "that no prescription line accounts for")
    if profile is not None:
        others += _limits(reading, [t for t in tools if isinstance(t, Formulation)], profile)
    return Verification(tuple(checks), tuple(problems + others), tuple(others))


def verify_job(reading: GcodeReading, manifest: JobManifest,
               header: GcodeHeader) -> Verification:
    """:func:`verify_reading` of a job folder's G-code against the prescription its own
    header carries, which must be the manifest's (:func:`header_problems`): every tablet's
    dose of every API, drug no prescription line accounts for, and each tool's flow factor
    against its calibration (job.json ``extrusion_multiplier``).

    The doses are compared with the header's dose lines, so a job.json whose doses were
    changed after compile fails on the header's disagreement, and a G-code whose moves
    were changed fails on the dose, whatever job.json says."""
    mismatch = header_problems(header, manifest)
    verification = verify_reading(reading, header.expected_doses(), manifest.tools, None,
                                  [t.extrusion_multiplier for t in manifest.tools])
    if not mismatch:
        return verification
    return Verification(verification.doses, (*mismatch, *verification.problems),
                        (*mismatch, *verification.other_problems))


def header_problems(header: GcodeHeader, manifest: JobManifest) -> list[str]:
    """Where the G-code's header (:mod:`doseprint.gcode.header`) and job.json disagree:
    prescription id and hash, patient reference, printer id and hash, each tool's
    formulation and hash, and the prescribed dose of every tablet and API. Empty when
    they agree."""
    problems = []

    def differs(what: str, in_header: object, in_manifest: object) -> None:
        if in_header != in_manifest:
            shown = "nothing" if in_header is None else repr(in_header)
            problems.append(f"the G-code's header names {shown} as the {what}; job.json "
                            f"says {in_manifest!r}")

    differs("prescription", header.prescription_id, manifest.prescription.id)
    differs("prescription's SHA-256", header.prescription_sha256, manifest.prescription.sha256)
    differs("patient reference", header.patient, manifest.prescription.patient or None)
    differs("printer", header.printer_id, manifest.printer.id)
    differs("printer profile's SHA-256", header.printer_sha256, manifest.printer.sha256)
    header_tools = [(t.tool, t.formulation, t.sha256) for t in header.tools]
    manifest_tools = [(t.tool, t.formulation, t.formulation_sha256) for t in manifest.tools]
    if header_tools != manifest_tools:
        problems.append(f"the G-code's header loads {_tools(header_tools)}; job.json "
                        f"loads {_tools(manifest_tools)}")
    if not header.doses:
        problems.append("the G-code's header carries no dose lines, so the G-code does not "
                        "say what it was compiled to deliver (a job compiled before the "
                        "header carried them, or one whose header was removed)")
    else:
        in_header = sorted(header.expected_doses())
        in_manifest = sorted(manifest.expected_doses())
        if in_header != in_manifest:
            extra = [d for d in in_header if d not in in_manifest]
            missing = [d for d in in_manifest if d not in in_header]
            problems.append("the G-code's header and job.json prescribe different doses: "
                            + "; ".join([*(f"header only: {_dose(d)}" for d in extra),
                                         *(f"job.json only: {_dose(d)}" for d in missing)]))
    return problems


def _tools(tools: Sequence[tuple[int, str, str]]) -> str:
    return ", ".join(f"T{k} {fid} ({sha[:12]}…)" for k, fid, sha in tools) or "no tools"


def _dose(dose: tuple[int, str, int, float]) -> str:
    tablet, api, tool, mg = dose
    return f"tablet {tablet} T{tool} {api} {mg:g} mg"


def verify_job_folder(job_dir: Path) -> Verification:
    """:func:`verify_job` of a job folder as written (``doseprint gcode check``): its
    G-code, read back, against its job.json, the same check compile ran before it wrote
    the job. Only the commands of the printer's firmware (job.json ``printer.flavor``)
    are accepted (:mod:`doseprint.gcode.commands`).

    Raises
    ------
    InputError
        The folder holds no readable job, or its G-code a line the reader refuses.
    """
    job = read_job(job_dir, check_hashes=False)
    path = job_dir / job.gcode.file
    flavor = job.printer.flavor if job.printer.flavor in FLAVORS else None
    reading = read_gcode_file(path, flavor=flavor)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the G-code file: {exc.strerror or exc}",
                         file=str(path)) from exc
    return verify_job(reading, job, read_header(split_lines(text)))


def dose_check_error(verification: Verification, job_dir: Path) -> DoseCheckError | None:
    """The error a job folder's failed check is reported with (None when it passed):
    every dose beyond tolerance, then every other problem."""
    failed = [f"tablet {c.tablet}: {c.api} {c.gcode_mg:.3f} mg from the G-code, prescribed "
              f"{c.prescribed_mg:g} mg ({c.error_pct:+.2f} %)"
              for c in verification.doses if not c.ok]
    failed += verification.other_problems
    if not failed:
        return None
    return DoseCheckError(f"{job_dir / 'job.gcode'}: dose check failed (tolerance "
                          f"±{100 * tol.dose_rel:g} %):", details=failed,
                          hint="compile the prescription again; do not print this job")


def limit_problems(
    reading: GcodeReading, tools: Sequence[Formulation], profile: PrinterProfile
) -> list[str]:
    """Every temperature above the printer's or a loaded material's limit, and every move
    outside the bed or ``0..max_z_mm``, as messages (empty when all is well)."""
    return _limits(reading, tools, profile)


def _limits(
    reading: GcodeReading, tools: Sequence[Formulation], profile: PrinterProfile
) -> list[str]:
    problems = []
    for tool, temp in sorted(reading.nozzle_temps_c.items()):
        limits = [profile.max_nozzle_temp_c]
        if tool < len(tools):
            limits.append(tools[tool].max_temp_c)
        if temp > min(limits):
            problems.append(f"T{tool} is heated to {temp:g} °C, above {min(limits):g} °C")
    if reading.max_nozzle_temp_c > profile.max_nozzle_temp_c:
        problems.append(f"a nozzle is heated to {reading.max_nozzle_temp_c:g} °C, above the "
                        f"printer's max_nozzle_temp_c = {profile.max_nozzle_temp_c:g} °C")
    problems += _cold_extrusion(reading, tools, profile)
    bed_limit = min([profile.max_bed_temp_c] + [f.max_temp_c for f in tools])
    if reading.max_bed_temp_c > bed_limit:
        problems.append(f"the bed is heated to {reading.max_bed_temp_c:g} °C, above "
                        f"{bed_limit:g} °C")
    if reading.bounds_mm is not None:
        (x0, x1), (y0, y1), (z0, z1) = reading.bounds_mm
        if profile.origin == "center":
            bx = (-profile.bed_mm[0] / 2, profile.bed_mm[0] / 2)
            by = (-profile.bed_mm[1] / 2, profile.bed_mm[1] / 2)
        else:
            bx, by = (0.0, profile.bed_mm[0]), (0.0, profile.bed_mm[1])
        eps = 1e-6
        if x0 < bx[0] - eps or x1 > bx[1] + eps or y0 < by[0] - eps or y1 > by[1] + eps:
            problems.append(f"moves reach X {x0:g}..{x1:g}, Y {y0:g}..{y1:g}, outside the bed "
                            f"X {bx[0]:g}..{bx[1]:g}, Y {by[0]:g}..{by[1]:g}")
        if z1 > profile.max_z_mm + eps or z0 < -eps:
            problems.append(f"moves reach Z {z0:g}..{z1:g}, outside 0..{profile.max_z_mm:g}")
    return problems


def flow_problems(reading: GcodeReading, multipliers: Sequence[float]) -> list[str]:
    """Tools that extruded into tablets under a flow factor (``M221``) other than their
    flow calibration's (100 % for an uncalibrated tool): the E values would then not be
    what the printer lays."""
    problems = []
    for tool, found in sorted(reading.tablet_flow_percent.items()):
        k = multipliers[tool] if tool < len(multipliers) else 1.0
        want = round(100.0 * k, 2)
        if any(abs(f - want) > 0.006 for f in found):
            problems.append(f"T{tool} extrudes into tablets at flow "
                            f"{', '.join(f'{f:g} %' for f in sorted(found))}; its flow "
                            f"calibration is {want:g} %")
    return problems


def _cold_extrusion(
    reading: GcodeReading, tools: Sequence[Formulation], profile: PrinterProfile
) -> list[str]:
    """Every tool that feeds filament under a minimum extrusion temperature its
    formulation does not clear by ``tol.extrude_temp_margin_c``: the limit set by the
    program's ``M302 S``, or the profile's ``min_extrude_temp_c`` before any."""
    problems = []
    for tool, limits in sorted(reading.extrude_limits_c.items()):
        if tool >= len(tools) or not limits:
            continue
        strictest = max(profile.min_extrude_temp_c if v is None else v for v in limits)
        f = tools[tool]
        if f.nozzle_temp_c < strictest + tol.extrude_temp_margin_c:
            whose = ("the firmware's (min_extrude_temp_c)"
                     if strictest == profile.min_extrude_temp_c and None in limits
                     else "set by M302 S")
            problems.append(
                f"T{tool} feeds filament where the minimum extrusion temperature is "
                f"{strictest:g} °C ({whose}), but {f.id} prints at {f.nozzle_temp_c:g} °C, "
                f"less than {tol.extrude_temp_margin_c:g} °C above it: the firmware would "
                "refuse to extrude")
    return problems
