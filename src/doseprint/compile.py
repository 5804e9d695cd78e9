"""`doseprint compile`: prescription -> design -> release -> slice -> verify -> job folder."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import trimesh

from doseprint import __version__
from doseprint.design.designed import DesignedTablet
from doseprint.design.designer import design_tablets
from doseprint.errors import (
    DoseCheckError,
    GeometryError,
    InfeasibleDesignError,
    InputError,
    Problem,
    ResultError,
    SlicingError,
)
from doseprint.gcode.header import header_lines
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.render import (
    END_LIFT_MM,
    GcodeProgram,
    PurgeTower,
    bed_temperature_c,
    flow_command,
    min_extrude_temp_c,
    purge_tower,
    render_gcode,
    tool_table,
)
from doseprint.gcode.tokens import split_lines
from doseprint.geometry.layer_voids import LayerVoids
from doseprint.geometry.tablet import TabletDesign, TabletMesh, build_mesh
from doseprint.job.flow_calibration import (
    FlowCalibration,
    find_flow_calibration,
    load_calibrations,
)
from doseprint.job.folder import sha256_bytes, write_job_folder
from doseprint.job.keys import SiteKey, site_key_for_compile
from doseprint.job.manifest import (
    ActiveEntry,
    GcodeEntry,
    JobManifest,
    PrescriptionEntry,
    PrinterEntry,
    ReleaseEntry,
    ShellEntry,
    TabletEntry,
    ToolEntry,
    freeze_json,
)
from doseprint.job.prepare import Prepared, prepare
from doseprint.job.seal import seal_files
from doseprint.job.verify import Verification, verify_reading
from doseprint.library import Library, load_library
from doseprint.models.bead import bead_spacing_mm
from doseprint.models.formulation import Formulation
from doseprint.models.load import check_prescription, load_prescription
from doseprint.models.prescription import Active, Prescription
from doseprint.models.printer import PrinterProfile
from doseprint.release.predict import MODEL_3D, PredictedRelease, predict_3d
from doseprint.release.voxelize import default_pitch_mm
from doseprint.report.preview import named_meshes, render_preview
from doseprint.slicer.plan import SliceSettings, plan_tablet
from doseprint.slicer.plate import Plate, place_tablets
from doseprint.slicer.toolpaths import CompartmentToolpaths
from doseprint.typed import PrintOrder

log = logging.getLogger(__name__)

CONFIRM_CELLS = 20_000
"""Solid cells of the 3D grid when the designer confirms a candidate: a third of the
default, about three times faster, still within 0.01 of Crank's solutions."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompiledJob:
    """Everything a compile produced, before and after it is written."""

    prescription: Prescription
    printer: PrinterProfile
    tools: tuple[Formulation, ...]
    tablets: tuple[DesignedTablet, ...]
    meshes: tuple[TabletMesh, ...]
    toolpaths: tuple[tuple[CompartmentToolpaths, ...], ...]
    program: GcodeProgram
    verification: Verification
    manifest: JobManifest
    files: dict[str, bytes]

    @property
    def job(self) -> dict[str, Any]:
        """The manifest as job.json holds it."""
        return self.manifest.to_json()


