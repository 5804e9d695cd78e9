"""The job manifest (``job.json``) as one frozen value, written and read in one place.

:class:`JobManifest` holds what a compile promises: the prescription and printer it was
made for, each tool's material, every tablet's design, doses and predicted release, the
G-code's hash and size, and the hashes of the other files. Compile builds it and writes
:meth:`JobManifest.to_json`; every command that reads a job folder gets it back from
:func:`~doseprint.job.folder.read_job` through :meth:`JobManifest.from_json`, which
checks types and refuses (``InputError``, naming the key) a manifest that is not what it
claims, so no reader re-parses the JSON on its own.

The JSON form is job.md's, key for key and in the same order, so a manifest read and
written again is the same bytes. Nested objects that only travel through (a tablet's
``design``, a release ``target``, the prescription as read, a flow calibration) are kept
as read-only JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from doseprint.errors import InputError, Problem

__all__ = [
    "FLOW_JOB_SCHEMA",
    "JOB_SCHEMA",
    "ActiveEntry",
    "GcodeEntry",
    "JobManifest",
    "PrescriptionEntry",
    "PrinterEntry",
    "ReleaseEntry",
    "ShellEntry",
    "TabletEntry",
    "ToolEntry",
    "freeze_json",
    "thaw_json",
]

JOB_SCHEMA = "doseprint.job/1"

FLOW_JOB_SCHEMA = "doseprint.flow-calibration-job/1"
"""The schema of a flow calibration job's manifest (:mod:`doseprint.job.flow_calibration`)."""

JsonValue = Any
"""A JSON value as :func:`freeze_json` keeps it: read-only mappings and tuples inside."""

T = TypeVar("T")


def freeze_json(value: Any) -> JsonValue:
    """A read-only copy of a JSON value: objects become read-only mappings, arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    return value


def thaw_json(value: JsonValue) -> Any:
    """The plain JSON value (dicts and lists) of a frozen one, for writing."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw_json(v) for v in value]
    return value


class _Reader:
    """Typed access to one JSON object of a manifest; every problem names its key."""

    def __init__(self, data: Any, key: str, source: str, problems: list[Problem]) -> None:
        self.key = key
        self.source = source
        self.problems = problems
        if not isinstance(data, Mapping):
            self._problem(key, f"must be an object, not {_kind(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def _problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, key, message))

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def has(self, name: str) -> bool:
        return name in self.data

    def _take(self, name: str, check: Callable[[Any], bool], what: str, default: T,
              *, required: bool, nullable: bool = False) -> Any:
        if name not in self.data:
            if required:
                self._problem(self._path(name), "is missing")
            return default
        value = self.data[name]
        if value is None and nullable:
            return None
        if not check(value):
            self._problem(self._path(name), f"must be {what}, not {_kind(value)}")
            return default
        return value

    def text(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        return self._take(name, lambda v: isinstance(v, str), "text", "",
                          required=required, nullable=nullable)

    def whole(self, name: str, *, required: bool = True) -> int:
        value: int = self._take(name, lambda v: isinstance(v, int) and not isinstance(v, bool),
                                "a whole number", 0, required=required)
        return value

    def number(self, name: str, *, required: bool = True, nullable: bool = False,
               default: float | None = 0.0) -> Any:
        return self._take(name, _is_number, "a finite number", default, required=required,
                          nullable=nullable)

    def flag(self, name: str, *, required: bool = True) -> bool:
        value: bool = self._take(name, lambda v: isinstance(v, bool), "true or false", False,
                                 required=required)
        return value

    def json(self, name: str, *, required: bool = True, default: Any = None) -> JsonValue:
        if name not in self.data:
            if required:
                self._problem(self._path(name), "is missing")
            return default
        return freeze_json(self.data[name])

    def obj(self, name: str, *, required: bool = True) -> _Reader:
        if name not in self.data and not required:
            return _Reader({}, self._path(name), self.source, [])
        return _Reader(self.data.get(name), self._path(name), self.source, self.problems)

    def items(self, name: str) -> Iterator[_Reader]:
        value = self.data.get(name)
        if not isinstance(value, list):
            self._problem(self._path(name), f"must be a list, not {_kind(value)}")
            return
        for i, item in enumerate(value):
            yield _Reader(item, f"{self._path(name)}[{i}]", self.source, self.problems)

    def pair(self, name: str) -> tuple[float, float]:
        value = self.data.get(name)
        if (not isinstance(value, list) or len(value) != 2
                or not all(_is_number(v) for v in value)):
            self._problem(self._path(name), f"must be two numbers, not {_kind(value)}")
            return (0.0, 0.0)
        return (value[0], value[1])


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), repr(value)[:40])


# The entries, from the inside out ------------------------------------------------------


