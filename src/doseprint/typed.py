"""Shared type aliases and the closed sets of choices used across doseprint.

Each vocabulary is written once, as a ``Literal``; the tuple of its names that input
checks and messages use is derived from it with :func:`typing.get_args`, so the two
cannot drift apart. A vocabulary with an ``"auto"`` choice (the prescription leaves it to
the designer) is the concrete names plus ``"auto"``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

import numpy as np
from numpy.typing import NDArray

FloatArray: TypeAlias = NDArray[np.float64]

ReleaseKind = Literal["immediate", "sustained", "profile"]
RELEASE_KINDS: tuple[ReleaseKind, ...] = get_args(ReleaseKind)

ReleaseMechanism = Literal["diffusion", "erosion", "diffusion+erosion"]
RELEASE_MECHANISMS: tuple[ReleaseMechanism, ...] = get_args(ReleaseMechanism)

Flavor = Literal["marlin", "klipper", "reprapfirmware"]
FLAVORS: tuple[Flavor, ...] = get_args(Flavor)

Origin = Literal["corner", "center"]
ORIGINS: tuple[Origin, ...] = get_args(Origin)

ExtrusionMode = Literal["relative", "absolute"]
EXTRUSION_MODES: tuple[ExtrusionMode, ...] = get_args(ExtrusionMode)

InfillPattern = Literal["rectilinear", "concentric", "gyroid"]
INFILL_PATTERNS: tuple[InfillPattern, ...] = get_args(InfillPattern)
"""How a sparse infill is laid (:mod:`doseprint.slicer.fill`)."""

ShapeName = Literal["cylinder", "caplet", "oval", "ring"]
SHAPE_NAMES: tuple[ShapeName, ...] = get_args(ShapeName)
"""The tablet shapes :mod:`doseprint.geometry` can size."""

Shape = Literal["auto", ShapeName]
SHAPES: tuple[Shape, ...] = get_args(Shape)
"""The shapes a prescription may ask for (``"auto"``: the designer chooses)."""

LayoutName = Literal["single", "bilayer", "multilayer", "core-shell", "segments", "rings"]
LAYOUT_NAMES: tuple[LayoutName, ...] = get_args(LayoutName)
"""The layouts :mod:`doseprint.geometry.layouts` can divide a tablet into (its registry
has one entry per name)."""

Layout = Literal["auto", LayoutName]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
"""The layouts a prescription may ask for (``"auto"``: the designer chooses)."""

PrintOrder = Literal["layer", "tablet"]
PRINT_ORDERS: tuple[PrintOrder, ...] = get_args(PrintOrder)
"""``layer``: layer n of every tablet, then layer n + 1; ``tablet``: each tablet whole
before the next (needs ``gantry_clearance_mm`` above the tallest tablet)."""

CompartmentRole = Literal["api", "shell"]
"""What a compartment holds: an active, or nothing (a drug-free shell)."""

RecordStatus = Literal[
    "printing", "completed", "failed", "aborted", "interrupted", "released", "rejected",
    "superseded",
]
"""A record's status once its print began (:mod:`doseprint.records.states`):
``superseded`` when a later print of the same prescription took its place."""


UserRole = Literal["technician", "pharmacist", "quality", "admin"]
"""The roles a person holds in a record store with accounts (records/policy.py)."""
USER_ROLES: tuple[UserRole, ...] = get_args(UserRole)
