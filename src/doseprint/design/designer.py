"""The design stage's entry point: pick the designer that fits the prescription."""

from __future__ import annotations

from collections.abc import Mapping

from doseprint.design.cylinder import LayerGrid
from doseprint.design.cylinder import design_tablets as design_cylinders
from doseprint.design.designed import DesignedTablet
from doseprint.design.general import Confirm, design_general
from doseprint.errors import InfeasibleDesignError, Problem
from doseprint.geometry.spec import SizeLimits
from doseprint.models.bead import BEAD_WIDTH_FACTOR
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Prescription


def is_plain_cylinder(rx: Prescription) -> bool:
    """One API in a solid cylinder with nothing else asked: Crank's exact solution applies,
    and the designer searches every whole-layer height. (A sparse infill is not a solid
    cylinder: its gaps fill with medium.)"""
    t = rx.tablet
    return (len(rx.actives) == 1 and t.shape in ("auto", "cylinder")
            and t.layout in ("auto", "single") and not t.has_shell and not t.channels
            and not t.dome_mm and t.length_mm is None and t.width_mm is None
            and (t.infill is None or t.infill >= 1.0))


def size_limits(
    grid: LayerGrid, nozzle_mm: float, max_length_mm: float = SizeLimits.max_length_mm
) -> SizeLimits:
    """The size limits of a tablet printed on ``grid`` through a ``nozzle_mm`` nozzle,
    no longer than ``max_length_mm`` (the prescription's ``max_length_mm``)."""
    return SizeLimits(
        max_length_mm=max_length_mm,
        # Two beads side by side: the thinnest wall the slicer can fill.
        min_wall_mm=2.0 * BEAD_WIDTH_FACTOR * nozzle_mm,
        first_layer_mm=grid.first_mm,
        layer_mm=grid.layer_mm,
    )


def design_tablets(
    rx: Prescription,
    formulations: Mapping[str, Formulation],
    grid: LayerGrid,
    *,
    extruders: int = 1,
    nozzle_mm: float = 0.4,
    confirm: Confirm | None = None,
    limits: SizeLimits | None = None,
) -> tuple[DesignedTablet, ...]:
    """Design every tablet of ``rx`` for a printer with ``extruders`` tools.

    ``limits`` are the prepared size limits (:func:`doseprint.job.prepare.prepare`);
    without them, :func:`size_limits` of ``grid``, ``nozzle_mm`` and the prescription.

    Raises
    ------
    InputError, InfeasibleDesignError
        As :func:`~doseprint.design.cylinder.design_tablets` and
        :func:`~doseprint.design.general.design_general`.
    """
    if limits is None:
        limits = size_limits(grid, nozzle_mm, rx.tablet.max_length_mm)
    try:
        if is_plain_cylinder(rx):
            return design_cylinders(rx, formulations, grid)
        return design_general(rx, formulations, limits, extruders, confirm)
    except InfeasibleDesignError as first:
        if not _open_to_explore(rx):
            raise
        # The usual designs cannot do it: try the levers the prescription leaves open
        # (rings, ovals, caplets, channels) before refusing.
        try:
            return design_general(rx, formulations, limits, extruders, confirm, explore=True)
        except InfeasibleDesignError:
            *head, last = first.problems
            raise InfeasibleDesignError([*head, Problem(
                last.file, last.key, last.message + "; cylinders, caplets, rings and ovals, "
                "with 0, 2 or 4 channels, and cylinders and caplets as 60 % and 40 % open "
                "lattices, were tried as well and none meets every target")]
            ) from None


def _open_to_explore(rx: Prescription) -> bool:
    """The prescription leaves shape and channels to doseprint (and fixes no size)."""
    t = rx.tablet
    return (t.shape == "auto" and t.channels == 0 and t.channel_mm is None
            and not t.fixed_mm and not t.dome_mm)
