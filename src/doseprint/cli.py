"""The doseprint command line (cli.md): a thin click layer over the stage functions.

Exit codes are mapped in one place, :func:`main`, from the hierarchy of
:mod:`doseprint.errors`: 0 done, 1 a failed result, 2 bad input, 3 the environment.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from doseprint import __version__
from doseprint.errors import (
    EXIT_BUG,
    EXIT_INPUT,
    DoseCheckError,
    DoseprintError,
    InputError,
    exit_code_for,
)

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("doseprint")


def _library_options(func: F) -> F:
    func = click.option("--printers", "printer_dirs", multiple=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Extra printer profile folder (repeatable; also "
                             "DOSEPRINT_PRINTERS).")(func)
    func = click.option("--formulations", "formulation_dirs", multiple=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Extra formulation folder (repeatable; also "
                             "DOSEPRINT_FORMULATIONS). Its ids override shipped ones.")(func)
    return func


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="doseprint")
@click.option("--debug", is_flag=True, help="Show the Python traceback of any error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """doseprint: personalised tablets printed on demand.

    \b
    Example, a first job start to finish:
      doseprint compile examples/theophylline-sustained.toml \\
          --printer generic-marlin-1x175 --out job-123
      doseprint virtual-printer --tcp 5555 &
      doseprint print job-123 --port socket://127.0.0.1:5555 --operator "A. Pharmacist"
      doseprint record list
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(message)s", stream=sys.stderr)


# compile ----------------------------------------------------------------------------


@cli.command("compile")
@click.argument("rx", type=click.Path(path_type=Path))
@click.option("--printer", "printer_id", required=True, help="Printer profile id.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Job folder to write.")
@_library_options
@click.option("--layer-height", type=float, default=None,
              help="Layer height in mm (default: the printer profile's).")
@click.option("--force", is_flag=True, help="Replace an existing job folder.")
@click.option("--stl", is_flag=True, help="Also write each tablet as tablet-<i>.stl.")
@click.option("--print-order", type=click.Choice(["layer", "tablet"]), default=None,
              help="layer: layer by layer across the plate; tablet: each tablet whole "
                   "(needs the profile's gantry_clearance_mm). Default: the profile's.")
@click.option("--calibrations", "calibrations", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Flow calibrations file (also DOSEPRINT_CALIBRATIONS; "
                                 "default: calibrations.json in the user's data folder).")
def compile_cmd(
    rx: Path, printer_id: str, out: Path, formulation_dirs: tuple[Path, ...],
    printer_dirs: tuple[Path, ...], layer_height: float | None, force: bool, stl: bool,
    print_order: str | None, calibrations: Path | None,
) -> None:
    """Design, predict, slice and verify RX; write the job folder OUT.

    \b
    Example:
      doseprint compile rx-123.toml --printer generic-marlin-1x175 --out job-123
    """
    from doseprint.compile import compile_prescription, write_job
    from doseprint.job.flow_calibration import default_calibrations_path
    from doseprint.job.folder import check_out_dir

    check_out_dir(out, force)
    compiled = compile_prescription(
        rx, printer_id, formulation_dirs=formulation_dirs, printer_dirs=printer_dirs,
        layer_height_mm=layer_height, progress=lambda msg: log.info("compile: %s", msg),
        stl=stl, print_order="tablet" if print_order == "tablet" else
        "layer" if print_order == "layer" else None,
        calibrations=calibrations or default_calibrations_path(),
    )
    write_job(compiled, out, force=force)
    job = compiled.manifest
    for t in job.tablets:
        for a in t.actives:
            rel = a.release
            fed = f"{a.gcode_dose_mg:>9.3f}"
            click.echo(f"tablet {t.index:>3}  {a.api:<18} {a.dose_mg:>8g} mg  "
                       f"G-code {fed} mg ({a.dose_error_pct:+.3f} %)  "
                       f"{compiled.tablets[t.index].design.describe()}  "
                       f"{rel.kind} {'met' if rel.met else 'NOT met'}")
    for w in job.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {out} ({job.gcode.lines} G-code lines, about "
               f"{job.gcode.estimated_print_s / 60:.0f} min to print)")


# release ----------------------------------------------------------------------------


@cli.command("release")
@click.argument("rx", type=click.Path(path_type=Path), required=False)
@click.option("--mesh", "mesh_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Predict a watertight mesh (STL, 3MF, OBJ, PLY) instead of a prescription.")
@click.option("--formulation", "formulation_id",
              help="With --mesh: the formulation the whole mesh is made of.")
@click.option("--hours", type=click.FloatRange(min=0.5, max=240.0), default=24.0,
              show_default=True, help="With --mesh: how long to predict.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the curves: hours, then one column per API (fractions 0..1).")
@click.option("--printer", "printer_id", default="generic-marlin-1x175", show_default=True,
              help="Printer whose layer heights and extruders the design is made for.")
@_library_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def release_cmd(
    rx: Path | None, mesh_path: Path | None, formulation_id: str | None, hours: float,
    csv_path: Path | None, printer_id: str, formulation_dirs: tuple[Path, ...],
    printer_dirs: tuple[Path, ...], as_json: bool,
) -> None:
    """Design RX and predict each API's release over the 3D geometry; show it beside
    the target (t50, t80, f2, met). Or predict any watertight mesh of one formulation.

    \b
    Example:
      doseprint release rx-123.toml --csv curves.csv
      doseprint release --mesh tablet.stl --formulation theophylline-hpc-30
    """
    from doseprint.library import load_library

    lib = load_library(formulation_dirs, printer_dirs)
    if mesh_path is not None or formulation_id is not None:
        if rx is not None or mesh_path is None or formulation_id is None:
            raise click.UsageError("give RX, or --mesh FILE with --formulation ID")
        _release_of_mesh(lib.formulation(formulation_id), mesh_path, hours, csv_path,
                         as_json)
        return
    if rx is None:
        raise click.UsageError("give RX, or --mesh FILE with --formulation ID")
    _release_of_prescription(lib, rx, printer_id, csv_path, as_json)


def _release_of_prescription(
    lib: Any, rx: Path, printer_id: str, csv_path: Path | None, as_json: bool
) -> None:
    from doseprint.compile import design_and_predict
    from doseprint.job.prepare import prepare
    from doseprint.models.load import check_prescription, load_prescription

    prescription = load_prescription(rx)
    check_prescription(prescription, lib.formulations)
    prepared = prepare(lib.printer(printer_id), prescription)
    tablets, _ = design_and_predict(prescription, lib, prepared)
    first = tablets[0]
    rows: list[dict[str, Any]] = []
    for r in first.releases:
        j = r.judgement
        active = prescription.active(r.api)
        rows.append({"api": r.api, "kind": j.kind, "target": _target_text(active),
                     "t50_h": j.t50_h, "t80_h": j.t80_h, "mdt_h": j.mdt_h, "f2": j.f2,
                     "released_at_0_5_h": j.released_at_30min, "met": j.met,
                     "reason": j.reason, "model": r.model,
                     "formulation": next(c.formulation for c in first.design.compartments
                                         if c.api == r.api),
                     "design": first.design.describe(),
                     "dimensions_mm": first.design.dimensions_mm()})
    if csv_path is not None:
        _write_curves(csv_path, [(r.api, r.hours, r.fraction) for r in first.releases])
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"design: {first.design.describe()}")
    for row in rows:
        f2 = "" if row["f2"] is None else f"  f2 {row['f2']:.1f}"
        click.echo(f"{row['api']} ({row['formulation']}): target {row['target']} | predicted "
                   f"t50 {_h(row['t50_h'])}  t80 {_h(row['t80_h'])}  "
                   f"{row['released_at_0_5_h']:.0%} at 30 min{f2} | "
                   f"{'met' if row['met'] else 'NOT met'}")
    if len({repr(t.design.dimensions) for t in tablets}) > 1:
        click.echo("(schedule: the first tablet is shown; `compile` designs every tablet)")


