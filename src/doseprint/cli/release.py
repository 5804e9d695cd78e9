"""``doseprint release``: a prescription's designed release beside its target, or the
release of any watertight mesh of one formulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from doseprint.cli.options import echo_json, json_option, library_options
from doseprint.cli.terminal import echo_line
from doseprint.job.atomic import write_file_atomic
from doseprint.library import Library, load_library
from doseprint.models.formulation import Formulation
from doseprint.models.load import check_prescription, load_prescription
from doseprint.models.prescription import Active


@click.command("release")
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
@library_options
@json_option()
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
    lib: Library, rx: Path, printer_id: str, csv_path: Path | None, as_json: bool
) -> None:
    # Imported when the command runs: the designer and the 3D release model load trimesh,
    # scipy and shapely (about 0.8 s), which `doseprint --help` would otherwise pay.
    from doseprint.compile import design_and_predict
    from doseprint.job.prepare import prepare

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
        echo_json(rows)
        return
    echo_line(f"design: {first.design.describe()}")
    for row in rows:
        f2 = "" if row["f2"] is None else f"  f2 {row['f2']:.1f}"
        echo_line(f"{row['api']} ({row['formulation']}): target {row['target']} | predicted "
                  f"t50 {_h(row['t50_h'])}  t80 {_h(row['t80_h'])}  "
                  f"{row['released_at_0_5_h']:.0%} at 30 min{f2} | "
                  f"{'met' if row['met'] else 'NOT met'}")
    if len({repr(t.design.dimensions) for t in tablets}) > 1:
        echo_line("(schedule: the first tablet is shown; `compile` designs every tablet)")


def _target_text(active: Active) -> str:
    if active.release == "sustained":
        return f"t80 {active.t80_h:g} h ±10 %"
    if active.release == "profile":
        assert active.profile is not None
        return "profile " + " ".join(f"{h:g}h:{f:.0%}" for h, f in active.profile) + " (f2 ≥ 50)"
    return "≥ 85 % at 30 min"


def _write_curves(path: Path, curves: list[tuple[str, Any, Any]]) -> None:
    """CSV of cli.md: ``hours``, then one column per API (fractions), on one time grid."""
    hours = np.unique(np.concatenate([h for _, h, _ in curves]))
    lines = ["hours," + ",".join(name for name, _, _ in curves)]
    for h in hours:
        values = ",".join(f"{float(np.interp(h, hh, ff)):.6f}" for _, hh, ff in curves)
        lines.append(f"{h:g},{values}")
    write_file_atomic(path, ("\n".join(lines) + "\n").encode())


def _release_of_mesh(
    formulation: Formulation, mesh_path: Path, hours: float, csv_path: Path | None,
    as_json: bool,
) -> None:
    # Imported when the command runs: the 3D model loads trimesh and scipy (about 0.7 s),
    # which `doseprint --help` would otherwise pay.
    from doseprint.release.mesh import predict_mesh_release

    r = predict_mesh_release(formulation, mesh_path, hours)
    row = {"api": r.api, "formulation": r.formulation, "volume_mm3": r.volume_mm3,
           "area_mm2": r.area_mm2, "t50_h": r.t50_h, "t80_h": r.t80_h, "mdt_h": r.mdt_h,
           "released_at_end": r.released_at_end, "model": r.model}
    if csv_path is not None:
        _write_curves(csv_path, [(r.api, r.hours, r.fraction)])
    if as_json:
        echo_json(row)
        return
    echo_line(f"{mesh_path.name}: {r.volume_mm3:.1f} mm3, {r.area_mm2:.1f} mm2, "
              f"{r.formulation}: t50 {_h(r.t50_h)}  t80 {_h(r.t80_h)}  "
              f"{r.released_at_end:.0%} at {hours:g} h")


def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} h"