@dataclass(frozen=True)
class ReleaseEntry:
    """One API's predicted release in one tablet (job.md ``release``).

    ``curve`` is ((hours, fraction released), …); ``target`` the target as written.
    """

    kind: str
    target: JsonValue
    model: str
    t50_h: float | None
    t80_h: float | None
    mdt_h: float | None
    f2: float | None
    released_at_0_5_h: float | None
    met: bool
    reason: str
    curve: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": thaw_json(self.target), "model": self.model,
                "t50_h": self.t50_h, "t80_h": self.t80_h, "mdt_h": self.mdt_h,
                "f2": self.f2, "released_at_0_5_h": self.released_at_0_5_h,
                "met": self.met, "reason": self.reason,
                "curve": [[h, f] for h, f in self.curve]}

    @classmethod
    def read(cls, r: _Reader) -> ReleaseEntry:
        curve = []
        raw = r.data.get("curve")
        if not isinstance(raw, list):
            r.problems.append(Problem(r.source, f"{r.key}.curve", "must be a list of points"))
        else:
            for i, point in enumerate(raw):
                if (isinstance(point, list) and len(point) == 2
                        and all(_is_number(v) for v in point)):
                    curve.append((point[0], point[1]))
                else:
                    r.problems.append(Problem(r.source, f"{r.key}.curve[{i}]",
                                              "must be [hours, fraction]"))
        return cls(kind=r.text("kind"), target=r.json("target"), model=r.text("model"),
                   t50_h=r.number("t50_h", nullable=True),
                   t80_h=r.number("t80_h", nullable=True),
                   mdt_h=r.number("mdt_h", nullable=True),
                   f2=r.number("f2", nullable=True),
                   released_at_0_5_h=r.number("released_at_0_5_h", nullable=True),
                   met=r.flag("met"), reason=r.text("reason"), curve=tuple(curve))


@dataclass(frozen=True)
class ActiveEntry:
    """One API in one tablet: the prescribed dose, the G-code's, and the design behind it."""

    api: str
    tool: int
    formulation: str
    dose_mg: float
    design_volume_mm3: float
    planned_volume_mm3: float
    flow_multiplier: float
    filament_mm: float
    gcode_dose_mg: float
    dose_error_pct: float
    release: ReleaseEntry

    def to_json(self) -> dict[str, Any]:
        return {"api": self.api, "tool": self.tool, "formulation": self.formulation,
                "dose_mg": self.dose_mg, "design_volume_mm3": self.design_volume_mm3,
                "planned_volume_mm3": self.planned_volume_mm3,
                "flow_multiplier": self.flow_multiplier, "filament_mm": self.filament_mm,
                "gcode_dose_mg": self.gcode_dose_mg, "dose_error_pct": self.dose_error_pct,
                "release": self.release.to_json()}

    @classmethod
    def read(cls, r: _Reader) -> ActiveEntry:
        return cls(api=r.text("api"), tool=r.whole("tool"), formulation=r.text("formulation"),
                   dose_mg=r.number("dose_mg"), design_volume_mm3=r.number("design_volume_mm3"),
                   planned_volume_mm3=r.number("planned_volume_mm3"),
                   flow_multiplier=r.number("flow_multiplier"),
                   filament_mm=r.number("filament_mm"), gcode_dose_mg=r.number("gcode_dose_mg"),
                   dose_error_pct=r.number("dose_error_pct"),
                   release=ReleaseEntry.read(r.obj("release")))


@dataclass(frozen=True)
class ShellEntry:
    """A tablet's drug-free shell or barrier, when it has one."""

    formulation: str
    tool: int
    design_volume_mm3: float
    planned_volume_mm3: float
    flow_multiplier: float

    def to_json(self) -> dict[str, Any]:
        return {"formulation": self.formulation, "tool": self.tool,
                "design_volume_mm3": self.design_volume_mm3,
                "planned_volume_mm3": self.planned_volume_mm3,
                "flow_multiplier": self.flow_multiplier}

    @classmethod
    def read(cls, r: _Reader) -> ShellEntry:
        return cls(formulation=r.text("formulation"), tool=r.whole("tool"),
                   design_volume_mm3=r.number("design_volume_mm3"),
                   planned_volume_mm3=r.number("planned_volume_mm3"),
                   flow_multiplier=r.number("flow_multiplier"))