def _target_text(active: Any) -> str:
    if active.release == "sustained":
        return f"t80 {active.t80_h:g} h ±10 %"
    if active.release == "profile":
        return "profile " + " ".join(f"{h:g}h:{f:.0%}" for h, f in active.profile) + " (f2 ≥ 50)"
    return "≥ 85 % at 30 min"


def _write_curves(path: Path, curves: list[tuple[str, Any, Any]]) -> None:
    """CSV of cli.md: ``hours``, then one column per API (fractions), on one time grid."""
    import numpy as np

    from doseprint.job.folder import write_file_atomic

    hours = np.unique(np.concatenate([h for _, h, _ in curves]))
    lines = ["hours," + ",".join(name for name, _, _ in curves)]
    for h in hours:
        values = ",".join(f"{float(np.interp(h, hh, ff)):.6f}" for _, hh, ff in curves)
        lines.append(f"{h:g},{values}")
    write_file_atomic(path, ("\n".join(lines) + "\n").encode())


def _release_of_mesh(
    formulation: Any, mesh_path: Path, hours: float, csv_path: Path | None, as_json: bool
) -> None:
    import numpy as np
    import trimesh

    from doseprint.release.fv import solve_release
    from doseprint.release.metrics import mean_dissolution_time_h, t50_h, t80_h

    if formulation.drug_free:
        raise InputError(f"{formulation.id} is drug-free: nothing to release",
                         file="command line", key="--formulation")
    try:
        loaded = trimesh.load(mesh_path, force="mesh")
    except Exception as exc:  # trimesh raises many kinds for files it cannot read
        raise InputError(f"cannot be read as a mesh: {exc}", file=str(mesh_path)) from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError("holds no mesh", file=str(mesh_path))
    if not loaded.is_watertight or not loaded.is_winding_consistent:
        raise InputError("is not a watertight, consistently wound mesh: its volume and "
                         "surface are undefined (repair it first)", file=str(mesh_path))
    if loaded.volume <= 0:
        loaded.invert()
    grid_h = np.concatenate([np.arange(0.0, 2.0, 0.05), np.arange(2.0, hours + 1e-9, 0.25)])
    if "diffusion" not in formulation.release_mechanism:
        raise InputError(f"{formulation.id} releases by erosion alone; the mesh model is "
                         "diffusive", file="command line", key="--formulation")
    fraction = solve_release([loaded], [formulation.diffusivity_mm2_s], [0],
                             grid_h * 3600.0)[:, 0]
    api = formulation.api
    row = {"api": api, "formulation": formulation.id, "volume_mm3": float(loaded.volume),
           "area_mm2": float(loaded.area), "t50_h": t50_h(grid_h, fraction),
           "t80_h": t80_h(grid_h, fraction),
           "mdt_h": mean_dissolution_time_h(grid_h, fraction),
           "released_at_end": float(fraction[-1]), "model": "3d-finite-volume"}
    if csv_path is not None:
        _write_curves(csv_path, [(api, grid_h, fraction)])
    if as_json:
        _echo_json(row)
        return
    click.echo(f"{mesh_path.name}: {row['volume_mm3']:.1f} mm3, {row['area_mm2']:.1f} mm2, "
               f"{formulation.id}: t50 {_h(row['t50_h'])}  t80 {_h(row['t80_h'])}  "
               f"{row['released_at_end']:.0%} at {hours:g} h")


