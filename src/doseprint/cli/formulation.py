"""``doseprint formulation``: the formulation library, and fitting a formulation's release
to a measured dissolution curve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from doseprint.cli.lot import site_act_signer
from doseprint.cli.options import db_option, echo_json, json_option, library_options, log
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.job.atomic import write_file_atomic
from doseprint.library import Library, load_formulations
from doseprint.records.approvals import (
    APPROVAL_KINDS,
    approvals_of,
    approve_formulation,
    withdraw_approval,
)
from doseprint.records.lots import check_name
from doseprint.records.store import open_store


@click.group("formulation")
def formulation_group() -> None:
    """The formulation library, and which versions of its files are approved for
    dispensing.

    \b
    Example:
      doseprint formulation list
      doseprint formulation show theophylline-hpc-30
      doseprint formulation approve theophylline-hpc-30 --by qa
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


_FORMULATIONS = click.option(
    "--formulations", "formulation_dirs", multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra formulation folder (repeatable; also DOSEPRINT_FORMULATIONS).")


@formulation_group.command("approve")
@click.argument("formulation_id")
@click.option("--by", required=True, help="Who approves it: in a store with accounts a user "
              "id whose role may approve formulations (quality), who signs in (password "
              "asked for, or read from standard input); else a name, and the site key "
              "signs.")
@click.option("--meaning", default="master formulation record approved for dispensing",
              show_default=True, help="What the signature means.")
@_FORMULATIONS
@db_option
def formulation_approve(formulation_id: str, by: str, meaning: str,
                        formulation_dirs: tuple[Path, ...], db: str | None) -> None:
    """Approve the formulation file of FORMULATION_ID, as it is now, for dispensing.

    The approval is for the file's SHA-256: a file changed since needs a new approval.
    `compile --dispense`, and `print` in a store with accounts, refuse a formulation
    version that is not approved.

    \b
    Example:
      doseprint formulation approve theophylline-hpc-30 --by qa \\
          --meaning "MFR-0007 rev 2 approved for dispensing"
    """
    f = Library(load_formulations(formulation_dirs), {}).formulation(formulation_id)
    check_name(meaning, "--meaning", "the meaning of the signature")
    with open_store(db) as store:
        signer = site_act_signer(store, by, "approve_formulation")
        approval = approve_formulation(store, f.id, f.sha256, Path(f.path).name,
                                       meaning=meaning, by=by, signer=signer)
    echo_line(f"approved {f.id} sha256 {f.sha256} ({Path(f.path).name}) for dispensing "
               f"(site event {approval.seq}, signed by {approval.actor})")


@formulation_group.command("approvals")
@_FORMULATIONS
@db_option
@json_option()
def formulation_approvals(formulation_dirs: tuple[Path, ...], db: str | None,
                          as_json: bool) -> None:
    """List every approval, and whether the library's file is still that version
    (current), has changed since (changed), or is gone from the library (missing).

    \b
    Example:
      doseprint formulation approvals --json
    """
    library = load_formulations(formulation_dirs)
    with open_store(db) as store:
        approvals = approvals_of(store.site_events(APPROVAL_KINDS))
    rows = []
    for a in approvals:
        f = library.get(a.formulation)
        file = "missing" if f is None else "current" if f.sha256 == a.sha256 else "changed"
        rows.append({**a.to_json(), "library_file": file})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo_line("no formulation is approved for dispensing "
                   "(`doseprint formulation approve`)")
    for row in rows:
        echo_line(f"{row['formulation']:<34} {row['sha256'][:16]}…  {row['status']:<9} "
                   f"file {row['library_file']:<8} {row['utc'][:10]} by {row['by']}: "
                   f"{row['meaning']}")


@formulation_group.command("withdraw")
@click.argument("formulation_id")
@click.option("--reason", required=True, help="Why.")
@click.option("--by", required=True, help="Who withdraws it (as for approve).")
@click.option("--sha256", default=None, help="Only the approval of this version (default: "
              "every approved version of the formulation).")
@db_option
def formulation_withdraw(formulation_id: str, reason: str, by: str, sha256: str | None,
                         db: str | None) -> None:
    """Withdraw the approval of FORMULATION_ID: no job compiled with it may be printed
    in a store with accounts, and `compile --dispense` refuses it.

    \b
    Example:
      doseprint formulation withdraw theophylline-hpc-30 --by qa \\
          --reason "dissolution out of specification, deviation D-12"
    """
    check_name(reason, "--reason", "a reason")
    with open_store(db) as store:
        signer = site_act_signer(store, by, "approve_formulation")
        withdrawn = withdraw_approval(store, formulation_id.strip(), reason=reason, by=by,
                                      signer=signer, sha256=sha256)
    for a in withdrawn:
        echo_line(f"withdrew the approval of {a.formulation} sha256 {a.sha256}")