def design_and_predict(
    rx: Prescription,
    lib: Library,
    prepared: Prepared,
    say: Progress = lambda _msg: None,
) -> tuple[tuple[DesignedTablet, ...], tuple[TabletMesh, ...]]:
    """Design every tablet, mesh it, and predict its release over the 3D geometry.

    General designs are confirmed during the search (sliced with ``prepared.settings``,
    and predicted with the 3D model on a coarser grid); every final design's release
    comes from the 3D model. ``doseprint release`` calls it as compile does, so the two
    judge a design alike.
    """
    profile, settings = prepared.profile, prepared.settings
    actives = {a.api: a for a in rx.actives}

    def confirm(design: TabletDesign) -> tuple[str | None, tuple[PredictedRelease, ...] | None]:
        # A candidate the fast estimates accept is sliced (the beads must fill every
        # compartment within the flow trim) and its release predicted over the real 3D
        # geometry, where drug also diffuses through neighbouring compartments.
        try:
            mesh = build_mesh(design)
            paths = plan_tablet(mesh, design, lib.formulations, settings)
        except (SlicingError, GeometryError) as exc:
            return exc.message, None
        voids = sparse_voids(design, paths)
        # A sparse design's grid must resolve its gaps, whatever the cost.
        pitch = None if voids else default_pitch_mm(mesh.meshes, max_cells=CONFIRM_CELLS)
        releases = predict_3d(design, mesh.meshes, actives, lib.formulations,
                              pitch_mm=pitch, voids=voids, road_mm=road_mm(settings))
        missed = [f"{r.api}: {r.judgement.reason} by the 3D model" for r in releases
                  if not r.judgement.met]
        return ("; ".join(missed) or None), releases

    tablets = design_tablets(rx, lib.formulations, prepared.grid, extruders=profile.extruders,
                             nozzle_mm=profile.nozzle_diameter_mm, confirm=confirm,
                             limits=prepared.limits)
    by_tool = {c.tool: c.formulation for t in tablets for c in t.design.compartments}
    if len(set(by_tool.values())) != len(by_tool) or sorted(by_tool) != list(range(len(by_tool))):
        raise ResultError(f"the designer assigned tools inconsistently: {by_tool}")
    if len(by_tool) > profile.extruders:
        raise InputError(f"the design needs {len(by_tool)} materials but {profile.id} has "
                         f"{profile.extruders} extruder(s)", file="--printer", key=profile.id)
    say("meshing")
    meshes = tuple(build_mesh(t.design) for t in tablets)
    say("predicting release over the 3D geometry")
    return _predict_3d(rx, tablets, meshes, lib.formulations, settings), meshes


VOID_MIN_WIDTH_MM = 0.2
"""Gaps narrower than half a 0.4 mm bead are taken as closed: the slivers a solid layer
leaves between the beads' idealised footprints, and the gaps of an infill so dense that
the beads' spread bridges them. The release model treats them as material."""


def road_mm(settings: SliceSettings) -> float:
    """Centre distance of neighbouring roads in a solid layer."""
    return bead_spacing_mm(settings.width_mm, settings.layer_mm)


def sparse_voids(
    design: TabletDesign, paths: Sequence[CompartmentToolpaths]
) -> dict[int, tuple[LayerVoids, ...]] | None:
    """The gaps of a sparse design's compartments, from their toolpaths (None when the
    design is solid)."""
    if design.infill >= 1.0:
        return None
    return {k: p.voids(VOID_MIN_WIDTH_MM) for k, p in enumerate(paths)}