def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} h"


# gcode ------------------------------------------------------------------------------


@cli.group("gcode")
def gcode_group() -> None:
    """Check G-code.

    \b
    Example:
      doseprint gcode check job-123
    """


@gcode_group.command("check")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def gcode_check(job_dir: Path, as_json: bool) -> None:
    """Recompute every tablet's dose from JOB/job.gcode and compare with job.json.

    Exit 1 if any tablet misses its dose by more than 1 %.

    \b
    Example:
      doseprint gcode check job-123
    """
    from doseprint.gcode.reader import read_gcode_file
    from doseprint.job.folder import read_job
    from doseprint.job.verify import verify_job
    from doseprint.tolerances import tol

    job = read_job(job_dir, check_hashes=False)
    # The same check compile ran before it wrote the job: every dose, drug no line of the
    # prescription accounts for, and the flow factor in force while a tool lays tablets.
    verification = verify_job(read_gcode_file(job_dir / job.gcode.file), job)
    rows = [{"tablet": c.tablet, "api": c.api, "dose_mg": c.prescribed_mg,
             "gcode_dose_mg": round(c.gcode_mg, 4), "error_pct": round(c.error_pct, 4),
             "ok": c.ok} for c in verification.doses]
    failed = [f"tablet {c.tablet}: {c.api} {c.gcode_mg:.3f} mg from the G-code, prescribed "
              f"{c.prescribed_mg:g} mg ({c.error_pct:+.2f} %)"
              for c in verification.doses if not c.ok]
    failed += verification.other_problems
    if as_json:
        _echo_json({"ok": not failed, "tablets": rows})
    else:
        for r in rows:
            click.echo(f"tablet {r['tablet']:>3}  {r['api']:<18} {r['dose_mg']:>8g} mg  "
                       f"G-code {r['gcode_dose_mg']:>9.3f} mg  {r['error_pct']:+.3f} %  "
                       f"{'ok' if r['ok'] else 'MISS'}")
    if failed:
        raise DoseCheckError(f"{job_dir / 'job.gcode'}: dose check failed (tolerance "
                             f"±{100 * tol.dose_rel:g} %):\n  " + "\n  ".join(failed),
                             hint="compile the prescription again; do not print this job")


# preview ----------------------------------------------------------------------------


@cli.command("preview")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default: SOURCE's preview.html or <rx>.html).")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a still picture: the tablet beside its release curves.")
@click.option("--printer", "printer_id", default="generic-marlin-1x175", show_default=True,
              help="Printer to design for when SOURCE is a prescription.")
@_library_options
def preview_cmd(
    source: Path, out: Path | None, png: Path | None, printer_id: str,
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
) -> None:
    """Write the clinician's preview page of a job folder or a prescription.

    \b
    Example:
      doseprint preview job-123 --out job-123.html --png job-123.png
    """
    import trimesh

    from doseprint.compile import compile_prescription
    from doseprint.job.folder import read_job, write_file_atomic
    from doseprint.report.preview import named_meshes, render_preview
    from doseprint.report.still import render_still

    if source.is_dir():
        job = read_job(source, check_hashes=False)
        target = out or source / "preview.html"
        # tablets.3mf holds each compartment in tablet coordinates (placed by transforms).
        threemf = source / "tablets.3mf"
        try:
            scene: Any = trimesh.load(threemf, force="scene")
        except Exception as exc:  # missing, or not a 3MF trimesh can read
            raise InputError(f"cannot be read ({exc}); compile the job again",
                             file=str(threemf)) from None
        meshes: dict[str, Any] = dict(scene.geometry)
        page = render_preview(job, meshes)
    else:
        compiled = compile_prescription(source, printer_id, formulation_dirs=formulation_dirs,
                                        printer_dirs=printer_dirs)
        job = compiled.manifest
        target = out or source.with_suffix(".html")
        page = compiled.files["preview.html"].decode()
        meshes = named_meshes(compiled.meshes)
    still = render_still(job, meshes) if png is not None else None
    write_file_atomic(target, page.encode())
    click.echo(f"wrote {target}")
    if png is not None and still is not None:
        write_file_atomic(png, still)
        click.echo(f"wrote {png}")


# libraries --------------------------------------------------------------------------


@cli.group("formulation")
def formulation_group() -> None:
    """The formulation library.

    \b
    Example:
      doseprint formulation list
      doseprint formulation show theophylline-hpc-30
    """


