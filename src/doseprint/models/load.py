"""Read prescriptions, formulations and printer profiles from files into frozen models.

Every rule of prescription.md "Rules every reader enforces" is applied here (those that
need the formulation library in :func:`check_prescription`); each broken rule becomes one
:class:`~doseprint.errors.Problem` naming the file and the key, and all of a file's
problems are raised together as one :class:`~doseprint.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from doseprint.errors import InputError, Problem
from doseprint.models.fields import Table, key_label, show
from doseprint.models.formulation import FORMULATION_SCHEMA, Formulation
from doseprint.models.prescription import (
    PRESCRIPTION_SCHEMA,
    Active,
    Dispense,
    Prescription,
    ScheduleEntry,
    TabletConstraints,
)
from doseprint.models.printer import (
    DEFAULT_MIN_EXTRUDE_TEMP_C,
    MIN_EXTRUDE_TEMP_FLOOR_C,
    OPTIONAL_TEMPLATE_NAMES,
    PRINTER_SCHEMA,
    TEMPLATE_NAMES,
    PrinterProfile,
)
from doseprint.typed import (
    EXTRUSION_MODES,
    FLAVORS,
    INFILL_PATTERNS,
    LAYOUTS,
    ORIGINS,
    PRINT_ORDERS,
    RELEASE_KINDS,
    RELEASE_MECHANISMS,
    SHAPES,
    ExtrusionMode,
    Flavor,
    InfillPattern,
    Layout,
    Origin,
    PrintOrder,
    ReleaseKind,
    ReleaseMechanism,
    Shape,
)

# A pseudonymised reference: letters, digits and a few separators, never a person's name
# (which would contain a space). Ids follow the same rule so they are safe in file names.
# Both are matched whole (fullmatch): with re.match and "$", "RX-1\n" would pass, and the
# line feed would end the G-code comment that names the prescription.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,63}")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

# Smallest bed that can hold one tablet of the largest swallowable size (22 mm, FDA
# guidance for generics) with a 5 mm margin each side.
MIN_BED_MM = 32.0

MIN_INFILL = 0.2
"""Smallest ``[tablet] infill`` (material fraction of the envelope) a prescription may fix."""

# Bounds on what a file may hold (docs/formats.md lists them with every key). Each is
# well beyond anything a pharmacy prints, and well inside what the designer, the release
# model and the slicer finish in seconds.
MAX_FILE_BYTES = 1_048_576
"""A prescription of 1000 scheduled doses is about 8 kB; a formulation a few kB."""
MAX_DEPTH = 8
"""Tables and lists inside each other: the deepest a format needs is 5
(``actives[0].profile[1][0]``); JSON and TOML readers recurse, and Python stops at 1000."""
MAX_INT = 2**63 - 1
"""Largest whole number any key can hold; a larger one is refused before a range check
turns it into text (Python refuses to above 4300 digits)."""
MAX_PROBLEMS = 50
"""Problems reported for one file; the rest are counted."""
MAX_ACTIVES = 4
"""Actives in one tablet: the designer makes one compartment per active, one to four."""
MAX_UNITS = 1000
"""Tablets in one batch (a plate holds far fewer; the placement says how many fit)."""
MAX_DOSE_MG = 2000.0
"""Largest dose per tablet of one API: 2 g, more than the largest swallowable tablet
(22 mm, about 1.5 cm3) holds at any drug loading; each formulation's max_dose_mg is lower."""
MAX_RELEASE_H = 168.0
"""Latest release time (``t80_h``, a profile's hours): one week. The release model runs
to twice the target, so this also bounds how long a prediction takes."""
MAX_PROFILE_POINTS = 50
MIN_DIMENSION_MM = 1.0
"""Smallest fixed tablet dimension (a mini-tablet is 1.5-3 mm)."""
MAX_DIMENSION_MM = 40.0
"""Largest tablet dimension (``max_length_mm``); 22 mm is the swallowable default."""
MAX_NOTE_CHARS = 2000
MAX_SOURCES = 100
MAX_SOURCE_CHARS = 2000


# Reading files -----------------------------------------------------------------------


def read_text(
    path: Path | str, encoding: str = "utf-8", max_bytes: int | None = None
) -> tuple[str, bytes]:
    """A user's text file, decoded, and its raw bytes (for hashing).

    ``max_bytes`` bounds what is read: a longer file (or a device such as /dev/zero,
    which never ends) is refused after reading one byte more.

    Raises
    ------
    InputError
        The file is missing, a folder, unreadable, longer than ``max_bytes`` or not text
        in ``encoding``.
    """
    path = Path(path)
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}", file=name) from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise InputError(f"is longer than {max_bytes} bytes, the most a doseprint file "
                         "may be", file=name)
    try:
        return raw.decode(encoding), raw
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=name) from None