@dataclass(frozen=True)
class TabletEntry:
    """One tablet: where it sits on the plate, its design (as read-only JSON) and actives."""

    index: int
    center_mm: tuple[float, float]
    design: JsonValue
    actives: tuple[ActiveEntry, ...]
    shell: ShellEntry | None = None

    def active(self, api: str) -> ActiveEntry:
        """The entry of ``api`` (KeyError when the tablet does not carry it)."""
        for a in self.actives:
            if a.api == api:
                return a
        raise KeyError(api)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "center_mm": list(self.center_mm),
                               "design": thaw_json(self.design),
                               "actives": [a.to_json() for a in self.actives]}
        if self.shell is not None:
            out["shell"] = self.shell.to_json()
        return out

    @classmethod
    def read(cls, r: _Reader) -> TabletEntry:
        shell = ShellEntry.read(r.obj("shell")) if r.has("shell") else None
        return cls(index=r.whole("index"), center_mm=r.pair("center_mm"),
                   design=r.json("design"),
                   actives=tuple(ActiveEntry.read(a) for a in r.items("actives")),
                   shell=shell)


@dataclass(frozen=True)
class ToolEntry:
    """One tool and the material loaded in it, with its flow calibration."""

    tool: int
    formulation: str
    api: str
    drug_loading: float
    density_g_cm3: float
    filament_diameter_mm: float
    nozzle_temp_c: float
    formulation_sha256: str
    extrusion_multiplier: float = 1.0
    flow_command: str | None = None
    flow_calibration: JsonValue = None

    @property
    def drug_free(self) -> bool:
        """True for a material that carries no API (a shell or barrier)."""
        return not self.api

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "formulation": self.formulation, "api": self.api,
                "drug_loading": self.drug_loading, "density_g_cm3": self.density_g_cm3,
                "filament_diameter_mm": self.filament_diameter_mm,
                "nozzle_temp_c": self.nozzle_temp_c,
                "formulation_sha256": self.formulation_sha256,
                "extrusion_multiplier": self.extrusion_multiplier,
                "flow_command": self.flow_command,
                "flow_calibration": thaw_json(self.flow_calibration)}

    @classmethod
    def read(cls, r: _Reader) -> ToolEntry:
        return cls(tool=r.whole("tool"), formulation=r.text("formulation"),
                   api=r.text("api", nullable=True) or "",
                   drug_loading=r.number("drug_loading"), density_g_cm3=r.number("density_g_cm3"),
                   filament_diameter_mm=r.number("filament_diameter_mm"),
                   nozzle_temp_c=r.number("nozzle_temp_c", required=False),
                   formulation_sha256=r.text("formulation_sha256"),
                   extrusion_multiplier=r.number("extrusion_multiplier", required=False,
                                                 default=1.0),
                   flow_command=r.text("flow_command", required=False, nullable=True) or None,
                   flow_calibration=r.json("flow_calibration", required=False))


@dataclass(frozen=True)
class PrescriptionEntry:
    """The prescription a job was compiled from: its id, hash, patient, file and content."""

    id: str
    sha256: str
    patient: str
    file: str
    content: JsonValue

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "sha256": self.sha256, "patient": self.patient,
                "file": self.file, "content": thaw_json(self.content)}

    @classmethod
    def read(cls, r: _Reader) -> PrescriptionEntry:
        content = r.json("content")
        patient = r.text("patient", required=False)
        if not patient and isinstance(content, Mapping):
            patient = str(content.get("patient", ""))
        return cls(id=r.text("id"), sha256=r.text("sha256"), patient=patient,
                   file=r.text("file", required=False), content=content)


@dataclass(frozen=True)
class PrinterEntry:
    """The printer profile a job was compiled for."""

    id: str
    sha256: str
    flavor: str
    extruders: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "sha256": self.sha256, "flavor": self.flavor,
                "extruders": self.extruders}

    @classmethod
    def read(cls, r: _Reader) -> PrinterEntry:
        return cls(id=r.text("id"), sha256=r.text("sha256"),
                   flavor=r.text("flavor", required=False),
                   extruders=r.whole("extruders", required=False) if r.has("extruders") else 0)


@dataclass(frozen=True)
class GcodeEntry:
    """The program: its file, hash, size and estimated durations."""

    file: str
    sha256: str
    lines: int
    estimated_print_s: float
    estimated_motion_s: float

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "lines": self.lines,
                "estimated_print_s": self.estimated_print_s,
                "estimated_motion_s": self.estimated_motion_s}

    @classmethod
    def read(cls, r: _Reader) -> GcodeEntry:
        return cls(file=r.text("file"), sha256=r.text("sha256"), lines=r.whole("lines"),
                   estimated_print_s=r.number("estimated_print_s"),
                   estimated_motion_s=r.number("estimated_motion_s", required=False))