@formulation_group.command("list")
@_library_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def formulation_list(
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...], as_json: bool
) -> None:
    """List every formulation (shipped and the site's).

    \b
    Example:
      doseprint formulation list --formulations site/formulations
    """
    from doseprint.library import load_formulations

    formulations = load_formulations(formulation_dirs)
    if as_json:
        _echo_json([{"id": f.id, "api": f.api, "drug_loading": f.drug_loading,
                     "release_mechanism": f.release_mechanism, "path": f.path}
                    for f in formulations.values()])
        return
    for f in sorted(formulations.values(), key=lambda f: f.id):
        click.echo(f"{f.id:<36} {f.api or '(drug-free)':<20} {f.drug_loading:>5.0%}  "
                   f"{f.release_mechanism:<18} {f.name}")


@formulation_group.command("show")
@click.argument("formulation_id")
@_library_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def formulation_show(
    formulation_id: str, formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Show one formulation with its sources.

    \b
    Example:
      doseprint formulation show theophylline-hpc-30
    """
    import dataclasses

    from doseprint.library import Library, load_formulations

    f = Library(load_formulations(formulation_dirs), {}).formulation(formulation_id)
    data = dataclasses.asdict(f)
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        if key == "sources":
            click.echo("sources:")
            for s in value:
                click.echo(f"  - {s}")
        else:
            click.echo(f"{key}: {value}")


@formulation_group.command("calibrate")
@click.argument("formulation_id")
@click.option("--dissolution", "csv_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Measured curve: a CSV with hours and the fraction (or %) released.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The new formulation file, named <new id>.toml.")
@click.option("--diameter", "diameter_mm", type=float, default=10.0, show_default=True,
              help="Diameter of the measured cylindrical tablet, mm.")
@click.option("--height", "height_mm", type=float, default=4.0, show_default=True,
              help="Height of the measured tablet, mm.")
@_library_options
def formulation_calibrate(
    formulation_id: str, csv_path: Path, out: Path, diameter_mm: float, height_mm: float,
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
) -> None:
    """Fit FORMULATION_ID's release parameters to a measured dissolution curve of a
    solid cylindrical tablet, and write them as a new formulation file.

    The diffusivity is fitted (the erosion rate where the material erodes); the new file
    keeps the other values and records the data's SHA-256, the residual and f2.

    \b
    Example:
      doseprint formulation calibrate theophylline-hpc-30 --dissolution lot42.csv \\
          --diameter 10 --height 4 --out site/theophylline-hpc-30-lot42.toml
    """
    from doseprint.job.folder import write_file_atomic
    from doseprint.library import Library, load_formulations
    from doseprint.release.calibrate import calibrate, calibrated_formulation_toml, read_dissolution

    if out.suffix != ".toml":
        raise InputError(f"is {out.name}; a formulation file is named <id>.toml",
                         file=str(out), key="--out")
    formulation = Library(load_formulations(formulation_dirs), {}).formulation(formulation_id)
    data = read_dissolution(csv_path)
    for note in data.notes:
        log.info("%s", note)
    cal = calibrate(formulation, data.hours, data.fraction, diameter_mm=diameter_mm,
                    height_mm=height_mm, data_name=csv_path.name)
    for note in cal.notes:
        click.echo(f"warning: {note}", err=True)
    text = calibrated_formulation_toml(formulation, cal, data_sha256=data.sha256,
                                       data_name=csv_path.name, new_id=out.stem)
    write_file_atomic(out, text.encode("utf-8"))
    fitted = ", ".join(f"{k} = {getattr(cal, k):.4g}" for k in cal.fitted)
    click.echo(f"{formulation_id}: fitted {fitted} to {cal.n_points} points of a "
               f"{diameter_mm:g} × {height_mm:g} mm cylinder (RMS residual "
               f"{cal.rms_residual:.4f}, f2 {cal.f2:.1f}); wrote {out}")


# calibrate --------------------------------------------------------------------------


@cli.group("calibrate")
def calibrate_group() -> None:
    """Printer calibrations (the formulations' own: `doseprint formulation calibrate`).

    \b
    Example:
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --out cal-job
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --job cal-job --mass-mg 641.2 638.9 640.5
    """


@calibrate_group.command("flow")
@click.option("--printer", "printer_id", required=True, help="Printer profile id.")
@click.option("--formulation", "formulation_id", required=True, help="Formulation id.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write a calibration job folder (discs of known mass) here.")
@click.option("--job", "job_dir", type=click.Path(path_type=Path), default=None,
              help="The calibration job that was printed and weighed.")
@click.option("--mass-mg", "masses", type=float, multiple=True,
              help="With --job: each weighed disc's mass in mg (--mass-mg M [M ...]).")
@click.argument("more_masses", nargs=-1, type=float)
@click.option("--calibrations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibrations file (also DOSEPRINT_CALIBRATIONS; default: "
                   "calibrations.json in the user's data folder).")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@_library_options
def calibrate_flow(
    printer_id: str, formulation_id: str, out: Path | None, job_dir: Path | None,
    masses: tuple[float, ...], more_masses: tuple[float, ...], calibrations: Path | None,
    force: bool,
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
) -> None:
    """Measure the extrusion multiplier of FORMULATION on PRINTER by weighing.

    First write a calibration job (--out), print it with the multiplier at 1 and weigh
    each disc; then give the masses (--job with --mass-mg M [M ...]): the multiplier
    nominal / mean mass is stored for compile to apply.

    \b
    Example:
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --out cal-job
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --job cal-job --mass-mg 641.2 638.9 640.5
    """
    from doseprint.job.flow_calibration import (
        compute_flow_calibration,
        default_calibrations_path,
        make_flow_job,
        read_flow_job,
        store_flow_calibration,
    )
    from doseprint.job.folder import check_out_dir, write_job_folder
    from doseprint.library import load_library

    if more_masses and not masses:
        raise click.UsageError("give the weighed masses after --mass-mg")
    mass_values = [*masses, *more_masses]
    if (out is None) == (job_dir is None):
        raise click.UsageError("give --out to make a calibration job, or --job with "
                               "--mass-mg to compute the multiplier")
    lib = load_library(formulation_dirs, printer_dirs)
    profile = lib.printer(printer_id)
    formulation = lib.formulation(formulation_id)
    if out is not None:
        if mass_values:
            raise click.UsageError("--mass-mg goes with --job, not --out")
        check_out_dir(out, force)
        files = make_flow_job(profile, formulation)
        write_job_folder(out, files, force=force)
        manifest = json.loads(files["job.json"])
        click.echo(f"wrote {out}: {len(manifest['objects'])} discs of "
                   f"{manifest['nominal_mass_mg']:.1f} mg nominal each; print job.gcode, "
                   "weigh each disc and run again with --job and --mass-mg")
        return
    assert job_dir is not None
    manifest = read_flow_job(job_dir)
    entry = compute_flow_calibration(manifest, profile, formulation, mass_values)
    target = calibrations or default_calibrations_path()
    store_flow_calibration(target, entry)
    click.echo(f"{formulation.id} on {profile.id}: extrusion multiplier "
               f"{entry.multiplier:.4f} (nominal {entry.nominal_mass_mg:.1f} mg, weighed "
               f"mean {sum(entry.masses_mg) / len(entry.masses_mg):.1f} mg); wrote {target}")


@cli.group("printer")
def printer_group() -> None:
    """The printer profiles.

    \b
    Example:
      doseprint printer list
      doseprint printer show generic-marlin-1x175
    """


@printer_group.command("list")
@_library_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def printer_list(
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...], as_json: bool
) -> None:
    """List every printer profile.

    \b
    Example:
      doseprint printer list
    """
    from doseprint.library import load_printers

    printers = load_printers(printer_dirs)
    if as_json:
        _echo_json([{"id": p.id, "name": p.name, "flavor": p.flavor, "extruders": p.extruders}
                    for p in printers.values()])
        return
    for p in sorted(printers.values(), key=lambda p: p.id):
        click.echo(f"{p.id:<28} {p.flavor:<15} {p.extruders} extruder(s)  {p.name}")


@printer_group.command("show")
@click.argument("printer_id")
@_library_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def printer_show(
    printer_id: str, formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Show one printer profile.

    \b
    Example:
      doseprint printer show generic-marlin-2x175
    """
    import dataclasses

    from doseprint.library import Library, load_printers

    p = Library({}, load_printers(printer_dirs)).printer(printer_id)
    data = dataclasses.asdict(p)
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


# printing ---------------------------------------------------------------------------


@cli.command("print")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--port", required=True,
              help="Serial device (/dev/ttyUSB0) or pyserial URL (socket://127.0.0.1:5555).")
@click.option("--baud", type=int, default=None, help="Baud rate (default: the profile's).")
@click.option("--db", default=None, help="Record store: a SQLite path or postgresql://… URL "
              "(default: DOSEPRINT_DB, else a SQLite file in the user's data directory).")
@click.option("--operator", default="operator", show_default=True,
              help="Who runs the print (written into the record).")
@click.option("--lot", "lots", multiple=True,
              help="Material lot loaded in a tool, as T0=LOT-123 (repeatable).")
@click.option("--printers", "printer_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Extra printer profile folder (also DOSEPRINT_PRINTERS).")
@click.option("--timeout", "answer_timeout_s", type=float, default=30.0, show_default=True,
              help="Seconds without any answer before the printer counts as lost.")
def print_cmd(
    job_dir: Path, port: str, baud: int | None, db: str | None, operator: str,
    lots: tuple[str, ...], printer_dirs: tuple[Path, ...], answer_timeout_s: float,
) -> None:
    """Stream JOB_DIR/job.gcode to the printer on PORT and record the print.

    \b
    Example:
      doseprint print job-123 --port /dev/ttyUSB0 --operator "A. Pharmacist" --lot T0=L42
    """
    import signal

    from doseprint.printing import print_job
    from doseprint.records.store import open_store

    def _terminate(signum: int, frame: object) -> None:
        # A stop request (SIGTERM, e.g. from a service manager) ends the print the way
        # Ctrl-C does: safe stop sent, record marked aborted.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    progress = _Progress(_estimated_print_s(job_dir))
    with open_store(db) as store:
        try:
            outcome = print_job(job_dir, port, store, operator=operator, lots=lots, baud=baud,
                                printer_dirs=printer_dirs, answer_timeout_s=answer_timeout_s,
                                on_start=progress.start, on_progress=progress.update,
                                on_temperatures=progress.temperatures)
        finally:
            progress.stop()
    r = outcome.result
    click.echo(f"completed: {r.commands_acked}/{r.commands_total} commands acknowledged, "
               f"{r.resends} resent, {r.elapsed_s:.1f} s; record {outcome.record_id}")


def _estimated_print_s(job_dir: Path) -> float:
    """The job's own print-time estimate, if its job.json says (0 when unreadable: the
    print itself refuses a bad job, with the reason)."""
    try:
        job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
        return float(job["gcode"]["estimated_print_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


class _Progress:
    """A progress bar on a terminal; plain log lines every 10 % otherwise. The time left
    comes from the job's own estimate (job.json ``gcode.estimated_print_s``), scaled by
    the share of commands still to be acknowledged; the temperatures are the latest the
    printer reported (hot end per tool and bed, actual/target)."""

    def __init__(self, estimated_print_s: float = 0.0) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.total = 0
        self.next_log = 0.0
        self.estimated_s = estimated_print_s
        self.temps = ""

    def temperatures(self, summary: str) -> None:
        self.temps = summary
        if self.bar is not None:
            self.bar.update(self.task, temps=summary)

    def _left(self, acked: int) -> str:
        if self.estimated_s <= 0:
            return ""
        minutes = self.estimated_s * (1.0 - acked / self.total) / 60.0
        return f"about {minutes:.0f} min left"

    def start(self, record_id: str, total: int) -> None:
        self.total = max(total, 1)
        log.info("record %s: printing %d commands", record_id, total)
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress("printing", BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.percentage:>3.0f} %"),
                                TextColumn("{task.fields[left]}"),
                                TextColumn("{task.fields[temps]}"), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("print", total=total, left=self._left(0),
                                          temps=self.temps)

    def update(self, acked: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=acked, left=self._left(acked))
        elif acked / self.total >= self.next_log:
            notes = "; ".join(n for n in (self._left(acked), self.temps) if n)
            log.info("printed %d/%d commands (%.0f %%)%s", acked, self.total,
                     100.0 * acked / self.total, f"; {notes}" if notes else "")
            self.next_log += 0.1

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _fault_options(func: F) -> F:
    # One option per field of the virtual printer's Faults, which declares them.
    from doseprint.comms.virtual.firmware import FAULT_OPTIONS

    for name, option in reversed(FAULT_OPTIONS.items()):
        flag = "--" + name.replace("_", "-")
        if option.default is None:  # a count: every Nth line, or after N lines
            func = click.option(flag, type=click.IntRange(min=1), default=None,
                                help=option.metadata["help"])(func)
        else:  # a duration
            func = click.option(flag, type=click.FloatRange(min=0.0), default=option.default,
                                show_default=True, help=option.metadata["help"])(func)
    return func


@cli.command("virtual-printer")
@click.option("--pty", "use_pty", is_flag=True,
              help="Serve on a new pseudo-terminal; its path is the first line printed.")
@click.option("--tcp", "tcp_port", type=click.IntRange(1, 65535), default=None,
              help="Serve on this TCP port of 127.0.0.1 (connect with socket://127.0.0.1:PORT).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every accepted command to this file, one per line.")
@_fault_options
@click.option("--heat-rate", "heat_rate_c_s", type=click.FloatRange(min=0.1), default=1000.0,
              show_default=True, help="Heating speed of the simulated heaters, °C/s.")
@click.option("--extrude-min-temp", "extrude_min_temp_c", type=click.FloatRange(min=0.0),
              default=170.0, show_default=True,
              help="The firmware's minimum extrusion temperature, °C (Marlin's "
                   "EXTRUDE_MINTEMP; M302 S<t> changes it at run time).")
@click.option("--advanced-ok", is_flag=True,
              help="Report Cap:ADVANCED_OK:1 and free slots in every ok (ok N12 P15 B3).")
@click.option("--buffer-lines", "rx_buffer_lines", type=click.IntRange(1, 64), default=4,
              show_default=True, help="Command queue slots (Marlin's BUFSIZE).")
def virtual_printer_cmd(
    use_pty: bool, tcp_port: int | None, log_path: Path | None, heat_rate_c_s: float,
    extrude_min_temp_c: float, advanced_ok: bool, rx_buffer_lines: int, **fault_options: Any,
) -> None:
    """Run a simulated Marlin printer until interrupted (Ctrl-C or SIGTERM).

    \b
    Example:
      doseprint virtual-printer --tcp 5555 --log accepted.gcode
      doseprint virtual-printer --pty        # prints e.g. /dev/pts/7
      doseprint virtual-printer --tcp 5555 --drop-ok-every 50 --halt-after 2000
    """
    from doseprint.comms.virtual import Faults, run_virtual_printer

    if use_pty == (tcp_port is not None):
        raise click.UsageError("give exactly one of --pty or --tcp PORT")
    faults = Faults.from_options(fault_options)
    options: dict[str, Any] = {
        "faults": faults, "heat_rate_c_s": heat_rate_c_s,
        "extrude_min_temp_c": extrude_min_temp_c, "advanced_ok": advanced_ok,
        "rx_buffer_lines": rx_buffer_lines,
    }
    if use_pty:
        run_virtual_printer("pty", log_path=log_path, **options)
    else:
        run_virtual_printer("tcp", port=tcp_port, log_path=log_path, **options)


# records ----------------------------------------------------------------------------


@cli.group("record")
def record_group() -> None:
    """The batch records.

    \b
    Example:
      doseprint record list
      doseprint record show 3f2a
      doseprint record verify
    """


_db_option = click.option("--db", default=None,
                          help="Record store: a SQLite path or postgresql://… URL (default: "
                               "DOSEPRINT_DB, else the user's data directory).")


@record_group.command("list")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def record_list(db: str | None, as_json: bool) -> None:
    """List every record, newest last.

    \b
    Example:
      doseprint record list --db records.sqlite
    """
    from doseprint.records.store import open_store

    with open_store(db) as store:
        rows = store.list_records()
    if as_json:
        _echo_json([{"id": r.id, "created_utc": r.created_utc,
                     "prescription_id": r.prescription_id, "patient": r.patient,
                     "status": r.status} for r in rows])
        return
    if not rows:
        click.echo("no records")
    for r in rows:
        click.echo(f"{r.id}  {r.created_utc}  {r.status:<11}  {r.prescription_id}  {r.patient}")


@record_group.command("show")
@click.argument("record_id")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="The whole record, losslessly.")
def record_show(record_id: str, db: str | None, as_json: bool) -> None:
    """Show one record (a unique prefix of its id is enough).

    \b
    Example:
      doseprint record show 3f2a --json
    """
    from doseprint.records.export import record_to_json
    from doseprint.records.store import open_store

    with open_store(db) as store:
        record = store.get(record_id)
    if as_json:
        _echo_json(record_to_json(record))
        return
    c = record.content
    click.echo(f"record       {record.id}")
    click.echo(f"status       {record.status}")
    click.echo(f"prescription {c['prescription']['id']} (patient {c['prescription']['patient']})")
    click.echo(f"printer      {c['machine']['printer']} on {c['machine']['port']}")
    click.echo(f"operator     {c['operator']}")
    click.echo(f"started      {record.started_utc or '-'}")
    click.echo(f"ended        {record.ended_utc or '-'}")
    for m in c["materials"]:
        click.echo(f"material     T{m['tool']} {m['formulation']} lot {m['lot'] or '(not given)'}")
    for t in c["tablets"]:
        for a in t["actives"]:
            click.echo(f"tablet {t['index']:>3}   {a['api']} {a['dose_mg']:g} mg prescribed, "
                       f"{a['gcode_dose_mg']:.3f} mg in G-code; release "
                       f"{'met' if a['release']['met'] else 'NOT met'}")
    sig = record.signature
    if sig is not None:
        click.echo(f"{sig.kind:<12} by {sig.by} at {sig.utc}: {sig.meaning}")
    click.echo("events:")
    events = list(record.events)
    i = 0
    while i < len(events):
        e = events[i]
        detail = ""
        if e.kind == "lines":
            # Print-log batches are many; show each run of them as one row.
            j = i
            while j + 1 < len(events) and events[j + 1].kind == "lines":
                j += 1
            entries = sum(len(x.data.get("entries", [])) for x in events[i:j + 1])
            detail = (f"{j - i + 1} batch(es), {entries} log entries, last acknowledged line "
                      f"{events[j].data.get('last_acked')}")
            i = j
        elif e.kind in ("failed", "aborted", "interrupted"):
            detail = (f"{e.data.get('error', '')} (last acknowledged line "
                      f"{e.data.get('last_acked')})")
        elif e.kind == "completed":
            detail = (f"{e.data.get('commands_acked')} commands, {e.data.get('resends')} "
                      "resends")
        elif e.kind == "firmware":
            detail = str((e.data.get("lines") or [""])[0])[:80]
        elif e.kind in ("released", "rejected"):
            detail = str(e.data.get("meaning", ""))
        seq = f"{e.seq}" if events[i].seq == e.seq else f"{e.seq}-{events[i].seq}"
        click.echo(f"  {seq:>7}  {e.utc}  {e.kind:<11} {e.actor:<16} {detail}")
        i += 1
    click.echo(f"head hash    {record.head_hash}")


@record_group.command("verify")
@click.argument("record_id", required=False)
@_db_option
def record_verify(record_id: str | None, db: str | None) -> None:
    """Recompute the hash chain of one record, or of the whole store; exit 1 on any
    mismatch, naming the first record or event that does not match. RECORD_ID may also
    be a record exported as .json (`record export`): that file is checked instead.

    \b
    Example:
      doseprint record verify
      doseprint record verify batch-3f2a.json
    """
    from doseprint.errors import RecordChainError
    from doseprint.records.chain import verify_record
    from doseprint.records.export import record_from_json
    from doseprint.records.store import open_store

    if record_id is not None and record_id.lower().endswith(".json"):
        try:
            document = json.loads(Path(record_id).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read it: {exc.strerror or exc}", file=record_id) from exc
        except ValueError as exc:
            raise InputError(f"not JSON: {exc}", file=record_id) from exc
        if not isinstance(document, dict):
            raise InputError("not an exported doseprint record", file=record_id)
        exported = record_from_json(document, source=record_id)
        problems = verify_record(exported)
        if problems:
            raise RecordChainError("the exported record does not verify:\n  "
                                   + "\n  ".join(problems),
                                   hint="the file was altered after it was exported")
        click.echo(f"ok: {record_id}: record {exported.id} verified")
        return
    with open_store(db) as store:
        problems = store.verify(record_id)
        count = 1 if record_id else len(store.list_records())
    if problems:
        raise RecordChainError("the record store does not verify:\n  " + "\n  ".join(problems),
                               hint="the store was altered outside doseprint; keep a copy "
                                    "and investigate before releasing anything")
    click.echo(f"ok: {count} record(s) verified")


@record_group.command("export")
@click.argument("record_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .json (lossless record), .html or .pdf (batch report).")
@_db_option
def record_export(record_id: str, out: Path, db: str | None) -> None:
    """Write a record to a file: JSON (lossless, every event with its hashes; `verify`
    works on it) or an HTML batch report with a dispensing label (.pdf too where fpdf2
    is installed).

    \b
    Example:
      doseprint record export 3f2a --out batch-3f2a.json
    """
    from doseprint.job.folder import write_file_atomic
    from doseprint.records.batch_report import render_batch_report
    from doseprint.records.export import record_to_json
    from doseprint.records.store import open_store

    suffix = out.suffix.lower()
    if suffix not in (".json", ".html", ".htm", ".pdf"):
        raise InputError(f"is {out.suffix or 'without a suffix'}; export writes .json (the "
                         "lossless record), .html or .pdf (the batch report with its label)",
                         file=str(out), key="--out")
    if suffix == ".pdf":
        from doseprint.records.batch_report_pdf import render_batch_report_pdf, require_pdf

        require_pdf()  # before the store is opened: nothing is read or written without it
    with open_store(db) as store:
        record = store.get(record_id)
    if suffix == ".json":
        data = (json.dumps(record_to_json(record), indent=1, ensure_ascii=False) + "\n").encode()
    elif suffix == ".pdf":
        data = render_batch_report_pdf(record)
    else:
        data = render_batch_report(record).encode()
    write_file_atomic(out, data)
    click.echo(f"wrote {out}")


@record_group.command("qc")
@click.argument("record_id")
@click.option("--mass-mg", "masses", required=True,
              help="Weighed mass of every tablet, mg, in tablet order, comma-separated.")
@click.option("--by", required=True, help="Who weighed the tablets.")
@_db_option
def record_qc(record_id: str, masses: str, by: str, db: str | None) -> None:
    """Record the weighed mass of each tablet, judged by Ph. Eur. 2.9.5 (uniformity of
    mass), with each tablet's estimated dose. A batch that fails cannot be released.

    \b
    Example:
      doseprint record qc 3f2a --mass-mg 412.1,409.8,415.0,411.2 --by "A. Technician"
    """
    from doseprint.records.qc import qc_event_data
    from doseprint.records.store import open_store

    try:
        values = [float(m) for m in masses.replace(" ", "").split(",") if m]
    except ValueError:
        raise InputError(f"is {masses!r}; give numbers separated by commas",
                         file="command line", key="--mass-mg") from None
    with open_store(db) as store:
        record = store.get(record_id)
        data = qc_event_data(record, values, by)
        store.append(record.id, "qc", data, by)
    u = data["uniformity"]
    verdict = "PASSED" if data["passed"] else "FAILED"
    click.echo(f"QC {verdict}: {len(values)} tablets, average {u['average_mg']:.1f} mg, limit "
               f"±{u['limit_pct']:g} %, {len(u['beyond_limit'])} beyond it, "
               f"{len(u['beyond_twice_limit'])} beyond twice it (record {record.id})")
    for w in data.get("warnings", []):
        click.echo(f"warning: {w}", err=True)


def _sign(kind: str, record_id: str, by: str, meaning: str, db: str | None) -> None:
    from doseprint.records.store import open_store

    with open_store(db) as store:
        if kind == "released":
            event = store.release(record_id, by, meaning)
        else:
            event = store.reject(record_id, by, meaning)
    click.echo(f"{kind} by {by} at {event.utc}: {meaning} (record {event.record_id})")


@record_group.command("release")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer's printed name.")
@click.option("--meaning", required=True, help="What the signature means.")
@_db_option
def record_release(record_id: str, by: str, meaning: str, db: str | None) -> None:
    """Sign a completed record as released for dispensing.

    \b
    Example:
      doseprint record release 3f2a --by "B. Pharmacist" --meaning "QA release"
    """
    _sign("released", record_id, by, meaning, db)


@record_group.command("reject")
@click.argument("record_id")
@click.option("--by", required=True, help="The signer's printed name.")
@click.option("--meaning", required=True, help="Why it is rejected.")
@_db_option
def record_reject(record_id: str, by: str, meaning: str, db: str | None) -> None:
    """Sign a record as rejected (not to be dispensed).

    \b
    Example:
      doseprint record reject 3f2a --by "B. Pharmacist" --meaning "print failed"
    """
    _sign("rejected", record_id, by, meaning, db)


# entry point ------------------------------------------------------------------------


def _report(exc: DoseprintError) -> None:
    if isinstance(exc, InputError) and len(exc.problems) > 1:
        click.echo(f"error: {len(exc.problems)} problems:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
    else:
        click.echo(f"error: {exc.message}", err=True)
    if isinstance(exc, InputError):
        click.echo("nothing was written.", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping errors to cli.md's exit codes (the one place that does)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="doseprint", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_INPUT)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DoseprintError as exc:
        if debug:
            traceback.print_exc()
        _report(exc)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        click.echo("interrupted.", err=True)
        sys.exit(1)
    except Exception:
        if debug:
            traceback.print_exc()
        else:
            click.echo("internal error: this is a bug in doseprint; run again with --debug "
                       "and report the traceback.", err=True)
        sys.exit(EXIT_BUG)
    sys.exit(0)
