"""The parameters of a tablet design and the limits it is held to.

A :class:`TabletSpec` is everything a designer may vary about a tablet's geometry (shape,
layout, proportions, dome, shell, channels, dimensions fixed by the prescription); a
:class:`SizeLimits` is what the printer and the patient allow. Both are frozen and check
themselves on construction, so a bad value is refused with its field named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from doseprint.errors import InputError, Problem
from doseprint.typed import LAYOUT_NAMES, SHAPE_NAMES, LayoutName, ShapeName

__all__ = [
    "DOME_FACES",
    "FIXABLE",
    "DomeFaces",
    "SizeLimits",
    "TabletSpec",
    "positive",
]

DomeFaces = Literal["both", "top"]
DOME_FACES: tuple[DomeFaces, ...] = get_args(DomeFaces)

FIXABLE: dict[ShapeName, tuple[str, ...]] = {
    "cylinder": ("diameter_mm", "height_mm"),
    "ring": ("diameter_mm", "height_mm"),
    "caplet": ("length_mm", "width_mm", "height_mm"),
    "oval": ("length_mm", "width_mm", "height_mm"),
}

_SPEC = "tablet spec"


# Design parameters and limits


@dataclass(frozen=True)
class TabletSpec:
    """Everything a designer may vary about a tablet's geometry, cheap to copy with
    ``dataclasses.replace``. Ratios and dimensions describe the outside of the tablet,
    shell included.

    Attributes
    ----------
    shape : {"cylinder", "caplet", "oval", "ring"}
    layout : {"single", "bilayer", "multilayer", "core-shell", "segments", "rings"}
    aspect : float
        Total height (domes included) / width of the tablet; the width is the smallest XY
        extent (diameter of a cylinder or ring, width of a caplet or oval). Ignored when
        a dimension is fixed.
    caplet_ratio, oval_ratio : float
        Length / width of a caplet or oval (≥ 1).
    ring_ratio : float
        Hole diameter / outer diameter of a ring (0 < r < 1).
    dome_mm : float, mm
        Height of the elliptic dome on each domed face (cylinder, caplet, oval); 0: flat.
    dome_faces : {"both", "top"}
        Which faces are domed. A domed bottom needs a support on an FDM printer.
    shell_mm : float, mm
        Thickness of a drug-free shell over every outer face (0: none). With a shell the
        domes are part of it, and the drug-loaded layout fills a flat prism inside.
    channels : int
        Straight vertical holes through the whole tablet (0: none).
    channel_mm : float, mm
        Channel diameter.
    channel_spread : float
        Where channels sit, 0..1: one channel is at the centre; two or more sit at this
        fraction of the way from the centre (ring: from the hole) to the outline, evenly
        around it at parametric angles (2j + 1)π/n, or for a caplet evenly along the long
        axis between ±spread × half the length.
    core_wall_ratio : float
        Core-shell: wall above and below the core / wall around it.
    diameter_mm, height_mm, length_mm, width_mm : float or None, mm
        Dimensions fixed by the prescription (outside of the tablet); ``height_mm`` is the
        total height. Fix one of the XY ones (caplet/oval: length, width or both) or the
        height, not both: the other is solved.
    """

    shape: ShapeName = "cylinder"
    layout: LayoutName = "single"
    aspect: float = 0.5
    caplet_ratio: float = 2.2
    oval_ratio: float = 1.6
    ring_ratio: float = 0.35
    dome_mm: float = 0.0
    dome_faces: DomeFaces = "both"
    shell_mm: float = 0.0
    channels: int = 0
    channel_mm: float = 1.0
    channel_spread: float = 0.5
    core_wall_ratio: float = 1.0
    diameter_mm: float | None = None
    height_mm: float | None = None
    length_mm: float | None = None
    width_mm: float | None = None

    def __post_init__(self) -> None:
        problems = _spec_problems(self)
        if problems:
            raise InputError(problems)

    @property
    def fixed(self) -> dict[str, float]:
        """The dimensions fixed by the prescription, by field name."""
        names = ("diameter_mm", "height_mm", "length_mm", "width_mm")
        return {n: float(v) for n in names if (v := getattr(self, n)) is not None}


def positive(value: object) -> bool:
    """Whether ``value`` is a finite number above zero."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _spec_problems(spec: TabletSpec) -> list[Problem]:
    bad: list[Problem] = []

    def add(key: str, message: str) -> None:
        bad.append(Problem(_SPEC, key, message))

    if spec.shape not in SHAPE_NAMES:
        add("shape", f"unknown shape {spec.shape!r}; choose one of {', '.join(SHAPE_NAMES)}")
    if spec.layout not in LAYOUT_NAMES:
        add("layout", f"unknown layout {spec.layout!r}; choose one of {', '.join(LAYOUT_NAMES)}")
    for key in ("aspect", "caplet_ratio", "oval_ratio", "channel_mm", "core_wall_ratio"):
        if not positive(getattr(spec, key)):
            add(key, f"must be a positive number, got {getattr(spec, key)!r}")
    for key in ("caplet_ratio", "oval_ratio"):
        if positive(getattr(spec, key)) and getattr(spec, key) < 1.0:
            add(key, f"length / width must be at least 1, got {getattr(spec, key):g}")
    if not (isinstance(spec.ring_ratio, int | float) and 0.0 < spec.ring_ratio < 1.0):
        add("ring_ratio", f"hole / outer diameter must lie between 0 and 1, got "
                          f"{spec.ring_ratio!r}")
    for key in ("dome_mm", "shell_mm"):
        value = getattr(spec, key)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
            add(key, f"must be zero or a positive number of mm, got {value!r}")
    if spec.dome_faces not in DOME_FACES:
        add("dome_faces", f"must be {' or '.join(map(repr, DOME_FACES))}, got "
                          f"{spec.dome_faces!r}")
    if spec.shape == "ring" and spec.dome_mm > 0.0:
        add("dome_mm", "a ring cannot be domed; use 0")
    if not isinstance(spec.channels, int) or isinstance(spec.channels, bool) \
            or spec.channels < 0:
        add("channels", f"must be a whole number ≥ 0, got {spec.channels!r}")
    elif spec.channels > 0:
        if spec.shape == "ring" and spec.channels == 1:
            add("channels", "a ring takes 0 or at least 2 channels (its hole is already "
                            "central; one channel would unbalance it)")
        if spec.channels > 1 and not 0.0 < spec.channel_spread < 1.0:
            add("channel_spread", f"must lie between 0 and 1, got {spec.channel_spread!r}")
    for key, value in spec.fixed.items():
        if not positive(value):
            add(key, f"must be a positive number of mm, got {value!r}")
        elif spec.shape in FIXABLE and key not in FIXABLE[spec.shape]:
            add(key, f"a {spec.shape} has no {key[:-3]}; fix one of "
                     f"{', '.join(FIXABLE[spec.shape])}")
    if (spec.shape in ("caplet", "oval") and spec.length_mm is not None
            and spec.width_mm is not None and spec.length_mm < spec.width_mm):
        add("length_mm", f"{spec.length_mm:g} mm is shorter than width_mm = "
                         f"{spec.width_mm:g}")
    return bad


