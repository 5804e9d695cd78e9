"""A still picture of a job for the record and the docs: the first tablet's compartments
in 3D beside the predicted release curves and their targets (PNG, matplotlib)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import trimesh

from doseprint.job.manifest import ActiveEntry, JobManifest
from doseprint.report.preview import DRUG_FREE_COLOUR, api_colours


def render_still(job: JobManifest, meshes: Mapping[str, trimesh.Trimesh]) -> bytes:
    """PNG bytes of tablet 0 of ``job``.

    Parameters
    ----------
    job : JobManifest
        The job's manifest.
    meshes : mapping of str to trimesh.Trimesh
        Compartment meshes by the 3MF names ``tablet-<i>/<name>`` (tablet coordinates).
    """
    tablet = job.tablets[0]
    fig = plt.figure(figsize=(10.0, 4.2), dpi=100)
    ax3d = fig.add_subplot(1, 2, 1, projection="3d")
    parts = sorted((name.split("/", 1)[1], m) for name, m in meshes.items()
                   if name.startswith("tablet-0/"))
    # The same colour for an API in the picture, on the curves and on the preview page.
    colours = api_colours(job)
    _draw_meshes(ax3d, parts, colours)
    title = f"tablet {tablet.index}: {tablet.design.get('summary', '')}"
    if parts:
        v = np.vstack([np.asarray(m.vertices) for _, m in parts])
        size = v.max(axis=0) - v.min(axis=0)
        title += f"\noverall {size[0]:.2f} × {size[1]:.2f} × {size[2]:.2f} mm (x × y × z)"
    ax3d.set_title(title, fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    for active in tablet.actives:
        _draw_release(ax, active, colours[active.api])
    ax.set_xlabel("hours")
    ax.set_ylabel("fraction released")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{job.prescription.id} · patient {job.prescription.patient} · "
                 f"{job.printer.id}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _draw_meshes(
    ax: Any, parts: Sequence[tuple[str, trimesh.Trimesh]], colours: Mapping[str, str]
) -> None:
    lows, highs = [], []
    for name, mesh in parts:
        v = np.asarray(mesh.vertices)
        colour = colours.get(name, DRUG_FREE_COLOUR)
        ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=np.asarray(mesh.faces),
                        color=colour, alpha=0.9 if name in colours else 0.35, linewidth=0,
                        label=name if name in colours else f"drug-free {name}")
        lows.append(v.min(axis=0))
        highs.append(v.max(axis=0))
    if lows:
        lo, hi = np.min(lows, axis=0), np.max(highs, axis=0)
        span = float(np.max(hi - lo)) / 2.0
        mid = (lo + hi) / 2.0
        ax.set_xlim(mid[0] - span, mid[0] + span)
        ax.set_ylim(mid[1] - span, mid[1] + span)
        ax.set_zlim(mid[2] - span, mid[2] + span)
    ax.set_xlabel("mm", fontsize=8)
    ax.view_init(elev=25, azim=-60)
    ax.legend(fontsize=8, loc="upper left")


def _draw_release(ax: Any, active: ActiveEntry, colour: str) -> None:
    release = active.release
    curve = np.asarray(release.curve)
    met = "met" if release.met else "NOT met"
    ax.plot(curve[:, 0], curve[:, 1], color=colour,
            label=f"{active.api} {active.dose_mg:g} mg ({release.kind}, {met})")
    # The target as on the preview page: t80 with its tolerance band, the profile's points,
    # or the least fraction at a time (a bar up to 100 %).
    target = release.target
    if release.kind == "sustained":
        t80, tol = target["t80_h"], target["tolerance_rel"]
        ax.plot([t80 * (1 - tol), t80 * (1 + tol)], [0.8, 0.8], color=colour, lw=4, alpha=0.4)
        ax.plot([t80], [0.8], "o", mfc="none", color=colour, ms=8)
    elif release.kind == "profile":
        points = np.asarray(target["points"])
        ax.plot(points[:, 0], points[:, 1], "o", mfc="none", color=colour, ms=7)
    else:
        ax.plot([target["at_h"]] * 2, [target["fraction"], 1.0], color=colour, lw=4, alpha=0.4)
        ax.plot([target["at_h"]], [target["fraction"]], "o", mfc="none", color=colour, ms=8)
