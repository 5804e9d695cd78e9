"""``doseprint calibrate flow``: a printer's extrusion multiplier for a formulation, by
weighing printed discs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from doseprint.cli.options import library_options, mass_list_option, trailing_masses
from doseprint.cli.terminal import echo_line
from doseprint.job.folder import check_out_dir, write_job_folder
from doseprint.job.keys import site_key_for_compile
from doseprint.job.seal import seal_files
from doseprint.library import load_library


@click.group("calibrate")
def calibrate_group() -> None:
    """Printer calibrations (the formulations' own: `doseprint formulation calibrate`).

    \b
    Example:
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --out cal-job
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --job cal-job --mass-mg "641.2, 638.9, 640.5"
    """


@calibrate_group.command("flow")
@click.option("--printer", "printer_id", required=True, help="Printer profile id.")
@click.option("--formulation", "formulation_id", required=True, help="Formulation id.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write a calibration job folder (discs of known mass) here.")
@click.option("--job", "job_dir", type=click.Path(path_type=Path), default=None,
              help="The calibration job that was printed and weighed.")
@mass_list_option("With --job: each weighed disc's mass in mg, separated by commas or "
                  'spaces (--mass-mg "641.2, 638.9 640.5"; the older --mass-mg M [M ...] '
                  "works too).")
@click.argument("more_masses", nargs=-1)
@click.option("--calibrations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibrations file (also DOSEPRINT_CALIBRATIONS; default: "
                   "calibrations.json in the user's data folder).")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@library_options
def calibrate_flow(
    printer_id: str, formulation_id: str, out: Path | None, job_dir: Path | None,
    masses: tuple[float, ...], more_masses: tuple[str, ...], calibrations: Path | None,
    force: bool,
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
) -> None:
    """Measure the extrusion multiplier of FORMULATION on PRINTER by weighing.

    First write a calibration job (--out), print it with the multiplier at 1 and weigh
    each disc; then give the masses (--job with --mass-mg "M, M, M", the same list as
    `record qc` takes): the multiplier nominal / mean mass is stored for compile to apply.

    \b
    Example:
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --out cal-job
      doseprint calibrate flow --printer generic-marlin-1x175 \\
          --formulation theophylline-hpc-30 --job cal-job --mass-mg "641.2, 638.9, 640.5"
    """
    # Imported when the command runs: slicing and rendering the calibration job load
    # shapely and the G-code stage (about 0.6 s), which `doseprint --help` would otherwise pay.
    from doseprint.job.flow_calibration import (
        compute_flow_calibration,
        default_calibrations_path,
        make_flow_job,
        read_flow_job,
        store_flow_calibration,
    )

    if more_masses and not masses:
        raise click.UsageError("give the weighed masses after --mass-mg")
    mass_values = [*masses, *trailing_masses(more_masses)]
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
        key = site_key_for_compile()
        files = make_flow_job(profile, formulation)
        # Sealed like any job: the nominal mass in job.json sets the multiplier every
        # later dose of this printer and formulation is laid with.
        write_job_folder(out, seal_files(files, key), force=force)
        manifest = json.loads(files["job.json"])
        echo_line(f"wrote {out}: {len(manifest['objects'])} discs of "
                  f"{manifest['nominal_mass_mg']:.1f} mg nominal each; print job.gcode, "
                  "weigh each disc and run again with --job and --mass-mg")
        return
    assert job_dir is not None
    manifest = read_flow_job(job_dir)
    entry = compute_flow_calibration(manifest, profile, formulation, mass_values)
    target = calibrations or default_calibrations_path()
    store_flow_calibration(target, entry)
    echo_line(f"{formulation.id} on {profile.id}: extrusion multiplier "
              f"{entry.multiplier:.4f} (nominal {entry.nominal_mass_mg:.1f} mg, weighed "
              f"mean {sum(entry.masses_mg) / len(entry.masses_mg):.1f} mg); wrote {target}")
