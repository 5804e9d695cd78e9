"""A designed tablet as every later stage sees it: its dimensions, its compartments and
what each carries (:class:`TabletDesign`), and its watertight meshes (:class:`TabletMesh`).

The design stage makes these values; release prediction, slicing, the job folder and the
preview read them. They live here, below all of those stages, so that none of them has
to reach up into the designer for its input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import trimesh

from doseprint.errors import GeometryError
from doseprint.geometry.layouts import DimensionValue
from doseprint.geometry.sized import TabletGeometry
from doseprint.typed import CompartmentRole, LayoutName, ShapeName

__all__ = [
    "CIRCLE_SECTIONS",
    "Compartment",
    "Dimensions",
    "TabletDesign",
    "TabletMesh",
    "build_mesh",
    "polygon_radius_mm",
]


@dataclass(frozen=True)
class Compartment:
    """One compartment: which API (``""`` for a drug-free shell), in which material,
    from which tool.

    ``volume_mm3`` is the design volume of material (envelope × infill): for a
    drug-loaded compartment the volume that carries ``dose_mg``,
    ``volume × density × drug_loading = dose``.
    """

    api: str
    formulation: str
    tool: int
    dose_mg: float
    volume_mm3: float

    @property
    def role(self) -> CompartmentRole:
        return "api" if self.api else "shell"

    @property
    def name(self) -> str:
        return self.api or "shell"


@dataclass(frozen=True, eq=False)
class Dimensions(Mapping[str, DimensionValue]):
    """A tablet's named dimensions (mm unless the name says otherwise), in order: an
    immutable, hashable mapping of a name to a length or a tuple of lengths.

    ``Dimensions.of({"diameter": 8.0, "layer_heights": [1.2, 2.0]})`` keeps a sequence of
    lengths as a tuple. Equal to any mapping with the same items.
    """

    pairs: tuple[tuple[str, DimensionValue], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"dimensions named twice: {names}")

    def __hash__(self) -> int:
        return hash(frozenset(self.pairs))

    @classmethod
    def of(cls, values: Mapping[str, float | tuple[float, ...] | list[float]]) -> Dimensions:
        return cls(tuple((name, tuple(v) if isinstance(v, list | tuple) else v)
                         for name, v in values.items()))

    def __getitem__(self, name: str) -> DimensionValue:
        for key, value in self.pairs:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def length_mm(self, name: str) -> float:
        """One named length (not a tuple of them).

        Raises
        ------
        KeyError
            The tablet has no such dimension, or it is a tuple of lengths.
        """
        value = self[name]
        if isinstance(value, tuple):
            raise KeyError(f"{name} is {len(value)} lengths, not one")
        return float(value)


@dataclass(frozen=True)
class TabletDesign:
    """One tablet's geometry and compartments.

    ``dimensions`` are the named dimensions of job.json's ``dimensions_mm``; ``geometry``
    is the sized :class:`~doseprint.geometry.sized.TabletGeometry` of a general design, or
    None for a plain cylinder (built by :func:`build_mesh`). ``layers`` counts the whole
    layers the tablet is printed in.
    """

    index: int
    shape: ShapeName
    layout: LayoutName
    dimensions: Dimensions
    height_mm: float
    footprint_mm: float
    longest_mm: float
    layers: int
    infill: float
    compartments: tuple[Compartment, ...]
    shell: str = "none"
    volume_mm3: float = 0.0
    geometry: TabletGeometry | None = field(default=None, compare=False, repr=False)

    @classmethod
    def cylinder(
        cls, index: int, diameter_mm: float, height_mm: float, layers: int, infill: float,
        compartments: tuple[Compartment, ...],
    ) -> TabletDesign:
        return cls(
            index=index, shape="cylinder", layout="single",
            dimensions=Dimensions.of({"diameter": diameter_mm, "height": height_mm}),
            height_mm=height_mm, footprint_mm=diameter_mm,
            longest_mm=max(diameter_mm, height_mm), layers=layers, infill=infill,
            compartments=compartments,
            volume_mm3=math.pi * (diameter_mm / 2.0) ** 2 * height_mm,
        )

    @classmethod
    def sized(
        cls, index: int, geometry: TabletGeometry, layers: int, infill: float,
        compartments: tuple[Compartment, ...], shell: str = "none",
    ) -> TabletDesign:
        """A design of any shape and layout, from its sized geometry."""
        return cls(
            index=index, shape=geometry.spec.shape, layout=geometry.spec.layout,
            dimensions=Dimensions(geometry.dimensions), height_mm=geometry.height_mm,
            footprint_mm=2.0 * geometry.footprint_radius_mm, longest_mm=geometry.longest_mm,
            layers=layers, infill=infill, compartments=compartments, shell=shell,
            volume_mm3=geometry.envelope_volume_mm3, geometry=geometry,
        )

    @property
    def diameter_mm(self) -> float:
        """Diameter of a cylinder design (the footprint of any other)."""
        if "diameter" not in self.dimensions:
            return self.footprint_mm
        return self.dimensions.length_mm("diameter")

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    def dimensions_mm(self) -> dict[str, float | list[float]]:
        """The named dimensions as job.json writes them (4 decimals; tuples as lists)."""
        return {k: _rounded(v) for k, v in self.dimensions.items()}

    def describe(self) -> str:
        """Short human text: ``8.71 × 5.60 mm cylinder`` or ``caplet 18.2 × 8.3 × 5.2 mm``."""
        d = self.dimensions
        if self.shape == "cylinder" or "diameter" in d:
            size = f"{d.length_mm('diameter'):.2f} × {self.height_mm:.2f} mm"
        elif "length" in d:
            size = (f"{d.length_mm('length'):.2f} × {d.length_mm('width'):.2f} × "
                    f"{self.height_mm:.2f} mm")
        else:
            size = f"{self.footprint_mm:.2f} × {self.height_mm:.2f} mm"
        layout = "" if self.layout == "single" else f" {self.layout}"
        return f"{self.shape}{layout} {size}"

    def to_json(self) -> dict[str, object]:
        """The ``design`` entry of a tablet in job.json (a general design adds its sized
        geometry's figures: dome, shell, channels, compartments, envelope)."""
        out: dict[str, object] = {
            "shape": self.shape,
            "layout": self.layout,
            "dimensions_mm": self.dimensions_mm(),
            "layers": self.layers,
            "infill": self.infill,
            "shell": self.shell,
            "volume_mm3": round(self.volume_mm3, 4),
            "longest_mm": round(self.longest_mm, 4),
            "summary": self.describe(),
        }
        if self.geometry is not None:
            out.update((k, v) for k, v in self.geometry.to_json().items()
                       if k not in ("shape", "layout", "dimensions_mm"))
        return out


def _rounded(value: DimensionValue) -> float | list[float]:
    if isinstance(value, tuple):
        return [round(v, 4) for v in value]
    return round(value, 4)


# Meshes

CIRCLE_SECTIONS = 128
"""Facets around a circle: the chord error at 22 mm is 1.7 µm, far below a bead width."""


def polygon_radius_mm(radius_mm: float, sections: int = CIRCLE_SECTIONS) -> float:
    """Circumradius of a regular ``sections``-gon with the area of a circle of ``radius_mm``.

    A faceted cylinder inscribed in the circle would lose 0.04 % of its volume at 128
    facets; scaling the polygon keeps mesh volume and design volume equal.
    """
    return radius_mm * math.sqrt(2 * math.pi / (sections * math.sin(2 * math.pi / sections)))


@dataclass(frozen=True)
class TabletMesh:
    """One tablet's compartments as meshes in tablet coordinates (base at z = 0, axis at
    x = y = 0). ``names[i]`` labels ``meshes[i]`` (the compartment's API)."""

    index: int
    names: tuple[str, ...]
    meshes: tuple[trimesh.Trimesh, ...]

    @property
    def volume_mm3(self) -> float:
        return float(sum(m.volume for m in self.meshes))


def build_mesh(design: TabletDesign) -> TabletMesh:
    """Mesh a design: a general one from its sized geometry, a plain cylinder here.

    Raises
    ------
    GeometryError
        The mesh is not watertight or its volume misses the design's by over 0.1 %.
    """
    names = tuple(c.name for c in design.compartments)
    if design.geometry is not None:
        return TabletMesh(design.index, names, tuple(design.geometry.meshes))
    radius = polygon_radius_mm(design.radius_mm)
    mesh = trimesh.creation.cylinder(radius=radius, height=design.height_mm,
                                     sections=CIRCLE_SECTIONS)
    mesh.apply_translation([0.0, 0.0, design.height_mm / 2.0])
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        raise GeometryError(f"tablet {design.index}: the cylinder mesh is not watertight")
    if abs(mesh.volume / design.volume_mm3 - 1.0) > 1e-3:
        raise GeometryError(f"tablet {design.index}: mesh volume {mesh.volume:.3f} mm3 misses "
                            f"the design volume {design.volume_mm3:.3f} mm3")
    return TabletMesh(design.index, names, (mesh,))