def read_document(path: Path | str) -> tuple[dict[str, Any], bytes]:
    """Parse a TOML (or, by suffix, JSON) file; return the table and the raw bytes.

    Raises
    ------
    InputError
        The file cannot be read or does not parse (with the line where the parser says).
    """
    path = Path(path)
    name = str(path)
    text, raw = read_text(path, max_bytes=MAX_FILE_BYTES)
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        if kind == "JSON":
            data = json.loads(text, parse_constant=float, object_pairs_hook=_unique_keys)
        else:
            data = tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            file=name,
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML: {exc}", file=name) from None
    except RecursionError:
        raise InputError(f"nests lists or tables too deeply; at most {MAX_DEPTH} levels",
                         file=name) from None
    except ValueError as exc:
        # Python refuses to read a whole number of more than 4300 digits.
        why = ("holds a whole number of more than 4300 digits, too large for any key"
               if "integer string conversion" in str(exc) else f"is not valid {kind}: {exc}")
        raise InputError(why, file=name) from None
    if not isinstance(data, dict):
        raise InputError("must hold a table (a JSON object) at the top level", file=name)
    _check_shape(data, name)
    return data, raw


def _check_shape(data: dict[str, Any], file: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and whole numbers beyond ``MAX_INT``
    anywhere in a parsed file, naming the key (without recursing: the check must hold
    for any input)."""
    problems: list[Problem] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack and len(problems) < MAX_PROBLEMS:
        key, value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                problems.append(Problem(file, key, f"nests lists or tables too deeply; at "
                                        f"most {MAX_DEPTH} levels"))
                continue
            items = (value.items() if isinstance(value, dict) else enumerate(value))
            for k, v in items:
                child = (f"{key}[{k}]" if isinstance(value, list)
                         else f"{key}.{key_label(k)}" if key else key_label(k))
                stack.append((child, v, depth + 1))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            problems.append(Problem(file, key, f"is {show(value)}, too large for any key "
                                    "(at most 19 digits)"))
    _raise_if(problems)


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON readers keep the last of duplicate keys silently; TOML refuses them, and so
    # must we, or the same typo would pass only as JSON. The duplicates are reported
    # by fields.Table with the key's full name. (NaN and Infinity, which JSON does not
    # allow either, are read as floats so the range checks name their keys.)
    out = _JsonObject()
    duplicates = []
    for key, value in pairs:
        if key in out:
            duplicates.append(key)
        out[key] = value
    out.duplicates = tuple(duplicates)
    return out


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _check_schema(table: Table, expected: str) -> str | None:
    schema = table.take_str("schema")
    if schema is not None and schema != expected:
        table.problem(
            "schema",
            f"is {show(schema)}; this doseprint reads only \"{expected}\" "
            "(a newer file needs a newer doseprint)",
        )
        return None
    return schema


def _raise_if(problems: list[Problem]) -> None:
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS],
                    Problem(problems[0].file, "", f"and {more} more problems")]
    if problems:
        raise InputError(problems)


# Prescriptions -----------------------------------------------------------------------


def load_prescription(path: Path | str) -> Prescription:
    """Read and validate a prescription file on its own (no formulation library yet).

    Raises
    ------
    InputError
        With one problem per broken rule, each naming the key.
    """
    data, raw = read_document(path)
    problems: list[Problem] = []
    top = Table(data, str(path), "", problems)
    schema = _check_schema(top, PRESCRIPTION_SCHEMA)
    rx_id = _take_reference(top, "id")
    patient = _take_reference(top, "patient", what="a pseudonymised reference, never a name")
    prescriber = top.take_str("prescriber", required=False)
    note = top.take_str("note", required=False, allow_empty=True, max_chars=MAX_NOTE_CHARS,
                        multiline=True)

    actives = _read_actives(top)
    tablet = _read_tablet(top)
    dispense = _read_dispense(top, _declared_apis(data))
    top.finish()
    _raise_if(problems)
    assert schema is not None and rx_id is not None and patient is not None
    assert actives is not None and dispense is not None and tablet is not None
    return Prescription(
        schema=schema,
        id=rx_id,
        patient=patient,
        prescriber=prescriber,
        note=note,
        actives=tuple(actives),
        tablet=tablet,
        dispense=dispense,
        source=str(path),
        sha256=sha256_hex(raw),
        content=data,
    )


def _take_reference(table: Table, name: str, what: str = "an identifier") -> str | None:
    value = table.take_str(name)
    if value is not None and not _REFERENCE.fullmatch(value):
        table.problem(
            name,
            f"is {show(value)}; must be {what}: 1 to 64 letters, digits and . _ : / + - "
            "only, no spaces",
        )
        return None
    return value


def _take_id(table: Table, name: str, *, required: bool = True,
             default: str | None = None) -> str | None:
    """A formulation or printer id: lower-case letters, digits, ``. _ -``, matched whole."""
    value = table.take_str(name, required=required, default=default)
    if value is not None and value != default and not _ID.fullmatch(value):
        table.problem(name, f"is {show(value)}; use 1 to 64 lower-case letters, digits, "
                      ". _ - only")
        return None
    return value


def _read_actives(top: Table) -> list[Active] | None:
    tables = top.take_tables("actives", max_items=MAX_ACTIVES)
    if tables is None:
        return None
    if not top.data["actives"]:
        top.problem("actives", "must list at least one active ingredient")
        return None
    actives: list[Active] = []
    seen: dict[str, int] = {}
    ok = True
    for i, t in enumerate(tables):
        api = t.take_str("api")
        dose = t.take_number("dose_mg", exclusive_minimum=0.0, maximum=MAX_DOSE_MG)
        release = cast(ReleaseKind | None, t.take_str("release", choices=RELEASE_KINDS))
        formulation = _take_id(t, "formulation", required=False)
        t80_h = t.take_number("t80_h", required=release == "sustained", exclusive_minimum=0.0,
                              maximum=MAX_RELEASE_H)
        profile = _read_profile(t, required=release == "profile")
        if release is not None and release != "sustained" and "t80_h" in t.data:
            t.problem("t80_h", f'applies only to release = "sustained", not "{release}"')
        if release is not None and release != "profile" and "profile" in t.data:
            t.problem("profile", f'applies only to release = "profile", not "{release}"')
        t.finish()
        if api is not None:
            if api in seen:
                t.problem("api", f"{show(api)} is already listed as actives[{seen[api]}]; "
                          "list each active once")
                ok = False
            seen[api] = i
        if api is None or dose is None or release is None:
            ok = False
            continue
        actives.append(
            Active(
                api=api,
                dose_mg=dose,
                release=release,
                t80_h=t80_h if release == "sustained" else None,
                profile=profile if release == "profile" else None,
                formulation=formulation,
            )
        )
    return actives if ok else None


def _read_profile(t: Table, *, required: bool) -> tuple[tuple[float, float], ...] | None:
    points = t.take_list("profile", required=required, max_items=MAX_PROFILE_POINTS)
    if points is None:
        return None
    if len(points) < 3:
        # FDA dissolution guidance: f2 needs at least three time points.
        t.problem("profile", f"has {len(points)} point(s); f2 needs at least 3 "
                  "[hours, fraction] points")
        return None
    parsed: list[tuple[float, float]] = []
    for j, point in enumerate(points):
        name = f"profile[{j}]"
        if not isinstance(point, list | tuple) or len(point) != 2:
            t.problem(name, f"must be a pair [hours, fraction], found {show(point)}")
            return None
        hours = t.check_number(name + "[0]", point[0], exclusive_minimum=0.0,
                               maximum=MAX_RELEASE_H)
        fraction = t.check_number(name + "[1]", point[1], minimum=0.0, maximum=1.0)
        if hours is None or fraction is None:
            return None
        if parsed:
            if hours <= parsed[-1][0]:
                t.problem(name + "[0]", f"is {hours:g} h; times must rise "
                          f"(the point before is at {parsed[-1][0]:g} h)")
                return None
            if fraction < parsed[-1][1]:
                t.problem(name + "[1]", f"is {fraction:g}; fractions released must not "
                          f"fall (the point before is {parsed[-1][1]:g})")
                return None
        parsed.append((hours, fraction))
    return tuple(parsed)


def _read_tablet(top: Table) -> TabletConstraints | None:
    t = top.take_table("tablet", required=False)
    if t is None:
        return TabletConstraints() if "tablet" not in top.data else None
    before = len(t.problems)
    shape = cast(Shape, t.take_str("shape", required=False, choices=SHAPES, default="auto"))
    layout = cast(Layout, t.take_str("layout", required=False, choices=LAYOUTS, default="auto"))
    max_length = t.take_number(
        "max_length_mm", required=False, minimum=MIN_DIMENSION_MM, maximum=MAX_DIMENSION_MM,
        default=22.0
    )
    dims = {key: t.take_number(key, required=False, minimum=MIN_DIMENSION_MM,
                               maximum=MAX_DIMENSION_MM)
            for key in ("diameter_mm", "height_mm", "length_mm", "width_mm")}
    # Below a fifth of the envelope a lattice of 0.4 mm roads is too open to hold
    # together as a tablet (and its gaps are wider than the tablet's own walls).
    infill = t.take_number("infill", required=False, minimum=MIN_INFILL, maximum=1.0)
    infill_pattern = cast(InfillPattern, t.take_str(
        "infill_pattern", required=False, choices=INFILL_PATTERNS, default="rectilinear"))
    solid_layers = t.take_int("solid_layers", required=False, minimum=0, maximum=10,
                              default=0)
    shell = _take_id(t, "shell", required=False, default="none")
    # A wall or a hole under 0.1 mm is no part of a printable tablet (the designer refuses
    # anything under its minimum wall, with numbers); below it the geometry underflows.
    shell_mm = t.take_number("shell_mm", required=False, minimum=0.1, maximum=5.0)
    channels = t.take_int("channels", required=False, minimum=0, maximum=8, default=0)
    channel_mm = t.take_number("channel_mm", required=False, minimum=0.1, maximum=5.0)
    dome_mm = t.take_number("dome_mm", required=False, minimum=0.0, maximum=5.0, default=0.0)
    t.finish()
    if shell_mm is not None and shell == "none":
        t.problem("shell_mm", 'is given but shell is "none"; name a drug-free formulation '
                  "as shell or drop shell_mm")
    if channel_mm is not None and not channels:
        t.problem("channel_mm", "is given but channels is 0")
    if len(t.problems) > before:
        return None
    assert max_length is not None and shell is not None and channels is not None
    assert dome_mm is not None
    for name, value in dims.items():
        if value is not None and value > max_length:
            t.problem(name, f"is {value:g} mm, longer than max_length_mm = {max_length:g}")
            return None
    return TabletConstraints(
        shape=shape, layout=layout, max_length_mm=max_length,
        diameter_mm=dims["diameter_mm"], height_mm=dims["height_mm"],
        length_mm=dims["length_mm"], width_mm=dims["width_mm"], infill=infill,
        infill_pattern=infill_pattern or "rectilinear", solid_layers=solid_layers or 0,
        shell=shell,
        shell_mm=shell_mm, channels=channels, channel_mm=channel_mm, dome_mm=dome_mm,
    )


def _declared_apis(data: Mapping[str, Any]) -> set[str] | None:
    """The API names the actives table declares, read loosely so that a schedule can be
    checked against them even when an active has problems of its own."""
    actives = data.get("actives")
    if not isinstance(actives, list):
        return None
    return {a["api"] for a in actives if isinstance(a, Mapping) and isinstance(a.get("api"), str)}


def _read_dispense(top: Table, apis: set[str] | None) -> Dispense | None:
    t = top.take_table("dispense")
    if t is None:
        return None
    units = t.take_int("units", minimum=1, maximum=MAX_UNITS)
    entries = t.take_tables("schedule", required=False, max_items=MAX_ACTIVES) or []
    schedule: list[ScheduleEntry] = []
    scheduled: dict[str, int] = {}
    ok = units is not None
    for i, e in enumerate(entries):
        api = e.take_str("api")
        doses = e.take_list("doses_mg", max_items=MAX_UNITS)
        e.finish()
        if api is not None:
            if apis is not None and api not in apis:
                listed = ", ".join(f'"{a}"' for a in sorted(apis))
                e.problem("api", f"{show(api)} is not among the actives ({listed})")
                ok = False
            elif api in scheduled:
                e.problem("api", f"{show(api)} already has a schedule "
                          f"(dispense.schedule[{scheduled[api]}])")
                ok = False
            scheduled[api] = i
        if doses is None:
            ok = False
            continue
        if units is not None and len(doses) != units:
            e.problem("doses_mg", f"has {len(doses)} doses; dispense.units is {units}, "
                      "one dose per tablet")
            ok = False
        checked = [e.check_number(f"doses_mg[{j}]", d, exclusive_minimum=0.0,
                                  maximum=MAX_DOSE_MG)
                   for j, d in enumerate(doses)]
        if any(d is None for d in checked) or api is None:
            ok = False
            continue
        schedule.append(ScheduleEntry(api, tuple(cast(list[float], checked))))
    t.finish()
    if not ok:
        return None
    assert units is not None
    return Dispense(units=units, schedule=tuple(schedule))


def check_prescription(rx: Prescription, formulations: Mapping[str, Formulation]) -> None:
    """Apply the rules that need the formulation library.

    An API with no formulation; a pinned formulation that is unknown or does not carry
    the API; a dose (also any scheduled one) above the formulation's ``max_dose_mg``.
    """
    problems: list[Problem] = []
    shell = rx.tablet.shell
    if shell != "none":
        f = formulations.get(shell)
        if f is None:
            drug_free = sorted(k for k, v in formulations.items() if v.drug_free)
            problems.append(Problem(rx.source, "tablet.shell",
                                    f"{show(shell)} is not in the formulation library; "
                                    'drug-free ones: ' + ", ".join(drug_free) + ', or "none"'))
        elif not f.drug_free:
            problems.append(Problem(rx.source, "tablet.shell",
                                    f"{show(shell)} carries {f.api}; a shell must be a "
                                    "drug-free formulation"))
    for i, active in enumerate(rx.actives):
        key = f"actives[{i}]"
        if active.formulation is not None:
            f = formulations.get(active.formulation)
            if f is None:
                problems.append(Problem(rx.source, key + ".formulation",
                                        f"{show(active.formulation)} is not in the formulation "
                                        "library (`doseprint formulation list` shows it)"))
                continue
            if f.api != active.api:
                carries = f'carries "{f.api}"' if f.api else "is drug-free"
                problems.append(Problem(rx.source, key + ".formulation",
                                        f"{show(f.id)} {carries}, not {show(active.api)}"))
                continue
            candidates = [f]
        else:
            candidates = [f for f in formulations.values() if f.api == active.api]
            if not candidates:
                apis = sorted({f.api for f in formulations.values() if f.api})
                problems.append(Problem(rx.source, key + ".api",
                                        f"{show(active.api)} has no formulation in the library; "
                                        "known APIs: " + ", ".join(apis)))
                continue
        limit = max(f.max_dose_mg or 0.0 for f in candidates)
        which = candidates[0].id if len(candidates) == 1 else "any formulation of it"
        if active.dose_mg > limit:
            problems.append(Problem(rx.source, key + ".dose_mg",
                                    f"is {active.dose_mg:g} mg, above max_dose_mg = {limit:g} "
                                    f"of {which}"))
        for j, entry in enumerate(rx.dispense.schedule):
            if entry.api != active.api:
                continue
            for k, dose in enumerate(entry.doses_mg):
                if dose > limit:
                    problems.append(Problem(rx.source, f"dispense.schedule[{j}].doses_mg[{k}]",
                                            f"is {dose:g} mg, above max_dose_mg = {limit:g} "
                                            f"of {which}"))
    _raise_if(problems)


# Formulations ------------------------------------------------------------------------


def load_formulation(path: Path | str) -> Formulation:
    """Read and validate one formulation file (formulation.md)."""
    path = Path(path)
    data, raw = read_document(path)
    problems: list[Problem] = []
    t = Table(data, str(path), "", problems)
    schema = _check_schema(t, FORMULATION_SCHEMA)
    fid = _take_id(t, "id")
    if fid is not None and fid != path.stem:
        t.problem("id", f"is {show(fid)} but the file is named {path.name}; "
                  "the file name must be the id + .toml")
    api = t.take_str("api", required=False, allow_empty=True, default="")
    name = t.take_str("name")
    loading = t.take_number("drug_loading", minimum=0.0, maximum=1.0)
    density = t.take_number("density_g_cm3", exclusive_minimum=0.0, maximum=5.0)
    diffusivity = t.take_number("diffusivity_mm2_s", exclusive_minimum=0.0, maximum=1.0)
    filament = t.take_number("filament_diameter_mm", minimum=1.0, maximum=5.0)
    nozzle = t.take_number("nozzle_temp_c", exclusive_minimum=0.0, maximum=500.0)
    bed = t.take_number("bed_temp_c", minimum=0.0, maximum=200.0)
    max_temp = t.take_number("max_temp_c", exclusive_minimum=0.0, maximum=500.0)
    max_dose = t.take_number("max_dose_mg", required=bool(api), exclusive_minimum=0.0,
                             maximum=MAX_DOSE_MG)
    mechanism = cast(ReleaseMechanism | None,
                     t.take_str("release_mechanism", choices=RELEASE_MECHANISMS))
    erosion = t.take_number("erosion_rate_mm_h", required=False, minimum=0.0, maximum=10.0,
                            default=0.0)
    sources = t.take_list("sources", max_items=MAX_SOURCES)
    t.finish()
    if api is not None and loading is not None:
        if api and loading == 0.0:
            t.problem("drug_loading", f"is 0 but api is {show(api)}; a drug-loaded "
                      "material needs 0 < drug_loading <= 1")
        if not api and loading != 0.0:
            t.problem("drug_loading", f"is {loading:g} but api is empty; a drug-free "
                      "material has drug_loading = 0")
    if max_temp is not None:
        for key, value in (("nozzle_temp_c", nozzle), ("bed_temp_c", bed)):
            if value is not None and value > max_temp:
                t.problem(key, f"is {value:g} °C, above this material's max_temp_c = "
                          f"{max_temp:g} °C")
    if mechanism is not None and erosion is not None:
        if "erosion" in mechanism and erosion <= 0.0:
            t.problem("erosion_rate_mm_h", f'must be > 0 for release_mechanism = "{mechanism}"')
        if mechanism == "diffusion" and erosion != 0.0:
            t.problem("erosion_rate_mm_h", f'is {erosion:g} but release_mechanism is '
                      '"diffusion"; set it to 0 or name an erosion mechanism')
    if sources is not None:
        if not sources or not all(isinstance(s, str) and s.strip() for s in sources):
            t.problem("sources", "must be a non-empty list of strings: where every value "
                      "comes from, or that it is an estimate")
        else:
            for k, source in enumerate(sources):
                t.check_str(f"sources[{k}]", source, max_chars=MAX_SOURCE_CHARS,
                            multiline=True)
    _raise_if(problems)
    assert schema and fid and name and api is not None and mechanism and sources is not None
    assert loading is not None and density and diffusivity and filament and nozzle
    assert bed is not None and max_temp and erosion is not None
    return Formulation(
        id=fid, api=api, name=name, drug_loading=loading, density_g_cm3=density,
        diffusivity_mm2_s=diffusivity, filament_diameter_mm=filament,
        nozzle_temp_c=nozzle, bed_temp_c=bed, max_temp_c=max_temp,
        release_mechanism=mechanism, sources=tuple(sources), max_dose_mg=max_dose,
        erosion_rate_mm_h=erosion, schema=schema, path=str(path), sha256=sha256_hex(raw),
    )


# Printer profiles --------------------------------------------------------------------


def load_printer(path: Path | str, template_roots: tuple[Path, ...] = ()) -> PrinterProfile:
    """Read and validate one printer profile (printer-profile.md).

    ``templates`` names a folder looked up in ``<profile's folder>/templates/`` and then
    in each of ``template_roots``; it must hold every template of
    :data:`~doseprint.models.printer.TEMPLATE_NAMES` as ``<name>.gcode.j2``.
    """
    path = Path(path)
    data, raw = read_document(path)
    problems: list[Problem] = []
    t = Table(data, str(path), "", problems)
    schema = _check_schema(t, PRINTER_SCHEMA)
    pid = _take_id(t, "id")
    if pid is not None and pid != path.stem:
        t.problem("id", f"is {show(pid)} but the file is named {path.name}; "
                  "the file name must be the id + .toml")
    name = t.take_str("name")
    flavor = cast(Flavor | None, t.take_str("flavor", choices=FLAVORS))
    bed = _take_pair(t, "bed_mm")
    max_z = t.take_number("max_z_mm", minimum=10.0, maximum=2000.0)
    origin = cast(Origin | None, t.take_str("origin", choices=ORIGINS))
    # The finest nozzles and layers sold (0.2 mm, 0.05 mm) at most; finer ones would cut a
    # tablet into hundreds of thousands of G-code lines.
    nozzle = t.take_number("nozzle_diameter_mm", minimum=0.2, maximum=2.0)
    extruders = t.take_int("extruders", minimum=1, maximum=16)
    filament = t.take_number("filament_diameter_mm", minimum=1.0, maximum=5.0)
    max_nozzle = t.take_number("max_nozzle_temp_c", exclusive_minimum=0.0, maximum=500.0)
    max_bed = t.take_number("max_bed_temp_c", minimum=0.0, maximum=200.0)
    layer = t.take_number("layer_height_mm", minimum=0.05, maximum=2.0)
    first = t.take_number("first_layer_height_mm", minimum=0.05, maximum=2.0)
    min_layer = t.take_number("min_layer_height_mm", minimum=0.05, maximum=2.0)
    max_layer = t.take_number("max_layer_height_mm", minimum=0.05, maximum=2.0)
    speed = t.take_number("print_speed_mm_s", minimum=1.0, maximum=1000.0)
    travel = t.take_number("travel_speed_mm_s", minimum=1.0, maximum=2000.0)
    retract = t.take_number("retract_mm", minimum=0.0, maximum=20.0)
    extrusion = cast(ExtrusionMode | None, t.take_str("extrusion", choices=EXTRUSION_MODES))
    baud = t.take_int("baud", minimum=300, maximum=10_000_000)
    rx_buffer = t.take_int("rx_buffer_lines", minimum=1, maximum=64)
    templates = _take_id(t, "templates")
    # Optional keys (printer-profile.md allows extras; docs/formats.md lists these).
    order = cast(PrintOrder | None, t.take_str("print_order", required=False,
                                               choices=PRINT_ORDERS, default="layer"))
    gantry = t.take_number("gantry_clearance_mm", required=False, minimum=1.0,
                           maximum=2000.0)
    purge = t.take_number("purge_volume_mm3", required=False, minimum=0.0, maximum=500.0,
                          default=20.0)
    standby = t.take_number("standby_delta_c", required=False, minimum=0.0, maximum=200.0,
                            default=0.0)
    tc_retract = t.take_number("tool_change_retract_mm", required=False, minimum=0.0,
                               maximum=50.0)
    perimeters = t.take_int("perimeters", required=False, minimum=1, maximum=6, default=2)
    accel = t.take_number("acceleration_mm_s2", required=False, minimum=10.0,
                          maximum=100000.0, default=1000.0)
    corner = t.take_number("square_corner_velocity_mm_s", required=False, minimum=0.0,
                           maximum=100.0, default=5.0)
    z_speed = t.take_number("max_z_speed_mm_s", required=False, minimum=0.1,
                            maximum=1000.0, default=10.0)
    z_accel = t.take_number("max_z_acceleration_mm_s2", required=False,
                            minimum=1.0, maximum=100000.0, default=100.0)
    e_speed = t.take_number("max_extrude_only_speed_mm_s", required=False,
                            minimum=0.1, maximum=1000.0)
    e_accel = t.take_number("max_extrude_only_acceleration_mm_s2", required=False,
                            minimum=1.0, maximum=100000.0)
    min_extrude = t.take_number("min_extrude_temp_c", required=False, minimum=0.0,
                                maximum=500.0, default=DEFAULT_MIN_EXTRUDE_TEMP_C)
    lower_min_extrude = t.take_bool("lower_min_extrude_temp", required=False, default=False)
    t.finish()

    if min_extrude is not None and max_nozzle is not None and min_extrude >= max_nozzle:
        t.problem("min_extrude_temp_c", f"is {min_extrude:g} °C, not below max_nozzle_temp_c "
                  f"= {max_nozzle:g} °C: the firmware would let nothing extrude")
    if lower_min_extrude and min_extrude is not None and min_extrude < MIN_EXTRUDE_TEMP_FLOOR_C:
        t.problem("lower_min_extrude_temp", f"is true, but min_extrude_temp_c is "
                  f"{min_extrude:g} °C: a job never sets the limit below "
                  f"{MIN_EXTRUDE_TEMP_FLOOR_C:g} °C (an unheated nozzle would pass it), so "
                  "there is nothing to lower; set lower_min_extrude_temp = false")
    if lower_min_extrude and flavor == "klipper":
        t.problem("lower_min_extrude_temp", "is true, but Klipper takes its minimum "
                  "extrusion temperature only from printer.cfg (min_extrude_temp in each "
                  "[extruder] section), not from G-code: set it there, give the same value "
                  "as min_extrude_temp_c, and set lower_min_extrude_temp = false")

    if gantry is not None and max_z is not None and gantry > max_z:
        t.problem("gantry_clearance_mm", f"is {gantry:g} mm, above max_z_mm = {max_z:g}")
    if order == "tablet" and gantry is None and "gantry_clearance_mm" not in data:
        t.problem("print_order", '"tablet" needs gantry_clearance_mm: the height under '
                  "the gantry above the nozzle tip, measured on the printer")
    if tc_retract is not None and retract is not None and tc_retract < retract:
        t.problem("tool_change_retract_mm", f"is {tc_retract:g} mm, less than retract_mm "
                  f"= {retract:g}; a tool put aside retracts at least as far as any travel")
    if bed is not None and min(bed) < MIN_BED_MM:
        t.problem("bed_mm", f"is {bed[0]:g} × {bed[1]:g} mm; smaller than one tablet of "
                  f"the largest size with margins ({MIN_BED_MM:g} mm a side)")
    if None not in (min_layer, max_layer, layer, first):
        assert min_layer and max_layer and layer and first
        if min_layer > max_layer:
            t.problem("min_layer_height_mm", f"is {min_layer:g}, above max_layer_height_mm "
                      f"= {max_layer:g}")
        for key, value in (("layer_height_mm", layer), ("first_layer_height_mm", first)):
            if not min_layer <= value <= max_layer:
                t.problem(key, f"is {value:g} mm, outside min_layer_height_mm..max_layer_"
                          f"height_mm = {min_layer:g}..{max_layer:g}")
        if nozzle is not None and max_layer > nozzle:
            t.problem("max_layer_height_mm", f"is {max_layer:g} mm, thicker than the nozzle "
                      f"({nozzle:g} mm)")
    templates_dir = ""
    if templates is not None:
        roots = (path.parent / "templates", *template_roots)
        found = [r / templates for r in roots if (r / templates).is_dir()]
        if not found:
            t.problem("templates", f"{show(templates)} is not a template folder in "
                      + " or ".join(str(r) for r in roots))
        else:
            templates_dir = str(found[0])
            missing = [n for n in TEMPLATE_NAMES
                       if not (found[0] / f"{n}.gcode.j2").is_file()]
            if missing:
                t.problem("templates", f"folder {found[0]} lacks "
                          + ", ".join(f"{n}.gcode.j2" for n in missing))
    _raise_if(problems)
    assert schema and pid and name and flavor and bed and max_z and origin and nozzle
    assert extruders and filament and max_nozzle and max_bed is not None and layer and first
    assert min_layer and max_layer and speed and travel and retract is not None
    assert extrusion and baud and rx_buffer and templates
    assert order and purge is not None and standby is not None
    assert accel and corner is not None and z_speed and z_accel
    assert min_extrude is not None and lower_min_extrude is not None
    return PrinterProfile(
        id=pid, name=name, flavor=flavor, bed_mm=bed, max_z_mm=max_z, origin=origin,
        nozzle_diameter_mm=nozzle, extruders=extruders, filament_diameter_mm=filament,
        max_nozzle_temp_c=max_nozzle, max_bed_temp_c=max_bed, layer_height_mm=layer,
        first_layer_height_mm=first, min_layer_height_mm=min_layer,
        max_layer_height_mm=max_layer, print_speed_mm_s=speed, travel_speed_mm_s=travel,
        retract_mm=retract, extrusion=extrusion, baud=baud, rx_buffer_lines=rx_buffer,
        templates=templates, templates_dir=templates_dir, schema=schema, path=str(path),
        sha256=sha256_hex(raw), print_order=order, gantry_clearance_mm=gantry,
        purge_volume_mm3=purge, standby_delta_c=standby, tool_change_retract_mm=tc_retract,
        perimeters=perimeters if perimeters is not None else 2,
        acceleration_mm_s2=accel, square_corner_velocity_mm_s=corner,
        max_z_speed_mm_s=z_speed, max_z_acceleration_mm_s2=z_accel,
        max_extrude_only_speed_mm_s=e_speed, max_extrude_only_acceleration_mm_s2=e_accel,
        min_extrude_temp_c=min_extrude, lower_min_extrude_temp=lower_min_extrude,
    )


def _take_pair(t: Table, name: str) -> tuple[float, float] | None:
    items = t.take_list(name, max_items=2)
    if items is None:
        return None
    if len(items) != 2:
        t.problem(name, f"must be two numbers [X, Y], found {len(items)}")
        return None
    values = [t.check_number(f"{name}[{i}]", v, exclusive_minimum=0.0, maximum=2000.0)
              for i, v in enumerate(items)]
    if values[0] is None or values[1] is None:
        return None
    return (values[0], values[1])


__all__ = [
    "OPTIONAL_TEMPLATE_NAMES",
    "check_prescription",
    "load_formulation",
    "load_prescription",
    "load_printer",
    "read_document",
    "read_text",
    "sha256_hex",
]
