"""The clinician's preview page: one self-contained HTML file (no network).

The page carries the release curves as inline SVG, the dose table, and a 3D view of the
tablet drawn with three.js, which is vendored unmodified in ``report/vendor/`` and inlined
in the page: the module sits base64-encoded in a data script and is imported from a blob
URL, which works in a page opened as a local file. Encoded, it adds no URL-like text to
the page (the module itself names the XHTML namespace) and cannot close its script
element. The compartment meshes travel as base64 float32 vertex and uint32 index arrays.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import trimesh
from markupsafe import Markup

from doseprint.errors import EnvironmentFault, InputError
from doseprint.job.manifest import JobManifest, TabletEntry

if TYPE_CHECKING:
    from doseprint.geometry.tablet import TabletMesh

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("doseprint.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)

#: The vendored three.js build (npm package ``three``), pinned by version and digest.
THREE_VERSION = "0.170.0"
THREE_FILE = "three.module.min.js"
THREE_SHA256 = "08fd7545d13d2c7fb65ab691530a802dafefd638596501854f267d0fb13c39e7"

#: One colour per API (in order of first appearance in the job); drug-free parts are grey.
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
DRUG_FREE_COLOUR = "#9a9a9a"

# How many distinct tablet designs get their own chart and 3D model.
_MAX_DESIGNS = 6

# Release chart geometry (SVG user units).
_W, _H, _PAD = 560.0, 300.0, 48.0


def api_colours(job: JobManifest) -> dict[str, str]:
    """The colour of each API of a job, shared by the 3D view, the curves and the still.

    Parameters
    ----------
    job : JobManifest
        The job's manifest.

    Returns
    -------
    dict of str to str
        ``{api: "#rrggbb"}`` in order of first appearance over the tablets.
    """
    colours: dict[str, str] = {}
    for tablet in job.tablets:
        for active in tablet.actives:
            if active.api not in colours:
                colours[active.api] = COLOURS[len(colours) % len(COLOURS)]
    return colours


def named_meshes(meshes: Iterable[TabletMesh]) -> dict[str, trimesh.Trimesh]:
    """Compartment meshes keyed as in tablets.3mf: ``tablet-<i>/<name>``.

    Parameters
    ----------
    meshes : iterable of TabletMesh
        The job's tablet meshes (tablet coordinates).

    Returns
    -------
    dict of str to trimesh.Trimesh
    """
    return {f"tablet-{m.index}/{name}": mesh for m in meshes
            for name, mesh in zip(m.names, m.meshes, strict=True)}


def job_meshes(job_dir: Path) -> dict[str, Any]:
    """A job folder's compartment meshes, keyed as :func:`named_meshes` keys them: read
    from its tablets.3mf, which holds each compartment in tablet coordinates (placed by
    transforms).

    Raises
    ------
    InputError
        tablets.3mf is missing or not a 3MF trimesh can read.
    """
    threemf = job_dir / "tablets.3mf"
    try:
        scene: Any = trimesh.load(threemf, force="scene")
    except Exception as exc:  # missing, or not a 3MF trimesh can read
        raise InputError(f"cannot be read ({exc}); compile the job again",
                         file=str(threemf)) from None
    return dict(scene.geometry)


def _chart(tablet: TabletEntry, colours: Mapping[str, str]) -> dict[str, Any]:
    """SVG paths of one tablet's predicted curves and their targets."""
    curves = []
    t_end = float(max(a.release.curve[-1][0] for a in tablet.actives))

    def x(h: float) -> float:
        return _PAD + (_W - 2 * _PAD) * min(h, t_end) / t_end

    def y(f: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * f

    for a in tablet.actives:
        r = a.release
        path = "M" + " L".join(f"{x(h):.1f},{y(f):.1f}" for h, f in r.curve)
        target = r.target
        marks: list[tuple[float, float]]
        # Segments drawn with the marks: the tolerance band of t80, or the "at least"
        # range of an immediate-release target.
        lines: list[tuple[float, float, float, float]] = []
        if r.kind == "profile":
            marks = [(x(h), y(f)) for h, f in target["points"]]
            text = "points " + ", ".join(f"{f * 100:g} % at {h:g} h"
                                         for h, f in target["points"])
        elif r.kind == "sustained":
            t80, tol = float(target["t80_h"]), float(target["tolerance_rel"])
            marks = [(x(t80), y(0.8))]
            lines = [(x(t80 * (1 - tol)), y(0.8), x(t80 * (1 + tol)), y(0.8))]
            text = f"80 % released at {t80:g} h ± {tol * 100:g} %"
        else:
            at, frac = float(target["at_h"]), float(target["fraction"])
            marks = [(x(at), y(frac))]
            lines = [(x(at), y(frac), x(at), y(1.0))]
            text = f"at least {frac * 100:g} % released at {at:g} h"
        curves.append({"api": a.api, "path": path, "colour": colours[a.api],
                       "marks": marks, "lines": lines, "target_text": text, "release": r})
    ticks_x = [(x(h), f"{h:g}") for h in _nice_ticks(t_end)]
    ticks_y = [(y(f), f"{int(f * 100)} %") for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return {"curves": curves, "ticks_x": ticks_x, "ticks_y": ticks_y,
            "w": _W, "h": _H, "pad": _PAD}


def _nice_ticks(t_end: float) -> list[float]:
    step = next((s for s in (0.5, 1, 2, 4, 6, 12, 24, 48) if t_end / s <= 8), 96.0)
    return [i * step for i in range(int(t_end / step) + 1)]


def _b64(array: np.ndarray[Any, Any]) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _model(
    tablet: TabletEntry, meshes: Mapping[str, trimesh.Trimesh],
    colours: Mapping[str, str],
) -> dict[str, Any] | None:
    """One tablet's compartments as compact arrays for the 3D view (None: no meshes)."""
    prefix = f"tablet-{tablet.index}/"
    parts = []
    lows, highs = [], []
    for name, mesh in sorted(meshes.items()):
        if not name.startswith(prefix):
            continue
        part = name[len(prefix):]
        vertices = np.ascontiguousarray(mesh.vertices, dtype="<f4")
        faces = np.ascontiguousarray(mesh.faces, dtype="<u4")
        lows.append(vertices.min(axis=0))
        highs.append(vertices.max(axis=0))
        api = part if part in colours else None
        parts.append({"name": part if api else "drug-free " + part, "api": api,
                      "colour": colours[part] if api else DRUG_FREE_COLOUR,
                      "positions": _b64(vertices), "indices": _b64(faces)})
    if not parts:
        return None
    size = np.max(highs, axis=0) - np.min(lows, axis=0)
    return {"tablet": tablet.index, "summary": tablet.design["summary"],
            "size_mm": [round(float(s), 2) for s in size], "parts": parts}


@cache
def vendored_three() -> bytes:
    """The vendored three.js module, checked against its pinned sha256.

    Returns
    -------
    bytes
        The module source as shipped.

    Raises
    ------
    EnvironmentFault
        The shipped file does not match ``THREE_SHA256`` (a broken installation).
    """
    data = resources.files("doseprint.report").joinpath("vendor", THREE_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != THREE_SHA256:
        raise EnvironmentFault(f"report/vendor/{THREE_FILE}: sha256 {digest}, expected "
                               f"{THREE_SHA256}", hint="reinstall doseprint")
    return data


@cache
def _b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@cache
def _three_licence() -> str:
    """The vendored three.js licence, which the page carries as is in an HTML comment."""
    return resources.files("doseprint.report").joinpath("vendor", "three.LICENSE").read_text(
        encoding="utf-8")


@cache
def _viewer_script() -> str:
    return resources.files("doseprint.report").joinpath("templates", "viewer.js").read_text(
        encoding="utf-8")


def render_preview(
    job: JobManifest, meshes: Mapping[str, trimesh.Trimesh] | None = None
) -> str:
    """The preview page of a job.

    Parameters
    ----------
    job : JobManifest
        The job's manifest.
    meshes : mapping of str to trimesh.Trimesh, optional
        Compartment meshes keyed ``tablet-<i>/<name>`` in tablet coordinates (the names of
        tablets.3mf, see `named_meshes`). Without them the page has no 3D view.

    Returns
    -------
    str
        The HTML page, self-contained.
    """
    colours = api_colours(job)
    distinct = []
    seen = set()
    for t in job.tablets:
        key = (repr(sorted(t.design["dimensions_mm"].items())),
               tuple(a.dose_mg for a in t.actives))
        if key not in seen:
            seen.add(key)
            distinct.append(t)
    shown = distinct[:_MAX_DESIGNS]
    models = [m for m in (_model(t, meshes or {}, colours) for t in shown) if m is not None]
    return _ENV.get_template("preview.html.j2").render(
        job=job, first=job.tablets[0], charts=[(t, _chart(t, colours)) for t in shown],
        more=len(distinct) - len(shown), colours=colours, drug_free=DRUG_FREE_COLOUR,
        models=models, drug_free_shown=any(p["api"] is None for m in models for p in m["parts"]),
        three_version=THREE_VERSION,
        three=_b64_text(vendored_three()) if models else "",
        three_licence=Markup(_three_licence()),
        viewer=Markup(_viewer_script()) if models else "",
    )