def compile_prescription(
    rx_path: Path | str,
    printer_id: str,
    *,
    library: Library | None = None,
    formulation_dirs: Sequence[Path | str] = (),
    printer_dirs: Sequence[Path | str] = (),
    layer_height_mm: float | None = None,
    progress: Progress | None = None,
    stl: bool = False,
    print_order: PrintOrder | None = None,
    calibrations: Path | str | None = None,
) -> CompiledJob:
    """Run every stage up to the job folder's contents (nothing is written).

    ``print_order`` overrides the profile's (``layer`` or ``tablet``); ``calibrations``
    is the flow calibrations file whose multipliers apply (none when None).

    Raises
    ------
    InputError
        A file or option is invalid, or no design meets the target (exit 2).
    DoseCheckError
        The G-code, read back, misses a prescribed dose or a limit (exit 1).
    """
    say = progress or (lambda _msg: None)
    lib = library or load_library(formulation_dirs, printer_dirs)
    rx = load_prescription(rx_path)
    check_prescription(rx, lib.formulations)
    profile = lib.printer(printer_id)
    prepared = prepare(profile, rx, layer_height_mm=layer_height_mm)
    grid, settings = prepared.grid, prepared.settings
    if calibrations is not None:
        load_calibrations(calibrations)  # a broken file is bad input: say so before designing
    check_cold_extrusion(rx, lib, profile)

    say("designing")
    tablets, meshes = design_and_predict(rx, lib, prepared, say)
    by_tool = {c.tool: c.formulation for t in tablets for c in t.design.compartments}
    tools = tuple(lib.formulations[by_tool[k]] for k in range(len(by_tool)))
    prepared.check_filament(tools)

    # The printer must be able to print these materials and this tall a tablet: found
    # here, before slicing, as bad input rather than as a failed G-code check.
    tool_table(profile, tools)
    bed_temperature_c(profile, tools)
    min_extrude_temp_c(profile, tools)
    tallest = max(t.design.height_mm for t in tablets)
    if tallest + END_LIFT_MM > profile.max_z_mm:
        raise InputError(f"is {profile.max_z_mm:g} mm; the tablets are {tallest:.1f} mm tall "
                         f"and the nozzle lifts {END_LIFT_MM:g} mm above them at the end",
                         file=profile.path, key="max_z_mm")
    order = print_order or profile.print_order
    check_print_order(profile, order, tallest, len(tools))
    flows: list[tuple[FlowCalibration | None, str | None]] = [
        find_flow_calibration(calibrations, profile, f) for f in tools]
    multipliers = [1.0 if cal is None else cal.multiplier for cal, _ in flows]

    say("slicing")
    tower = purge_tower(profile, len(tools), settings.width_mm,
                        min(grid.first_mm, grid.layer_mm))
    plate = place_tablets(profile, [t.design.footprint_mm for t in tablets], rx.source,
                          tower_mm=None if tower is None else tower.size_mm,
                          tools=len(tools))
    cache: dict[tuple[Any, ...], tuple[CompartmentToolpaths, ...]] = {}
    toolpaths = []
    for t, mesh in zip(tablets, meshes, strict=True):
        d = t.design
        key = (d.shape, d.layout, repr(d.dimensions), d.layers, d.compartments)
        if key not in cache:
            cache[key] = plan_tablet(mesh, d, lib.formulations, settings)
        toolpaths.append(tuple(_reindex(p, d.index) for p in cache[key]))

    say("writing G-code")
    expected = [(t.design.index, c.api, c.tool, c.dose_mg)
                for t in tablets for c in t.design.compartments if c.api]
    header = header_lines(
        prescription=(rx.id, rx.sha256), patient=rx.patient,
        printer=(profile.id, profile.sha256), tools=[(f.id, f.sha256) for f in tools],
        doses=expected,
        notes=[f"flavor {profile.flavor}, extrusion {profile.extrusion}, "
               f"layer {grid.layer_mm:g} mm",
               f"tablets {len(tablets)}",
               *([f"print order {order}"] if order != "layer" else []),
               *(f"tool T{k} extrusion multiplier {m:g} (flow calibration)"
                 for k, m in enumerate(multipliers) if m != 1.0)],
    )
    program = render_gcode(profile, tools, plate, toolpaths, header, print_order=order,
                           extrusion_multipliers=multipliers, tower=tower)

    say("verifying the dose from the G-code")
    reading = read_gcode(split_lines(program.text), source="job.gcode", flavor=profile.flavor)
    verification = verify_reading(reading, expected, tools, profile, multipliers)
    if not verification.ok:
        raise DoseCheckError("the G-code, read back, fails its checks; no job was written:",
                             details=verification.problems)

    gcode_bytes = program.text.encode()
    threemf = export_3mf(meshes, plate.centers_mm)
    manifest = _manifest(rx, profile, tools, tablets, toolpaths, plate.centers_mm,
                         verification, program, gcode_bytes, order, plate, tower, flows)
    preview = render_preview(manifest, named_meshes(meshes)).encode()
    files = {"job.gcode": gcode_bytes, "tablets.3mf": threemf, "preview.html": preview}
    if stl:
        for m in meshes:
            files[f"tablet-{m.index}.stl"] = export_stl(m)
    manifest = replace(manifest, files=MappingProxyType(
        {name: sha256_bytes(data) for name, data in files.items() if name != "job.gcode"}))
    files["job.json"] = manifest.to_bytes()
    return CompiledJob(rx, profile, tools, tablets, meshes, tuple(toolpaths), program,
                       verification, manifest, files)


