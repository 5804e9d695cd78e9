"""job/folder.py: which folders ``--force`` may replace."""

from __future__ import annotations

import json
from pathlib import Path

from doseprint.job.folder import replaceable_problem
from doseprint.job.manifest import FLOW_JOB_SCHEMA, JOB_SCHEMA


def _job(folder: Path, schema: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir()
    manifest = {"schema": schema, "gcode": {"file": "job.gcode"}}
    if files is not None:
        manifest["files"] = files
    (folder / "job.json").write_text(json.dumps(manifest))
    (folder / "job.gcode").write_text("G28\n")
    for name in files or {}:
        (folder / name).write_text("x")
    return folder


def test_a_job_or_flow_calibration_folder_may_be_replaced(tmp_path: Path) -> None:
    assert replaceable_problem(_job(tmp_path / "a", JOB_SCHEMA, {"preview.html": "0"})) is None
    assert replaceable_problem(_job(tmp_path / "b", FLOW_JOB_SCHEMA)) is None


def test_anything_else_may_not(tmp_path: Path) -> None:
    job = _job(tmp_path / "job", JOB_SCHEMA, {"preview.html": "0"})
    (job / "label.pdf").write_text("x")
    assert "label.pdf" in (replaceable_problem(job) or "")
    (job / "label.pdf").unlink()
    (job / "preview.html").unlink()
    (job / "preview.html").symlink_to(tmp_path)  # a listed name that is not a plain file
    assert "preview.html" in (replaceable_problem(job) or "")
    other = _job(tmp_path / "other", "someone.else/1")
    assert "not a doseprint job manifest" in (replaceable_problem(other) or "")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no job.json" in (replaceable_problem(empty) or "")
    plain = tmp_path / "file"
    plain.write_text("x")
    assert replaceable_problem(plain) == "is not a folder"
