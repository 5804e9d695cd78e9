"""The pipeline's layering (docs/architecture.md, "Layers"): every import in doseprint runs
down the pipeline or sideways within a stage, never back up it.

The imports are read from the source with :mod:`ast` (all of them: at module level, inside
functions and under ``TYPE_CHECKING``), so an import added anywhere is checked without
running it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "doseprint"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "typed", "errors", "tolerances"),
    ("models", "library"),
    ("geometry",),
    ("release",),
    ("design",),
    ("slicer",),
    ("gcode",),
    ("job",),
    ("comms", "records"),
    ("report",),
    ("compile", "printing", "dispensing"),
    ("cli", "__main__"),
)
"""Stages from the bottom up, each named by its package or top-level module (``__init__``:
``doseprint`` itself, which holds the version). A module may import from its own stage
and from any below it. ``job`` holds the job folder's values and files (the manifest, its
reading and writing, the dose check) and the prepare step; ``report`` (the clinician's
preview and its still) reads the manifest; ``compile`` runs the whole pipeline, preview
included, and ``printing`` streams a job and records it: both orchestrate the stages below them;
``dispensing`` holds the checks where a job meets a patient (approved formulations, good
lots), which ``printing`` and the CLI call."""

KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Stages of one layer that import each other (none: the flow calibration, which writes
and checks its own calibration job, is part of the job stage, ``job/flow_calibration.py``)."""


@dataclass(frozen=True)
class Import:
    """One import of a doseprint module by another, and where it is written."""

    importer: str
    imported: str
    where: str


def _is_module(name: str, src: Path) -> bool:
    path = src.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path, src: Path) -> Iterator[Import]:
    """Every import of a doseprint module in one source file: relative ones resolved, and
    ``from package import module`` taken as an import of the module."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        package = parts
    else:
        package = parts[:-1]
    name = ".".join(parts)
    where = path.relative_to(src / PACKAGE).as_posix()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            targets = [f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}", src)
                       else module for alias in node.names]
        for target in dict.fromkeys(targets):
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield Import(name, target, f"{where}:{node.lineno}")


def stage_of(module: str) -> str:
    """The stage a module belongs to: its package or top-level module under doseprint."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def all_imports(src: Path) -> list[Import]:
    return [imp for path in sorted((src / PACKAGE).rglob("*.py"))
            for imp in imports_of(path, src)]


def level_of(stage: str, layers: Sequence[tuple[str, ...]]) -> int:
    for level, names in enumerate(layers):
        if stage in names:
            return level
    raise KeyError(stage)


def upward_imports(imports: Sequence[Import], layers: Sequence[tuple[str, ...]]) -> list[str]:
    """Each import that runs from a stage to one above it, described."""
    out = []
    for imp in imports:
        low, high = stage_of(imp.importer), stage_of(imp.imported)
        if level_of(high, layers) > level_of(low, layers):
            out.append(f"{imp.where}: {imp.importer} ({low}) imports {imp.imported} "
                       f"({high}, a later stage)")
    return out


def stage_cycles(imports: Sequence[Import]) -> set[frozenset[str]]:
    """Groups of stages that import each other, directly or round a loop (the strongly
    connected components of the stage graph with more than one stage)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        a, b = stage_of(imp.importer), stage_of(imp.imported)
        graph.setdefault(a, set())
        graph.setdefault(b, set())
        if a != b:
            graph[a].add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {stage: reach(stage) for stage in graph}
    return {frozenset({a} | {b for b in reachable[a] if a in reachable[b]})
            for a in graph if any(a in reachable[b] for b in reachable[a])}


def stages_in_source(src: Path) -> set[str]:
    root = src / PACKAGE
    stages = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    stages |= {p.stem for p in root.glob("*.py")}
    return stages


# The package itself


def test_no_import_runs_back_up_the_pipeline() -> None:
    bad = upward_imports(all_imports(SRC), LAYERS)
    assert not bad, "imports against the pipeline's order:\n  " + "\n  ".join(bad)


def test_every_stage_has_a_place_in_the_layers() -> None:
    placed = {name for names in LAYERS for name in names}
    found = stages_in_source(SRC)
    assert found - placed == set(), "give these a layer in LAYERS"
    assert placed - found == set(), "these are in LAYERS but not in src/doseprint"


def test_no_stages_import_each_other_but_the_known_ones() -> None:
    assert stage_cycles(all_imports(SRC)) == set(KNOWN_CYCLES)


def test_the_walk_sees_imports_everywhere_in_a_module() -> None:
    # A function-local import and one under TYPE_CHECKING count like any other.
    got = {(i.importer, i.imported) for i in all_imports(SRC)}
    assert ("doseprint.cli.compile", "doseprint.compile") in got
    assert ("doseprint.report.preview", "doseprint.geometry.tablet") in got


# The checks themselves, on a made-up package


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"__init__.py": "", **files}.items():
        path = tmp_path / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("text", [
    "from doseprint.design.values import TabletDesign\n",
    "import doseprint.design.values\n",
    "from ..design import values\n",
    "def f():\n    from doseprint.design.values import TabletDesign\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    from doseprint.design.values import TabletDesign\n",
])
def test_an_import_from_a_later_stage_is_found(tmp_path: Path, text: str) -> None:
    src = _package(tmp_path, {"geometry/__init__.py": "", "geometry/mesh.py": text,
                              "design/__init__.py": "", "design/values.py": ""})
    bad = upward_imports(all_imports(src), (("__init__",), ("geometry",), ("design",)))
    assert len(bad) == 1
    assert "doseprint.geometry.mesh (geometry) imports doseprint.design" in bad[0]
    assert bad[0].startswith("geometry/mesh.py:")


def test_imports_down_and_sideways_are_allowed(tmp_path: Path) -> None:
    src = _package(tmp_path, {
        "typed.py": "", "geometry/__init__.py": "",
        "geometry/mesh.py": "from doseprint.geometry import sized\nfrom doseprint import typed\n",
        "geometry/sized.py": "from . import mesh\n",
    })
    layers = (("__init__", "typed"), ("geometry",))
    assert upward_imports(all_imports(src), layers) == []


def test_stages_that_import_each_other_are_found(tmp_path: Path) -> None:
    src = _package(tmp_path, {
        "a.py": "import doseprint.b\n", "b.py": "from doseprint import c\n",
        "c.py": "from doseprint.a import x\n", "d.py": "import doseprint.a\n",
    })
    assert stage_cycles(all_imports(src)) == {frozenset({"a", "b", "c"})}


def test_a_stage_without_a_layer_is_found(tmp_path: Path) -> None:
    src = _package(tmp_path, {"queue/__init__.py": "", "typed.py": ""})
    assert stages_in_source(src) == {"__init__", "queue", "typed"}
    with pytest.raises(KeyError):
        level_of("queue", (("__init__", "typed"),))
