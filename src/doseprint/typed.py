"""Shared type aliases and the closed sets of choices used across doseprint."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

FloatArray: TypeAlias = NDArray[np.float64]

ReleaseKind = Literal["immediate", "sustained", "profile"]
RELEASE_KINDS: tuple[ReleaseKind, ...] = ("immediate", "sustained", "profile")

ReleaseMechanism = Literal["diffusion", "erosion", "diffusion+erosion"]
RELEASE_MECHANISMS: tuple[ReleaseMechanism, ...] = ("diffusion", "erosion", "diffusion+erosion")

Flavor = Literal["marlin", "klipper", "reprapfirmware"]
FLAVORS: tuple[Flavor, ...] = ("marlin", "klipper", "reprapfirmware")

Origin = Literal["corner", "center"]
ORIGINS: tuple[Origin, ...] = ("corner", "center")

ExtrusionMode = Literal["relative", "absolute"]
EXTRUSION_MODES: tuple[ExtrusionMode, ...] = ("relative", "absolute")

# Shapes and layouts a prescription may ask for ("auto": the designer chooses).
InfillPattern = Literal["rectilinear", "concentric", "gyroid"]
INFILL_PATTERNS: tuple[InfillPattern, ...] = ("rectilinear", "concentric", "gyroid")
"""How a sparse infill is laid (:mod:`doseprint.slicer.fill`)."""

Shape = Literal["auto", "cylinder", "caplet", "oval", "ring"]
SHAPES: tuple[Shape, ...] = ("auto", "cylinder", "caplet", "oval", "ring")
Layout = Literal["auto", "single", "bilayer", "multilayer", "core-shell", "segments", "rings"]
LAYOUTS: tuple[Layout, ...] = (
    "auto", "single", "bilayer", "multilayer", "core-shell", "segments", "rings")

RecordStatus = Literal[
    "printing", "completed", "failed", "aborted", "interrupted", "released", "rejected"
]
