"""The prescription a pharmacist writes, as frozen values (prescription.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from doseprint.typed import InfillPattern, Layout, ReleaseKind, Shape

PRESCRIPTION_SCHEMA = "doseprint.prescription/1"


@dataclass(frozen=True)
class Active:
    """One active ingredient: its dose per tablet and how it must be released.

    ``profile`` holds ``(hours, fraction)`` points for ``release = "profile"``.
    """

    api: str
    dose_mg: float
    release: ReleaseKind
    t80_h: float | None = None
    profile: tuple[tuple[float, float], ...] | None = None
    formulation: str | None = None


@dataclass(frozen=True)
class TabletConstraints:
    """The optional ``[tablet]`` table: constraints and fixed dimensions."""

    shape: Shape = "auto"
    layout: Layout = "auto"
    max_length_mm: float = 22.0
    diameter_mm: float | None = None
    height_mm: float | None = None
    length_mm: float | None = None
    width_mm: float | None = None
    infill: float | None = None
    infill_pattern: InfillPattern = "rectilinear"
    solid_layers: int = 0
    """Solid layers at the bottom and at the top of a sparse tablet: a skin that closes
    the lattice (0: the lattice is open to the medium)."""
    shell: str = "none"
    shell_mm: float | None = None
    channels: int = 0
    channel_mm: float | None = None
    dome_mm: float = 0.0

    @property
    def has_shell(self) -> bool:
        return self.shell != "none"

    @property
    def fixed_mm(self) -> dict[str, float]:
        """Dimensions the prescription fixes, by key."""
        keys = ("diameter_mm", "height_mm", "length_mm", "width_mm")
        return {k: float(v) for k in keys if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class ScheduleEntry:
    """Per-tablet doses of one API (a taper or titration), one entry per tablet."""

    api: str
    doses_mg: tuple[float, ...]


@dataclass(frozen=True)
class Dispense:
    units: int
    schedule: tuple[ScheduleEntry, ...] = ()


@dataclass(frozen=True)
class Prescription:
    """A validated prescription. ``source`` is the file it came from, ``sha256`` its hash,
    ``content`` the table exactly as read (for job.json)."""

    schema: str
    id: str
    patient: str
    actives: tuple[Active, ...]
    dispense: Dispense
    tablet: TabletConstraints = field(default_factory=TabletConstraints)
    prescriber: str | None = None
    note: str | None = None
    source: str = ""
    sha256: str = ""
    content: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def dose_mg(self, tablet_index: int, api: str) -> float:
        """Dose of ``api`` in tablet ``tablet_index``: the schedule's, else the active's."""
        for entry in self.dispense.schedule:
            if entry.api == api:
                return entry.doses_mg[tablet_index]
        for active in self.actives:
            if active.api == api:
                return active.dose_mg
        raise KeyError(api)

    def active(self, api: str) -> Active:
        for active in self.actives:
            if active.api == api:
                return active
        raise KeyError(api)