def check_cold_extrusion(rx: Prescription, lib: Library, profile: PrinterProfile) -> None:
    """Refuse, before designing, an active whose every candidate formulation prints too
    cold for the printer's minimum extrusion temperature (:func:`min_extrude_temp_c`);
    the tools the designer picks are checked again once they are known.

    Raises
    ------
    InputError
        Naming the formulation, its temperature and the profile's key.
    """
    for active in rx.actives:
        candidates = ([lib.formulations[active.formulation]] if active.formulation
                      else [f for f in lib.formulations.values() if f.api == active.api])
        refusals = []
        for f in candidates:
            try:
                min_extrude_temp_c(profile, [f])
            except InputError as exc:
                refusals.append(exc)
        if candidates and len(refusals) == len(candidates):
            raise InputError([problem for exc in refusals for problem in exc.problems])


def check_print_order(
    profile: PrinterProfile, order: PrintOrder, tallest_mm: float, tools: int
) -> None:
    """Refuse a tablet-by-tablet order the printer cannot do safely.

    Raises
    ------
    InputError
        The profile gives no ``gantry_clearance_mm``, a tablet is taller than it, or the
        job needs more than one tool.
    """
    if order != "tablet":
        return
    if profile.gantry_clearance_mm is None:
        raise InputError("is not set: printing tablet by tablet needs the height under the "
                         "gantry above the nozzle tip; measure it or use --print-order layer",
                         file=profile.path, key="gantry_clearance_mm")
    if tallest_mm >= profile.gantry_clearance_mm:
        raise InputError(f"is {profile.gantry_clearance_mm:g} mm but a tablet is "
                         f"{tallest_mm:.2f} mm tall: the gantry would hit it printing the "
                         "next one; use --print-order layer", file=profile.path,
                         key="gantry_clearance_mm")
    if tools > 1:
        raise InputError(f"is \"tablet\" but the job uses {tools} tools; the purge tower "
                         "rises layer by layer, so multi-material jobs print layer by layer",
                         file="command line", key="--print-order")


def _purge_tower_json(
    plate: Plate, tower: PurgeTower | None, profile: PrinterProfile,
) -> dict[str, Any] | None:
    """job.json's ``purge_tower``: where it stands and what it purges (None without one)."""
    if tower is None or plate.tower_corner_mm is None:
        return None
    return {"corner_mm": [round(v, 3) for v in plate.tower_corner_mm],
            "size_mm": [round(v, 3) for v in tower.size_mm],
            "purge_volume_mm3": profile.purge_volume_mm3,
            "standby_delta_c": profile.standby_delta_c}


def _tool_entry(
    k: int, f: Formulation, profile: PrinterProfile, cal: FlowCalibration | None,
) -> ToolEntry:
    """Tool *k*: its material and flow calibration (job.md ``tools``)."""
    return ToolEntry(
        tool=k, formulation=f.id, api=f.api, drug_loading=f.drug_loading,
        density_g_cm3=f.density_g_cm3, filament_diameter_mm=f.filament_diameter_mm,
        nozzle_temp_c=f.nozzle_temp_c, formulation_sha256=f.sha256,
        extrusion_multiplier=1.0 if cal is None else cal.multiplier,
        flow_command=None if cal is None else flow_command(profile, k, cal.multiplier),
        flow_calibration=None if cal is None else freeze_json({
            "file": cal.file, "calibrated_utc": cal.calibrated_utc,
            "masses_mg": list(cal.masses_mg), "nominal_mass_mg": cal.nominal_mass_mg,
            "printer_sha256": cal.printer_sha256,
            "formulation_sha256": cal.formulation_sha256}))


