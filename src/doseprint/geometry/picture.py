"""Pictures of a sized tablet: a cut-away 3D view and a vertical section, as a PNG.

Drawn with matplotlib's Agg canvas (no display, no pyplot state); matplotlib is needed
only by this module. ``python -m doseprint.geometry.picture docs/img`` redraws the
designs shown in docs/designs.md (:data:`GALLERY`). The output depends
only on the geometry: the PNG carries no software version or date, so the same design
renders to the same bytes with the same matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import manifold3d
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath

from doseprint.geometry.build import size_tablet
from doseprint.geometry.layouts import LAYOUT_KINDS
from doseprint.geometry.sized import CompartmentGeometry, TabletGeometry
from doseprint.geometry.spec import TabletSpec
from doseprint.typed import FloatArray

__all__ = [
    "GALLERY",
    "compartment_colour",
    "render_gallery",
    "render_png",
    "section_xy",
    "section_xz",
]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")
"""Drug-loaded compartments 0..3: blue, red, green, orange."""

_SHELL = "#b8b8b8"
_LIGHT = np.array([-0.2, -0.6, 0.78])
"""Light direction for shading (from above, on the viewer's side)."""

_ELEVATION_DEG = 28.0
_AZIMUTH_DEG = -58.0
_CUT_TURN_DEG = 4.0
"""The cut-away's plane is turned this far from the x axis, off any pie interface."""

_SECTION_Y_MM = 1e-3
"""The vertical section is taken just off y = 0, so it never lies in a pie interface."""


def compartment_colour(compartment: CompartmentGeometry) -> str:
    """The colour a compartment is drawn in (shell grey, then one per index)."""
    if compartment.role == "shell":
        return _SHELL
    return _PALETTE[compartment.index % len(_PALETTE)]


def _label(c: CompartmentGeometry) -> str:
    if c.role == "shell":
        return f"shell (drug-free), {c.volume_mm3:.1f} mm³"
    return f"compartment {c.index}, {c.volume_mm3:.1f} mm³"


def section_xz(geometry: TabletGeometry) -> list[list[FloatArray]]:
    """Contours of each compartment in the vertical plane y ≈ 0, as (x, z) arrays (mm).

    Returns
    -------
    list of list of (n, 2) float
        Per compartment (``compartments`` order), its closed contours: outer ones
        counter-clockwise, holes clockwise.
    """
    out = []
    for m in geometry.manifolds:
        # Rotating by −90° about x sends y to −z, so y = y0 becomes z = −y0.
        turned = m.rotate((-90.0, 0.0, 0.0))
        polys = turned.slice(-_SECTION_Y_MM).to_polygons()
        out.append([np.asarray(p, dtype=np.float64) for p in polys])
    return out


def _shaded(base: FloatArray, normals: FloatArray) -> FloatArray:
    """Face colours (n, 3) lit by a Lambert term from ``_LIGHT`` over a floor of ambient."""
    light = _LIGHT / np.linalg.norm(_LIGHT)
    lambert = np.clip(normals @ light, 0.0, 1.0)
    shade = 0.45 + 0.55 * lambert
    return np.asarray(np.clip(base * shade[:, None], 0.0, 1.0), dtype=np.float64)


_ELEVATION_DEG = 28.0
_AZIMUTH_DEG = -58.0


def _cutaway(ax: Any, geometry: TabletGeometry) -> None:
    """The back half of the tablet, so the cut face shows the inside.

    The halves of the compartments are united (manifold3d keeps, per triangle, which
    input it came from), so interfaces vanish and only the outside is drawn, coloured by
    compartment, without the faces turned away from the viewer. The cut face is then
    drawn on top, one section polygon per compartment, larger first: the kept half lies
    wholly behind the cut plane, so nothing can hide it. The plane is turned a few
    degrees off the x axis, so it never lies in an interface (pie segments start on +x).
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # type: ignore[import-untyped]

    turn = np.radians(_CUT_TURN_DEG)
    normal = np.array([-np.sin(turn), np.cos(turn), 0.0])
    halves, colour_of = [], {}
    for c, m in zip(geometry.compartments, geometry.manifolds, strict=True):
        half = m.trim_by_plane(tuple(normal), 0.0).as_original()
        if half.is_empty():
            continue
        colour_of[half.original_id()] = compartment_colour(c)
        halves.append(half)
    mesh = manifold3d.Manifold.batch_boolean(halves, manifold3d.OpType.Add).to_mesh64()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    tris = verts[np.asarray(mesh.tri_verts, dtype=np.int64)]
    runs = np.asarray(mesh.run_index, dtype=np.int64) // 3
    base = np.zeros((len(tris), 3))
    for start, stop, original in zip(runs[:-1], runs[1:], mesh.run_original_id, strict=True):
        base[start:stop] = to_rgb(colour_of[int(original)])
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    elev, azim = np.radians(_ELEVATION_DEG), np.radians(_AZIMUTH_DEG)
    towards_viewer = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim),
                               np.sin(elev)])
    keep = lengths > 0.0
    unit = np.zeros_like(normals)
    unit[keep] = normals[keep] / lengths[keep, None]
    on_cut = np.abs(tris @ normal).max(axis=1) < 1e-9 * max(1.0, geometry.longest_mm)
    keep &= (unit @ towards_viewer > 0.0) & ~on_cut
    shades = _shaded(base[keep], unit[keep])
    ax.computed_zorder = False
    # Edges in the face colour close the hairline gaps antialiasing leaves between facets.
    ax.add_collection3d(Poly3DCollection(list(tris[keep]), facecolors=shades,
                                         edgecolors=shades, linewidths=0.3, zorder=1))
    lit = float(np.clip(-normal @ (_LIGHT / np.linalg.norm(_LIGHT)), 0.0, 1.0))
    faces = []
    for c, contours in zip(geometry.compartments, _cut_sections(geometry, turn), strict=True):
        for ring in contours:
            area = _ring_area(ring)
            if area > 0.0:  # holes are covered by what fills them, drawn later
                faces.append((area, ring, compartment_colour(c)))
    for k, (_, ring, colour) in enumerate(sorted(faces, key=lambda f: -f[0])):
        u, z = ring[:, 0], ring[:, 1]
        points = np.column_stack([u * np.cos(turn), u * np.sin(turn), z])
        rgb = np.clip(np.asarray(to_rgb(colour)) * (0.45 + 0.55 * lit), 0.0, 1.0)
        ax.add_collection3d(Poly3DCollection([points], facecolors=[rgb], edgecolors="black",
                                             linewidths=0.3, zorder=2 + k))
    radius = geometry.footprint_radius_mm
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(0.0, geometry.height_mm)
    ax.set_box_aspect((2.0 * radius, 2.0 * radius, geometry.height_mm), zoom=1.3)
    ax.view_init(elev=_ELEVATION_DEG, azim=_AZIMUTH_DEG)
    ax.set_axis_off()
    ax.set_title("cut-away (front half removed)", fontsize=9)


def _ring_area(ring: FloatArray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _cut_sections(geometry: TabletGeometry, turn_rad: float) -> list[list[FloatArray]]:
    """Sections of each compartment in the vertical plane through the z axis at angle
    ``turn_rad`` from x, as (u, z) contours, u along the plane."""
    out = []
    for m in geometry.manifolds:
        # Turn the plane onto y = 0, then send y to −z (−90° about x) and slice at z = 0.
        flat = m.rotate((0.0, 0.0, -float(np.degrees(turn_rad)))).rotate((-90.0, 0.0, 0.0))
        out.append([np.asarray(p, dtype=np.float64) for p in flat.slice(0.0).to_polygons()])
    return out


def section_xy(geometry: TabletGeometry, z_mm: float) -> list[list[FloatArray]]:
    """Contours of each compartment in the horizontal plane at ``z_mm``, as (x, y) arrays
    (mm), per compartment; outer contours counter-clockwise, holes clockwise."""
    return [[np.asarray(p, dtype=np.float64) for p in m.slice(z_mm).to_polygons()]
            for m in geometry.manifolds]


def _fill(ax: Any, geometry: TabletGeometry, sections: list[list[FloatArray]]) -> None:
    for c, contours in zip(geometry.compartments, sections, strict=True):
        if not contours:
            continue
        verts: list[list[float]] = []
        codes: list[np.uint8] = []
        for ring in contours:
            verts += [*ring.tolist(), ring[0].tolist()]
            codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring) - 1) + [MplPath.CLOSEPOLY]
        ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=compartment_colour(c),
                               edgecolor="black", linewidth=0.4))
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def _section(ax: Any, geometry: TabletGeometry) -> None:
    _fill(ax, geometry, section_xz(geometry))
    half = geometry.footprint_radius_mm
    ax.set_xlim(-half * 1.05, half * 1.05)
    ax.set_ylim(-0.05 * geometry.height_mm, geometry.height_mm * 1.05)
    ax.set_xlabel("x (mm)", fontsize=8, labelpad=1)
    ax.set_ylabel("z (mm)", fontsize=8)
    ax.set_title("vertical section through the centre (XZ)", fontsize=9)


def _plan_view(ax: Any, geometry: TabletGeometry) -> None:
    z_mm = _mid_band_mm(geometry)
    _fill(ax, geometry, section_xy(geometry, z_mm))
    half = geometry.footprint_radius_mm
    ax.set_xlim(-half * 1.05, half * 1.05)
    ax.set_ylim(-half * 1.05, half * 1.05)
    ax.set_xlabel("x (mm)", fontsize=8, labelpad=1)
    ax.set_ylabel("y (mm)", fontsize=8)
    ax.set_title(f"horizontal section at z = {z_mm:.2f} mm (XY)", fontsize=9)


def _mid_band_mm(geometry: TabletGeometry) -> float:
    """Middle of the drug-loaded band (of the bottom layer for stacked layouts)."""
    api = geometry.api_compartments
    lo = min(c.z_range_mm[0] for c in api)
    hi = api[0].z_range_mm[1] if LAYOUT_KINDS[geometry.spec.layout].stacked else max(
        c.z_range_mm[1] for c in api)
    return (lo + hi) / 2.0


def _default_title(geometry: TabletGeometry) -> str:
    spec = geometry.spec
    dims = geometry.dimensions_mm
    if spec.shape in ("caplet", "oval"):
        size = f"{dims['length']:.1f} × {dims['width']:.1f} × {dims['height']:.1f} mm"
    elif spec.shape == "ring":
        size = (f"⌀{dims['diameter']:.1f} (hole {dims['inner_diameter']:.1f}) × "
                f"{dims['height']:.1f} mm")
    else:
        size = f"⌀{dims['diameter']:.1f} × {dims['height']:.1f} mm"
    extras = []
    if spec.dome_mm > 0:
        extras.append(f"dome {spec.dome_mm:g} mm")
    if spec.shell_mm > 0:
        extras.append(f"shell {spec.shell_mm:g} mm")
    if spec.channels:
        extras.append(f"{spec.channels} × ⌀{spec.channel_mm:g} mm channels")
    tail = f" ({', '.join(extras)})" if extras else ""
    return f"{spec.shape}, {spec.layout}: {size}{tail}"


def render_png(geometry: TabletGeometry, path: str | Path, *, title: str | None = None,
               ) -> None:
    """Draw ``geometry`` to a PNG: a cut-away 3D view, a vertical (XZ) section through the
    centre, a horizontal (XY) section through the drug-loaded band, and a legend of the
    compartments (coloured by index, the shell grey).

    Parameters
    ----------
    geometry : TabletGeometry
        A sized tablet (its meshes are built if they were not yet).
    path : str or Path
        Where to write the PNG.
    title : str, optional
        Figure title; by default the shape, layout and outside dimensions.
    """
    fig = Figure(figsize=(10.0, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.3, 1.0), height_ratios=(1.0, 1.0))
    ax3d = fig.add_subplot(grid[:, 0], projection="3d")
    _cutaway(ax3d, geometry)
    _section(fig.add_subplot(grid[0, 1]), geometry)
    _plan_view(fig.add_subplot(grid[1, 1]), geometry)
    handles = [Patch(facecolor=compartment_colour(c), edgecolor="black", linewidth=0.4,
                     label=_label(c)) for c in geometry.compartments]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize=8,
               frameon=False)
    fig.suptitle(title if title is not None else _default_title(geometry), fontsize=10)
    fig.subplots_adjust(left=0.0, right=0.97, top=0.9, bottom=0.16, wspace=0.12, hspace=0.45)
    fig.savefig(Path(path), format="png", metadata={"Software": None})



GALLERY: dict[str, tuple[TabletSpec, tuple[float, ...]]] = {
    "shape-cylinder": (TabletSpec(), (250.0,)),
    "shape-caplet": (TabletSpec(shape="caplet"), (400.0,)),
    "shape-caplet-domed": (TabletSpec(shape="caplet", dome_mm=1.2, aspect=0.65), (400.0,)),
    "shape-oval": (TabletSpec(shape="oval"), (300.0,)),
    "shape-ring": (TabletSpec(shape="ring"), (250.0,)),
    "layout-bilayer": (TabletSpec(layout="bilayer"), (150.0, 100.0)),
    "layout-multilayer": (TabletSpec(shape="caplet", layout="multilayer", aspect=0.7),
                          (120.0, 80.0, 100.0, 150.0)),
    "layout-core-shell": (TabletSpec(layout="core-shell", aspect=0.8), (60.0, 200.0)),
    "layout-segments-pie": (TabletSpec(layout="segments"), (120.0, 80.0, 60.0)),
    "layout-segments-slabs": (TabletSpec(shape="caplet", layout="segments"),
                              (150.0, 100.0, 150.0)),
    "layout-rings": (TabletSpec(layout="rings", aspect=0.45), (60.0, 100.0, 140.0)),
    "layout-rings-ring": (TabletSpec(shape="ring", layout="rings"), (100.0, 200.0)),
    "option-shell": (TabletSpec(shape="caplet", layout="bilayer", shell_mm=1.0),
                     (150.0, 120.0)),
    "option-channels": (TabletSpec(layout="multilayer", channels=3), (60.0, 100.0, 140.0)),
    "option-channels-segments": (TabletSpec(shape="oval", layout="segments", channels=3,
                                            channel_spread=0.55), (100.0, 100.0, 100.0)),
    "option-dome-shell-channels": (TabletSpec(shape="oval", dome_mm=1.0, shell_mm=1.0,
                                              channels=2), (300.0,)),
}
"""The designs drawn in docs/designs.md: name -> (spec, compartment volumes in mm³)."""


def render_gallery(folder: str | Path) -> list[Path]:
    """Draw every :data:`GALLERY` design to ``folder/<name>.png``; the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (spec, volumes) in GALLERY.items():
        path = out / f"{name}.png"
        render_png(size_tablet(spec, volumes), path)
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    render_gallery(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
