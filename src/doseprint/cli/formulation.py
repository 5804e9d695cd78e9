"""``doseprint formulation``: the formulation library, and fitting a formulation's release
to a measured dissolution curve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from doseprint.cli.options import echo_json, json_option, library_options, log
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.job.atomic import write_file_atomic
from doseprint.library import Library, load_formulations


@click.group("formulation")
def formulation_group() -> None:
    """The formulation library.

    \b
    Example:
      doseprint formulation list
      doseprint formulation show theophylline-hpc-30
    """


@formulation_group.command("list")
@library_options
@json_option()
def formulation_list(
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...], as_json: bool
) -> None:
    """List every formulation (shipped and the site's).

    \b
    Example:
      doseprint formulation list --formulations site/formulations
    """
    formulations = load_formulations(formulation_dirs)
    if as_json:
        echo_json([{"id": f.id, "api": f.api, "drug_loading": f.drug_loading,
                     "release_mechanism": f.release_mechanism, "path": f.path}
                    for f in formulations.values()])
        return
    for f in sorted(formulations.values(), key=lambda f: f.id):
        echo_line(f"{f.id:<36} {f.api or '(drug-free)':<20} {f.drug_loading:>5.0%}  "
                  f"{f.release_mechanism:<18} {f.name}")


@formulation_group.command("show")
@click.argument("formulation_id")
@library_options
@json_option()
def formulation_show(
    formulation_id: str, formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Show one formulation with its sources.

    \b
    Example:
      doseprint formulation show theophylline-hpc-30
    """
    f = Library(load_formulations(formulation_dirs), {}).formulation(formulation_id)
    data = dataclasses.asdict(f)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key == "sources":
            echo_line("sources:")
            for s in value:
                echo_line(f"  - {s}")
        else:
            echo_line(f"{key}: {value}")


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
@library_options
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
    # Imported when the command runs: the fit loads scipy (about 0.4 s), which
    # `doseprint --help` would otherwise pay.
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
        echo_line(f"warning: {note}", err=True)
    text = calibrated_formulation_toml(formulation, cal, data_sha256=data.sha256,
                                       data_name=csv_path.name, new_id=out.stem)
    write_file_atomic(out, text.encode("utf-8"))
    fitted = ", ".join(f"{k} = {getattr(cal, k):.4g}" for k in cal.fitted)
    echo_line(f"{formulation_id}: fitted {fitted} to {cal.n_points} points of a "
              f"{diameter_mm:g} × {height_mm:g} mm cylinder (RMS residual "
              f"{cal.rms_residual:.4f}, f2 {cal.f2:.1f}); wrote {out}")
