"""The preview page without a browser: self-contained (no external URL), complete per the
issue (ids, materials, printer, warnings, doses of every tablet, both curves and their
targets, met / not met), the 3D model embedded faithfully, the vendored three.js pinned,
and the command line writing the page and the PNG still."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from doseprint.cli import main
from doseprint.job.manifest import JobManifest
from doseprint.report import preview
from doseprint.report.preview import THREE_SHA256, THREE_VERSION, api_colours, render_preview

VENDOR = Path(preview.__file__).parent / "vendor"

def load(job_dir: Path) -> tuple[dict[str, Any], dict[str, trimesh.Trimesh]]:
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    scene = trimesh.load(job_dir / "tablets.3mf", force="scene")
    return job, dict(scene.geometry)


def split_vendored(page: str) -> tuple[str, bytes]:
    """The page without the inlined three.js module, and that module (decoded)."""
    match = re.search(r'<script type="application/octet-stream" id="three-module">(.*?)'
                      r'</script>', page, flags=re.S)
    assert match is not None
    return page[:match.start(1)] + page[match.end(1):], base64.b64decode(match.group(1))


def test_vendored_three_matches_its_pinned_digest_and_readme() -> None:
    data = (VENDOR / "three.module.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == THREE_SHA256
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    assert THREE_SHA256 in readme and f"three@{THREE_VERSION}" in readme
    assert f'const t="{THREE_VERSION.split(".")[1]}"' in data[:400].decode()  # REVISION
    licence = (VENDOR / "three.LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence
    assert not any(s in licence for s in ("--", "<", "&"))  # safe as is in an HTML comment
    # Safe to inline in a script element as it is.
    assert not re.search(rb"</script|<!--", data, flags=re.I)


def test_compiled_page_has_no_external_url(two_drug_job: Path) -> None:
    page = (two_drug_job / "preview.html").read_text(encoding="utf-8")
    rest, module = split_vendored(page)
    # three.js is inlined whole and unmodified (base64, so its one URL-like string, the
    # XHTML namespace name, does not appear in the page's text), with its licence.
    assert module == (VENDOR / "three.module.min.js").read_bytes()
    assert b"http://www.w3.org/1999/xhtml" in module
    licence = (VENDOR / "three.LICENSE").read_text(encoding="utf-8")
    assert f"{licence}-->" in rest
    # Anywhere in the page: no scheme-qualified or protocol-relative reference, no
    # src / href attribute, no CSS url() or @import.
    assert "://" not in page and "//cdn" not in page.lower()
    assert not re.search(r"\b(src|href)\s*=", page, flags=re.I)
    assert not re.search(r"(?<![\w.])url\(|@import", page)  # CSS; not URL.createObjectURL(


def test_page_shows_everything_the_clinician_needs(two_drug_job: Path) -> None:
    job, meshes = load(two_drug_job)
    page = render_preview(JobManifest.from_json(job), meshes)
    rest, _ = split_vendored(page)
    assert job["prescription"]["id"] in rest and job["prescription"]["patient"] in rest
    assert job["printer"]["id"] in rest
    for tool in job["tools"]:
        assert tool["formulation"] in rest
    assert job["warnings"], "the example's estimated material values give a warning"
    for warning in job["warnings"]:
        assert f"<li>{warning}</li>" in rest
    rows = re.findall(r"<tr><td>(\d+)</td><td>([a-z-]+)</td><td>([\d.]+)</td>", rest)
    assert sorted(rows) == sorted((str(t["index"]), a["api"], str(a["dose_mg"]))
                                  for t in job["tablets"] for a in t["actives"])
    colours = api_colours(JobManifest.from_json(job))
    assert len(colours) == 2 and len(set(colours.values())) == 2
    for api, colour in colours.items():
        assert len(re.findall(rf'<path class="curve" data-api="{api}" d="M[^"]+" fill="none" '
                              rf'stroke="{colour}"', rest)) == 1
        target = re.search(rf'<g class="target" data-api="{api}"[^>]*>(.*?)</g>', rest, re.S)
        assert target is not None and "<circle" in target.group(1)
        assert re.search(rf'class="release" data-api="{api}">.*?class="met">met<', rest, re.S)
    # The legend names both APIs in their colours.
    legend = re.search(r'<div class="legend">(.*?)</div>', rest, re.S)
    assert legend is not None
    for api, colour in colours.items():
        assert f'background: {colour}"></span>{api}' in legend.group(1)
    assert "@media print" in rest


def test_not_met_is_shown_as_not_met(two_drug_job: Path) -> None:
    job, meshes = load(two_drug_job)
    job["tablets"][0]["actives"][1]["release"]["met"] = False
    page = render_preview(JobManifest.from_json(job), meshes)
    api = job["tablets"][0]["actives"][1]["api"]
    assert re.search(rf'class="release" data-api="{api}">.*?class="notmet">not met<', page,
                     re.S)


def test_embedded_model_is_the_3mf_meshes(two_drug_job: Path) -> None:
    job, meshes = load(two_drug_job)
    page = render_preview(JobManifest.from_json(job), meshes)
    match = re.search(r'<script type="application/json" id="doseprint-models">(.*?)</script>',
                      page, re.S)
    assert match is not None
    models = json.loads(match.group(1))
    # Both tablets of the example share one design: one model.
    assert [m["tablet"] for m in models] == [0]
    parts = {p["api"]: p for p in models[0]["parts"]}
    assert set(parts) == {"theophylline", "hydrochlorothiazide"}
    for api, part in parts.items():
        original = meshes[f"tablet-0/{api}"]
        vertices = np.frombuffer(base64.b64decode(part["positions"]), "<f4").reshape(-1, 3)
        faces = np.frombuffer(base64.b64decode(part["indices"]), "<u4").reshape(-1, 3)
        np.testing.assert_allclose(vertices, original.vertices, atol=1e-5)
        np.testing.assert_array_equal(faces, original.faces)
        volume = trimesh.Trimesh(vertices, faces, process=False).volume
        design = next(a["design_volume_mm3"] for a in job["tablets"][0]["actives"]
                      if a["api"] == api)
        assert volume == pytest.approx(design, rel=0.01)
    d = job["tablets"][0]["design"]["dimensions_mm"]
    assert models[0]["size_mm"][2] == pytest.approx(d["height"], abs=0.01)
    assert models[0]["size_mm"][0] == pytest.approx(d["diameter"], rel=0.01)


def test_drug_free_parts_are_grey_and_in_the_legend(two_drug_job: Path) -> None:
    job, meshes = load(two_drug_job)
    meshes["tablet-0/shell"] = trimesh.creation.box((12.0, 12.0, 6.0))
    manifest = JobManifest.from_json(job)
    page = render_preview(manifest, meshes)
    models = json.loads(re.search(r'id="doseprint-models">(.*?)</script>', page, re.S)[1])
    shell = next(p for p in models[0]["parts"] if p["api"] is None)
    assert shell["name"] == "drug-free shell" and shell["colour"] == preview.DRUG_FREE_COLOUR
    assert f'background: {preview.DRUG_FREE_COLOUR}"></span>drug-free' in page
    assert "drug-free" not in render_preview(manifest, load(two_drug_job)[1]).split("<h2>")[1]


def test_without_meshes_the_page_carries_no_viewer(two_drug_job: Path) -> None:
    job, _ = load(two_drug_job)
    page = render_preview(JobManifest.from_json(job))
    assert 'id="three-module"' not in page and 'id="viewer"' not in page
    assert 'class="curve"' in page


def test_cli_writes_page_and_still(
    two_drug_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html, png = tmp_path / "p.html", tmp_path / "p.png"
    with pytest.raises(SystemExit) as info:
        main(["preview", str(two_drug_job), "--out", str(html), "--png", str(png)])
    assert info.value.code == 0
    # The page rebuilt from job.json and tablets.3mf is the compiled one, byte for byte,
    # so rewriting a job's preview.html keeps its hash in job.json true.
    assert html.read_bytes() == (two_drug_job / "preview.html").read_bytes()
    image = np.asarray(Image.open(io.BytesIO(png.read_bytes())).convert("RGB")).astype(int)
    assert image.shape[1] > image.shape[0] > 300
    # The tablet and the curves are drawn in each API's colour.
    for colour in api_colours(JobManifest.from_json(load(two_drug_job)[0])).values():
        rgb = np.array([int(colour[k:k + 2], 16) for k in (1, 3, 5)])
        near = np.abs(image - rgb).sum(axis=2) < 60
        left, right = near[:, : image.shape[1] // 2], near[:, image.shape[1] // 2:]
        assert left.sum() > 500 and right.sum() > 200


def test_cli_refuses_a_job_without_its_3mf(
    two_drug_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "job"
    broken.mkdir()
    for name in ("job.json", "job.seal"):
        (broken / name).write_bytes((two_drug_job / name).read_bytes())
    out = tmp_path / "p.html"
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["preview", str(broken), "--out", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "tablets.3mf" in err and "Traceback" not in err
    assert not out.exists()
