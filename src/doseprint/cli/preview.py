"""``doseprint preview``: the clinician's preview page of a job folder or a
prescription."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from doseprint.cli.options import library_options
from doseprint.cli.terminal import echo_line
from doseprint.job.atomic import write_file_atomic
from doseprint.job.folder import read_job


@click.command("preview")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default: SOURCE's preview.html or <rx>.html).")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a still picture: the tablet beside its release curves.")
@click.option("--printer", "printer_id", default="generic-marlin-1x175", show_default=True,
              help="Printer to design for when SOURCE is a prescription.")
@library_options
def preview_cmd(
    source: Path, out: Path | None, png: Path | None, printer_id: str,
    formulation_dirs: tuple[Path, ...], printer_dirs: tuple[Path, ...],
) -> None:
    """Write the clinician's preview page of a job folder or a prescription.

    \b
    Example:
      doseprint preview job-123 --out job-123.html --png job-123.png
    """
    # Imported when the command runs: the pipeline, the page and its still load trimesh,
    # scipy, shapely and matplotlib (about 1 s), which `doseprint --help` would otherwise pay.
    from doseprint.compile import compile_prescription
    from doseprint.report.preview import job_meshes, named_meshes, render_preview
    from doseprint.report.still import render_still

    meshes: dict[str, Any]
    if source.is_dir():
        job = read_job(source, check_hashes=False)
        target = out or source / "preview.html"
        meshes = job_meshes(source)
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
    echo_line(f"wrote {target}")
    if png is not None and still is not None:
        write_file_atomic(png, still)
        echo_line(f"wrote {png}")