@dataclass(frozen=True)
class JobManifest:
    """A compiled job: everything ``job.json`` says (job.md), as one frozen value.

    Attributes
    ----------
    doseprint_version, created_utc : str
        Who wrote it and when (UTC, ISO 8601).
    prescription : PrescriptionEntry
    printer : PrinterEntry
    tools : tuple of ToolEntry
        ``tools[k]`` is tool *k*.
    tablets : tuple of TabletEntry
        In index order.
    gcode : GcodeEntry
    warnings : tuple of str
    print_order : str
        ``layer`` or ``tablet``.
    purge_tower : JSON or None
        ``{corner_mm, size_mm, purge_volume_mm3, standby_delta_c}``.
    files : mapping of str to str
        Every file beside job.gcode that the manifest vouches for, name to SHA-256.
    """

    doseprint_version: str
    created_utc: str
    prescription: PrescriptionEntry
    printer: PrinterEntry
    tools: tuple[ToolEntry, ...]
    tablets: tuple[TabletEntry, ...]
    gcode: GcodeEntry
    warnings: tuple[str, ...] = ()
    print_order: str = "layer"
    purge_tower: JsonValue = None
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    schema: str = JOB_SCHEMA

    # Read-outs

    def file_hashes(self) -> dict[str, str]:
        """File name to SHA-256 of every file the manifest vouches for, job.gcode first."""
        return {self.gcode.file: self.gcode.sha256, **self.files}

    def expected_doses(self) -> list[tuple[int, str, int, float]]:
        """(tablet, api, tool, prescribed dose in mg) of every tablet and API."""
        return [(t.index, a.api, a.tool, a.dose_mg) for t in self.tablets for a in t.actives]

    # JSON

    def to_json(self) -> dict[str, Any]:
        """The ``job.json`` object, keys in job.md's order."""
        return {
            "schema": self.schema,
            "doseprint_version": self.doseprint_version,
            "created_utc": self.created_utc,
            "prescription": self.prescription.to_json(),
            "printer": self.printer.to_json(),
            "tools": [t.to_json() for t in self.tools],
            "tablets": [t.to_json() for t in self.tablets],
            "gcode": self.gcode.to_json(),
            "warnings": list(self.warnings),
            "print_order": self.print_order,
            "purge_tower": thaw_json(self.purge_tower),
            "files": dict(self.files),
        }

    def to_bytes(self) -> bytes:
        """``job.json`` as compile writes it (one-space indent, UTF-8, final newline)."""
        return (json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: Any, *, source: str = "job.json") -> JobManifest:
        """Read a ``job.json`` object, checking every key other programs rely on.

        Raises
        ------
        InputError
            The schema is not ``doseprint.job/1``, or a key is missing or of the wrong
            type (one problem per key, each named, e.g. ``tablets[0].actives[1].dose_mg``).
        """
        problems: list[Problem] = []
        r = _Reader(data, "", source, problems)
        schema = r.data.get("schema")
        if schema != JOB_SCHEMA:
            raise InputError(f'is {schema!r}; this doseprint reads only "{JOB_SCHEMA}"',
                             file=source, key="schema")
        warnings = tuple(str(w) for w in r.data.get("warnings", []) or [])
        files_raw = r.data.get("files", {})
        if not isinstance(files_raw, Mapping) or not all(
                isinstance(v, str) for v in files_raw.values()):
            problems.append(Problem(source, "files", "must map file names to SHA-256 text"))
            files_raw = {}
        manifest = cls(
            doseprint_version=r.text("doseprint_version"),
            created_utc=r.text("created_utc"),
            prescription=PrescriptionEntry.read(r.obj("prescription")),
            printer=PrinterEntry.read(r.obj("printer")),
            tools=tuple(ToolEntry.read(t) for t in r.items("tools")),
            tablets=tuple(TabletEntry.read(t) for t in r.items("tablets")),
            gcode=GcodeEntry.read(r.obj("gcode")),
            warnings=warnings,
            print_order=r.text("print_order", required=False) or "layer",
            purge_tower=r.json("purge_tower", required=False),
            files=MappingProxyType({str(k): str(v) for k, v in files_raw.items()}),
            schema=JOB_SCHEMA,
        )
        problems += _consistency(manifest, source)
        if problems:
            raise InputError(problems)
        return manifest


def _consistency(m: JobManifest, source: str) -> list[Problem]:
    """Cross-key rules: tools numbered 0..n-1, tablets by index, actives on known tools."""
    problems = []
    if [t.tool for t in m.tools] != list(range(len(m.tools))):
        problems.append(Problem(source, "tools", "must list tools 0, 1, … in order"))
    if [t.index for t in m.tablets] != list(range(len(m.tablets))):
        problems.append(Problem(source, "tablets", "must list tablets 0, 1, … in order"))
    for t in m.tablets:
        for k, a in enumerate(t.actives):
            if not 0 <= a.tool < len(m.tools):
                problems.append(Problem(source, f"tablets[{t.index}].actives[{k}].tool",
                                        f"is {a.tool}; the job has {len(m.tools)} tool(s)"))
    return problems