@dataclass(frozen=True)
class SizeLimits:
    """What the printer and the patient allow.

    Attributes
    ----------
    max_length_mm : float, mm
        Longest dimension of the tablet (22 mm: the FDA's largest for generics).
    min_wall_mm : float, mm
        Thinnest XY wall, compartment, shell or gap next to a channel: two extrusion
        widths of a 0.4 mm nozzle (0.45 mm lines). Also the smallest channel or hole.
    first_layer_mm, layer_mm : float, mm
        Layer heights on the build plate and above.
    min_layers : int
        Fewest layers through any compartment or wall in Z (bottom, middle, top).
    """

    max_length_mm: float = 22.0
    min_wall_mm: float = 0.9
    first_layer_mm: float = 0.2
    layer_mm: float = 0.2
    min_layers: int = 3

    def __post_init__(self) -> None:
        bad = [Problem("size limits", key, f"must be a positive number, got {value!r}")
               for key, value in (("max_length_mm", self.max_length_mm),
                                  ("min_wall_mm", self.min_wall_mm),
                                  ("first_layer_mm", self.first_layer_mm),
                                  ("layer_mm", self.layer_mm),
                                  ("min_layers", self.min_layers))
               if not positive(value)]
        if bad:
            raise InputError(bad)

    def min_z_mm(self, first_layer: bool) -> float:
        """Thinnest allowed Z extent: ``min_layers`` layers, the first of them the first
        layer when the thickness starts on the build plate."""
        head = self.first_layer_mm if first_layer else self.layer_mm
        return head + (self.min_layers - 1) * self.layer_mm