def _predict_3d(
    rx: Prescription,
    tablets: Sequence[DesignedTablet],
    meshes: Sequence[TabletMesh],
    formulations: Mapping[str, Formulation],
    settings: SliceSettings,
) -> tuple[DesignedTablet, ...]:
    """Replace the designer's fast predictions with the 3D model's, once per distinct
    design (a sparse one with its slicer gaps). A target the 3D model finds unmet is
    refused with both figures."""
    actives = {a.api: a for a in rx.actives}
    cache: dict[tuple[Any, ...], tuple[PredictedRelease, ...]] = {}
    out = []
    for t, mesh in zip(tablets, meshes, strict=True):
        d = t.design
        key = (d.shape, d.layout, repr(d.dimensions), d.compartments)
        if key not in cache and all(r.model.startswith(MODEL_3D) for r in t.releases):
            cache[key] = t.releases  # confirmed by the designer with the 3D model already
        if key not in cache:
            voids = (sparse_voids(d, plan_tablet(mesh, d, dict(formulations), settings))
                     if d.infill < 1.0 else None)
            cache[key] = predict_3d(d, mesh.meshes, actives, formulations, voids=voids,
                                    road_mm=road_mm(settings))
            for fast, full in zip(t.releases, cache[key], strict=True):
                if fast.judgement.met and not full.judgement.met:
                    i = rx.actives.index(actives[full.api])
                    raise InfeasibleDesignError([Problem(
                        rx.source, f"actives[{i}]",
                        f"the designed {d.describe()} meets the target by the designer's "
                        f"estimate ({fast.judgement.reason}) but not by the 3D model "
                        f"({full.judgement.reason}); loosen the target or fix a dimension")])
        out.append(DesignedTablet(d, cache[key]))
    return tuple(out)


def write_job(
    compiled: CompiledJob, out: Path | str, *, force: bool = False, key: SiteKey | None = None
) -> Path:
    """Write the job folder atomically (job.md), sealed: ``job.seal`` holds ``key``'s
    signature of job.json (:mod:`doseprint.job.seal`).

    Parameters
    ----------
    key : SiteKey, optional
        The key to seal with (default: the site key, made on first use,
        :func:`~doseprint.job.keys.site_key_for_compile`).
    """
    key = site_key_for_compile() if key is None else key
    write_job_folder(Path(out), seal_files(compiled.files, key), force=force)
    return Path(out)


def _reindex(paths: CompartmentToolpaths, index: int) -> CompartmentToolpaths:
    return paths if paths.tablet == index else replace(paths, tablet=index)


def export_3mf(
    meshes: Sequence[TabletMesh], centers_mm: Sequence[tuple[float, float]]
) -> bytes:
    """All tablets in one 3MF, each placed where it is printed on the bed: one build
    object per tablet, ``tablet-<i>``, made of one component object per compartment,
    ``tablet-<i>/<name>`` (the API, or ``shell`` for a drug-free one)."""
    scene = trimesh.Scene()
    for m, (cx, cy) in zip(meshes, centers_mm, strict=True):
        place = np.eye(4)
        place[:2, 3] = (cx, cy)
        tablet = f"tablet-{m.index}"
        scene.graph.update(  # type: ignore[no-untyped-call]
            frame_from=scene.graph.base_frame, frame_to=tablet, matrix=place)
        for name, mesh in zip(m.names, m.meshes, strict=True):
            scene.add_geometry(mesh, node_name=f"{tablet}/{name}", geom_name=f"{tablet}/{name}",
                               parent_node_name=tablet)
    buffer = io.BytesIO()
    data = scene.export(file_type="3mf")  # type: ignore[no-untyped-call]
    buffer.write(data if isinstance(data, bytes) else data.encode())
    return buffer.getvalue()


def export_stl(mesh: TabletMesh) -> bytes:
    """One tablet as a binary STL in tablet coordinates, its compartments as separate
    shells of one file (STL has no names; the 3MF keeps them apart by name)."""
    combined = trimesh.util.concatenate(list(mesh.meshes))
    data: bytes = trimesh.exchange.stl.export_stl(combined)
    return data


def _target(active: Active) -> dict[str, Any]:
    if active.release == "sustained":
        return {"t80_h": active.t80_h, "tolerance_rel": 0.10}
    if active.release == "profile":
        assert active.profile is not None
        return {"points": [list(p) for p in active.profile], "f2_min": 50.0}
    return {"fraction": 0.85, "at_h": 0.5}


def release_entry(active: Active, r: PredictedRelease) -> ReleaseEntry:
    """One API's predicted release as job.json holds it (rounded, curve in hours)."""
    j = r.judgement

    def rnd(v: float | None, n: int = 3) -> float | None:
        return None if v is None else round(v, n)

    return ReleaseEntry(
        kind=active.release, target=freeze_json(_target(active)), model=r.model,
        t50_h=rnd(j.t50_h), t80_h=rnd(j.t80_h), mdt_h=rnd(j.mdt_h), f2=rnd(j.f2, 2),
        released_at_0_5_h=rnd(j.released_at_30min, 4), met=j.met, reason=j.reason,
        curve=tuple((round(float(h), 3), round(float(f), 5))
                    for h, f in zip(r.hours, r.fraction, strict=True)))


