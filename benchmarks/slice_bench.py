"""Slicing benchmark: doseprint's slicer against PrusaSlicer and CuraEngine on the same meshes.

Run with ``python benchmarks/slice_bench.py`` (``make bench`` runs it after the compile
benchmarks). For each case (one 10 × 4 mm tablet, the 28-tablet taper, a two-drug plate)
it compiles the prescription, then times, median of ``--runs`` (default 3):

* doseprint's slicing alone: the tablets' meshes to G-code text (plate layout, slicing,
  perimeters and infill, flow trim, G-code rendering), timed inside
  ``compile_prescription`` between its progress messages "slicing" and "verifying the
  dose from the G-code"; design, release prediction and the dose read-back excluded;
* doseprint's whole compile (design, 3D release, slicing, G-code, verification), in the
  same runs;
* ``prusa-slicer`` and ``CuraEngine`` on the same meshes: the compile's own tablets.3mf
  as one binary STL per tablet, each placed where doseprint prints it, all on one plate,
  with settings equivalent to doseprint's (benchmarks/slicers/prusaslicer.ini and
  curaengine.def.json); a tool that is not installed is skipped with a note.

External tools are timed as whole processes (start-up and reading the STLs included); CPU
seconds (user + system, all threads) are shown beside the wall-clock seconds because both
tools slice on several threads and doseprint on one. Every G-code is read back with
doseprint's reader for its moves and filament, to show the tools did comparable work.

CuraEngine needs Cura's machine definitions (``fdmprinter.def.json``, from the Debian
package ``cura``); they are looked for in ``--cura-definitions``, in
``CURA_ENGINE_SEARCH_PATH`` and in /usr/share/cura/resources/definitions.

``--profile`` instead profiles doseprint's slicing of the 28-tablet plate with cProfile
and prints the functions taking the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from doseprint.compile import CompiledJob, compile_prescription
from doseprint.errors import DoseprintError
from doseprint.gcode.reader import read_gcode
from doseprint.library import Library, load_library

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "benchmarks" / "slicers"
PRUSA_INI = CONFIGS / "prusaslicer.ini"
CURA_DEF = CONFIGS / "curaengine.def.json"
CURA_DEBIAN_DIR = Path("/usr/share/cura/resources/definitions")
"""Where the Debian package ``cura`` installs the machine definitions."""


@dataclass(frozen=True)
class Case:
    """One benchmark case: a prescription compiled for a printer."""

    key: str
    label: str
    rx: Path
    printer: str


CASES = (
    Case("one", "one 10 × 4 mm tablet", CONFIGS / "one-tablet.toml", "generic-marlin-1x175"),
    Case("taper", "28-tablet taper (28 distinct tablets)", CONFIGS / "taper-28.toml",
         "generic-marlin-1x175"),
    Case("two-drug", "two-drug plate (2 two-compartment tablets)",
         ROOT / "examples" / "polypill-theophylline-hctz.toml", "generic-marlin-2x175"),
)


@dataclass
class Timing:
    """Wall-clock and CPU seconds of repeated runs, and what the last run produced."""

    wall_s: list[float]
    cpu_s: list[float]
    moves: int | None = None
    filament_mm: float | None = None
    note: str = ""
    parts: list[dict[str, float]] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_s)


# ---------------------------------------------------------------- doseprint's slicing

SLICE = "doseprint slice"
COMPILE = "doseprint compile"

SLICE_START = "slicing"
RENDER_START = "writing G-code"
SLICE_END = "verifying the dose from the G-code"
"""The compile's progress messages around its slicing stage: from the tablets' meshes to
the G-code text (plate layout, slicing, perimeters and infill, flow trim, then G-code)."""


class Marks:
    """Wall-clock and CPU time at each progress message of one compile."""

    def __init__(self, on_mark: Callable[[str], None] | None = None) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.on_mark = on_mark

    def __call__(self, message: str) -> None:
        if self.on_mark is not None:
            self.on_mark(message)
        self.wall[message] = time.perf_counter()
        self.cpu[message] = time.process_time()

    def span(self, start: str, end: str) -> tuple[float, float]:
        """Wall and CPU seconds from the ``start`` message to the ``end`` one."""
        missing = {start, end} - set(self.wall)
        if missing:
            raise RuntimeError(f"the compile no longer reports {sorted(missing)}: update "
                               "the marks in benchmarks/slice_bench.py")
        return self.wall[end] - self.wall[start], self.cpu[end] - self.cpu[start]


def time_compile(case: Case, lib: Library, runs: int) -> tuple[Timing, Timing, CompiledJob]:
    """The whole compile and its slicing stage, ``runs`` times each (the same runs)."""
    whole, sliced = Timing([], []), Timing([], [])
    compiled = None
    for _ in range(runs):
        marks = Marks()
        w0, c0 = time.perf_counter(), time.process_time()
        compiled = compile_prescription(str(case.rx), case.printer, library=lib,
                                        progress=marks)
        whole.wall_s.append(time.perf_counter() - w0)
        whole.cpu_s.append(time.process_time() - c0)
        wall, cpu = marks.span(SLICE_START, SLICE_END)
        sliced.wall_s.append(wall)
        sliced.cpu_s.append(cpu)
        sliced.parts.append({"plan": marks.span(SLICE_START, RENDER_START)[0],
                             "render": marks.span(RENDER_START, SLICE_END)[0]})
    assert compiled is not None
    whole.moves, whole.filament_mm = sliced.moves, sliced.filament_mm = read_back(
        compiled.program.text)
    return sliced, whole, compiled


def tablet_stls(compiled: CompiledJob, folder: Path, stem: str) -> list[Path]:
    """The compile's own tablets.3mf as one binary STL per tablet (its compartments as
    shells of one file), each placed where doseprint prints it: a plate of separate
    objects, as a slicer's user would lay it out."""
    scene = trimesh.load(io.BytesIO(compiled.files["tablets.3mf"]), file_type="3mf")
    if not isinstance(scene, trimesh.Scene):
        raise TypeError("tablets.3mf did not load as a scene")
    by_tablet: dict[str, list[trimesh.Trimesh]] = {}
    for node in scene.graph.nodes_geometry:
        transform, geometry = scene.graph[node]
        part = scene.geometry[geometry].copy()
        part.apply_transform(transform)
        by_tablet.setdefault(node.split("/")[0], []).append(part)
    paths = []
    for name in sorted(by_tablet, key=lambda n: int(n.rsplit("-", 1)[1])):
        path = folder / f"{stem}-{name}.stl"
        path.write_bytes(trimesh.exchange.stl.export_stl(trimesh.util.concatenate(
            by_tablet[name])))
        paths.append(path)
    return paths


