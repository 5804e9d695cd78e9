"""job/manifest.py: job.json as one frozen value, read back byte for byte, every bad key
named."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from doseprint.errors import InputError
from doseprint.job.folder import read_job
from doseprint.job.manifest import JOB_SCHEMA, JobManifest


def _data(job_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    return data


def _problems(data: Any) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        JobManifest.from_json(data, source="job.json")
    assert all(p.file == "job.json" for p in caught.value.problems)
    return {p.key: p.message for p in caught.value.problems}


def test_job_json_round_trips_byte_for_byte(two_drug_job: Path) -> None:
    written = (two_drug_job / "job.json").read_bytes()
    manifest = JobManifest.from_json(json.loads(written))
    assert manifest.to_bytes() == written
    assert read_job(two_drug_job) == manifest


def test_the_manifest_is_frozen_and_typed(two_drug_job: Path) -> None:
    manifest = read_job(two_drug_job)
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.print_order = "tablet"  # type: ignore[misc]
    assert isinstance(manifest.tablets, tuple) and isinstance(manifest.tools, tuple)
    assert len(manifest.tools) == 2
    assert {a.api for t in manifest.tablets for a in t.actives} == {
        "theophylline", "hydrochlorothiazide"}
    # Every (tablet, API, tool, dose) the dose check compares the G-code against.
    assert manifest.expected_doses() == [
        (t.index, a.api, a.tool, a.dose_mg) for t in manifest.tablets for a in t.actives]
    assert next(iter(manifest.file_hashes())) == "job.gcode"


def test_an_unknown_schema_is_refused_by_name(two_drug_job: Path) -> None:
    data = _data(two_drug_job)
    data["schema"] = "doseprint.job/2"
    assert set(_problems(data)) == {"schema"}
    assert JOB_SCHEMA in _problems(data)["schema"]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.pop("created_utc"), "created_utc"),
        (lambda d: d["prescription"].pop("sha256"), "prescription.sha256"),
        (lambda d: d["tablets"][0]["actives"][1].update(dose_mg="12.5"),
         "tablets[0].actives[1].dose_mg"),
        (lambda d: d["tablets"][1]["actives"][0].update(tool=7), "tablets[1].actives[0].tool"),
        (lambda d: d["gcode"].update(lines=-0.5), "gcode.lines"),
        (lambda d: d.update(files=["tablets.3mf"]), "files"),
        (lambda d: d["tools"].reverse(), "tools"),
        (lambda d: d.update(tablets=d["tablets"][1:]), "tablets"),
    ],
)
def test_every_bad_key_is_named(two_drug_job: Path, edit: Any, key: str) -> None:
    data = copy.deepcopy(_data(two_drug_job))
    edit(data)
    assert key in _problems(data)


def test_every_problem_is_reported_at_once(two_drug_job: Path) -> None:
    data = _data(two_drug_job)
    del data["created_utc"]
    data["gcode"]["sha256"] = 5
    assert {"created_utc", "gcode.sha256"} <= set(_problems(data))


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InputError):
        JobManifest.from_json(["a", "list"])