def _manifest(
    rx: Prescription,
    profile: PrinterProfile,
    tools: Sequence[Formulation],
    tablets: Sequence[DesignedTablet],
    toolpaths: Sequence[Sequence[CompartmentToolpaths]],
    centers: Sequence[tuple[float, float]],
    verification: Verification,
    program: GcodeProgram,
    gcode_bytes: bytes,
    order: PrintOrder,
    plate: Plate,
    tower: PurgeTower | None,
    flows: Sequence[tuple[FlowCalibration | None, str | None]],
) -> JobManifest:
    """The job's manifest, every file hash but the ones written after it (``files``)."""
    checks = {(c.tablet, c.api): c for c in verification.doses}
    warnings = []
    if any("estimate" in " ".join(f.sources).lower() for f in tools):
        warnings.append("some material values of " + ", ".join(f.id for f in tools)
                        + " are estimates: calibrate the formulation before dispensing")
    entries = []
    for t, paths, center in zip(tablets, toolpaths, centers, strict=True):
        actives = []
        shell: ShellEntry | None = None
        for comp, p in zip(t.design.compartments, paths, strict=True):
            if not comp.api:
                shell = ShellEntry(formulation=comp.formulation, tool=comp.tool,
                                   design_volume_mm3=round(comp.volume_mm3, 4),
                                   planned_volume_mm3=round(p.planned_volume_mm3, 4),
                                   flow_multiplier=round(p.flow_multiplier, 5))
                continue
            check = checks[(t.design.index, comp.api)]
            active = rx.active(comp.api)
            trim = p.flow_multiplier - 1.0
            if abs(trim) > 0.02:
                warnings.append(f"tablet {t.design.index}: {comp.api} flow trimmed by "
                                f"{trim:+.1%} to carry the dose")
            actives.append(ActiveEntry(
                api=comp.api, tool=comp.tool, formulation=comp.formulation,
                dose_mg=comp.dose_mg, design_volume_mm3=round(comp.volume_mm3, 4),
                planned_volume_mm3=round(p.planned_volume_mm3, 4),
                flow_multiplier=round(p.flow_multiplier, 5),
                filament_mm=round(check.filament_mm, 5),
                gcode_dose_mg=round(check.gcode_mg, 4),
                dose_error_pct=round(check.error_pct, 4),
                release=release_entry(active, t.release(comp.api))))
        design = t.design.to_json()
        if t.design.infill < 1.0:
            design["infill_pattern"] = rx.tablet.infill_pattern
            design["solid_layers"] = rx.tablet.solid_layers
        design["perimeters"] = profile.perimeters
        entries.append(TabletEntry(index=t.design.index,
                                   center_mm=(round(center[0], 3), round(center[1], 3)),
                                   design=freeze_json(design), actives=tuple(actives),
                                   shell=shell))
    tool_entries = tuple(_tool_entry(k, f, profile, cal)
                         for k, (f, (cal, _)) in enumerate(zip(tools, flows, strict=True)))
    warnings += [warning for _, warning in flows if warning]
    return JobManifest(
        doseprint_version=__version__,
        created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        prescription=PrescriptionEntry(id=rx.id, sha256=rx.sha256, patient=rx.patient,
                                       file=Path(rx.source).name,
                                       content=freeze_json(rx.content)),
        printer=PrinterEntry(id=profile.id, sha256=profile.sha256, flavor=profile.flavor,
                             extruders=profile.extruders),
        tools=tool_entries,
        tablets=tuple(entries),
        gcode=GcodeEntry(file="job.gcode", sha256=sha256_bytes(gcode_bytes),
                         lines=program.lines, estimated_print_s=program.estimated_print_s,
                         estimated_motion_s=program.estimated_motion_s),
        warnings=tuple(warnings),
        print_order=order,
        purge_tower=freeze_json(_purge_tower_json(plate, tower, profile)),
    )