def read_back(text: str) -> tuple[int, float]:
    """Moves and net filament (mm, all tools and sections) of a G-code text."""
    reading = read_gcode(text.splitlines(), source="benchmark")
    return reading.moves, float(sum(reading.filament_mm.values()))


# ---------------------------------------------------------------- the other slicers


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_process(runs: int, argv: Sequence[str], out: Path,
                 env: dict[str, str] | None = None) -> Timing:
    """Run a command ``runs`` times; a failure is returned as a note, not raised."""
    wall, cpu = [], []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        c0, w0 = children_cpu_s(), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        wall.append(time.perf_counter() - w0)
        cpu.append(children_cpu_s() - c0)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return Timing([], [], note=f"failed (exit {done.returncode}): {' / '.join(tail)}")
    moves, filament = read_back(out.read_text(errors="replace"))
    return Timing(wall, cpu, moves, filament)


def tool_version(argv: Sequence[str], pattern: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "version unknown"


@dataclass(frozen=True)
class Tool:
    """An external slicer: how to run it on a plate of STLs, or why it cannot run here."""

    name: str
    version: str
    command: Callable[[list[Path], Path, CompiledJob], list[str]] | None
    env: dict[str, str] | None = None
    missing: str = ""


def prusa_tool() -> Tool:
    exe = shutil.which("prusa-slicer")
    if exe is None:
        return Tool("PrusaSlicer", "", None, missing="not installed (Debian: prusa-slicer)")
    version = tool_version([exe, "--help"], r"PrusaSlicer-([0-9][^\s+]*)")

    def command(stls: list[Path], out: Path, _job: CompiledJob) -> list[str]:
        # One plate of all the objects (--merge), each kept where doseprint places it.
        return [exe, "--export-gcode", "--load", str(PRUSA_INI), "--merge", "--dont-arrange",
                "--output", str(out), *map(str, stls)]

    return Tool(f"PrusaSlicer {version}", version, command)


def cura_definition_dirs(given: str | None) -> list[Path]:
    """The folders CuraEngine should search for definitions; empty when none holds
    ``fdmprinter.def.json``."""
    candidates = [Path(given)] if given else []
    candidates += [Path(p) for p in os.environ.get("CURA_ENGINE_SEARCH_PATH", "").split(
        os.pathsep) if p]
    candidates.append(CURA_DEBIAN_DIR)
    found = [p for p in candidates if (p / "fdmprinter.def.json").is_file()]
    if not found:
        return []
    # The extruder definitions may sit beside the machine ones or in ../extruders.
    extra = [p.parent / "extruders" for p in found if (p.parent / "extruders").is_dir()]
    return found + extra


def cura_tool(definitions: str | None) -> Tool:
    exe = shutil.which("CuraEngine")
    if exe is None:
        return Tool("CuraEngine", "", None, missing="not installed (Debian: cura-engine)")
    version = tool_version([exe, "help"], r"version\s+([0-9][^\s]*)")
    dirs = cura_definition_dirs(definitions)
    if not dirs:
        return Tool(f"CuraEngine {version}", version, None, missing=(
            "installed, but Cura's machine definitions (fdmprinter.def.json, Debian package "
            "cura) were not found; pass --cura-definitions DIR"))
    env = dict(os.environ, CURA_ENGINE_SEARCH_PATH=os.pathsep.join(str(d) for d in dirs))

    def command(stls: list[Path], out: Path, job: CompiledJob) -> list[str]:
        # CuraEngine takes mesh coordinates as relative to the bed's centre; the shift
        # puts the tablets back where doseprint places them. Filament diameter is an
        # extruder setting, hence -e0; the settings after each -l are that mesh's.
        bed_x, bed_y = job.printer.bed_mm
        argv = [exe, "slice", "-j", str(CURA_DEF),
                "-s", f"machine_width={bed_x:g}", "-s", f"machine_depth={bed_y:g}",
                "-e0", "-s", f"material_diameter={job.printer.filament_diameter_mm:g}"]
        for stl in stls:
            argv += ["-l", str(stl), "-s", f"mesh_position_x={-bed_x / 2:g}",
                     "-s", f"mesh_position_y={-bed_y / 2:g}"]
        return [*argv, "-o", str(out)]

    return Tool(f"CuraEngine {version}", version, command, env)


# ---------------------------------------------------------------- the run


def bench_case(case: Case, lib: Library, tools: Sequence[Tool], runs: int,
               folder: Path) -> tuple[int, dict[str, Timing]]:
    """Time every tool on one case; returns the number of tablets and the timings."""
    try:
        sliced, whole, compiled = time_compile(case, lib, runs)
    except Exception as exc:  # one broken case must not hide the others
        kind = "" if isinstance(exc, DoseprintError) else f"{type(exc).__name__}: "
        note = f"compile failed: {kind}{exc}".replace("\n", " ")
        failed = {SLICE: Timing([], [], note=note), COMPILE: Timing([], [], note=note)}
        return 0, failed | {t.name: Timing([], [], note=t.missing or "no meshes: " + note)
                            for t in tools}
    results = {SLICE: sliced, COMPILE: whole}
    stls = tablet_stls(compiled, folder, case.key)
    for tool in tools:
        if tool.command is None:
            results[tool.name] = Timing([], [], note=tool.missing)
            continue
        out = folder / f"{case.key}-{tool.name.split()[0].lower()}.gcode"
        results[tool.name] = time_process(runs, tool.command(stls, out, compiled), out,
                                          tool.env)
    return len(compiled.tablets), results


def seconds(t: Timing) -> str:
    return f"{t.wall:.2f}" if t.wall_s else "—"


def split_note(t: Timing) -> str:
    """The median seconds of the slicing stage's two parts."""
    if not t.parts:
        return t.note
    plan = statistics.median(p["plan"] for p in t.parts)
    render = statistics.median(p["render"] for p in t.parts)
    return f"toolpaths {plan:.2f} s + G-code {render:.2f} s"


def print_tables(rows: list[tuple[Case, int, dict[str, Timing]]], names: list[str],
                 runs: int) -> None:
    print(f"\nWall-clock seconds, median of {runs}:\n")
    print("| case | tablets | " + " | ".join(names) + " |")
    print("| --- | --- |" + " --- |" * len(names))
    for case, tablets, res in rows:
        print(f"| {case.label} | {tablets} | "
              + " | ".join(seconds(res[n]) for n in names) + " |")

    print("\nDetails (CPU = user + system seconds, all threads; moves and net filament read "
          "back from each G-code with doseprint's reader, primes and purges included):\n")
    print("| case | tool | wall s | CPU s | moves | filament mm | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case, _tablets, res in rows:
        for name in names:
            t = res[name]
            if not t.wall_s:
                print(f"| {case.key} | {name} | — | — | — | — | {t.note} |")
                continue
            print(f"| {case.key} | {name} | {t.wall:.2f} | {t.cpu:.2f} | {t.moves:,} | "
                  f"{t.filament_mm:,.1f} | {split_note(t)} |")


def profile_slicing(lib: Library, top: int) -> None:
    """cProfile over the slicing stage of one compile of the 28-tablet plate."""
    case = next(c for c in CASES if c.key == "taper")
    profiler = cProfile.Profile()

    def switch(message: str) -> None:
        if message == SLICE_START:
            profiler.enable()
        elif message == SLICE_END:
            profiler.disable()

    marks = Marks(on_mark=switch)
    compile_prescription(str(case.rx), case.printer, library=lib, progress=marks)
    print(f"{case.label}, slicing stage under cProfile (slower than a plain run): "
          f"toolpaths {marks.span(SLICE_START, RENDER_START)[0]:.2f} s, "
          f"G-code {marks.span(RENDER_START, SLICE_END)[0]:.2f} s")
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\n-- top {top} by {order} --")
        print(buffer.getvalue().split("\n\n", 1)[-1].rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--case", action="append", choices=[c.key for c in CASES],
                        help="run only this case (repeatable)")
    parser.add_argument("--cura-definitions", metavar="DIR",
                        help="folder holding Cura's fdmprinter.def.json")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the STL and G-code files in DIR")
    parser.add_argument("--profile", action="store_true",
                        help="profile doseprint's slicing of the 28-tablet plate instead")
    parser.add_argument("--top", type=int, default=20, help="functions shown by --profile")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    lib = load_library()
    if args.profile:
        profile_slicing(lib, args.top)
        return
    tools = [prusa_tool(), cura_tool(args.cura_definitions)]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"trimesh {trimesh.__version__}")
    for tool in tools:
        print(f"{tool.name}: {tool.missing or 'found'}")
    names = [SLICE, COMPILE, *(t.name for t in tools)]
    cases = [c for c in CASES if not args.case or c.key in args.case]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for case in cases:
            print(f"... {case.label}", file=sys.stderr, flush=True)
            tablets, res = bench_case(case, lib, tools, args.runs, folder)
            print("    " + ", ".join(f"{n} {seconds(res[n])} s" for n in names),
                  file=sys.stderr, flush=True)
            rows.append((case, tablets, res))
    print_tables(rows, names, args.runs)


if __name__ == "__main__":
    main()
