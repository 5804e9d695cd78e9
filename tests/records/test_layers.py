"""The modules of records/ import only the ones below them (the order of the package's
docstring and of docs/architecture.md), so none runs back up."""

from __future__ import annotations

import ast
from pathlib import Path

import doseprint.records

ORDER = (
    "states",
    "values",
    "chain",
    "signing",
    "policy",
    "liveness",
    "location",
    "dialect",
    "site",
    "people",
    "content",
    "lots",
    "approvals",
    "prescriptions",
    "store",
    "accounts",
    "anchor",
    "qc",
    "batch_report",
    "batch_report_pdf",
    "export",
)
PACKAGE = Path(doseprint.records.__file__).parent


def records_imports(name: str) -> set[str]:
    """The records modules that ``records/<name>.py`` imports, at any depth of its code."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["doseprint", "records"]:
                if len(parts) > 2:
                    found.add(parts[2])
                else:  # from doseprint.records import store
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["doseprint", "records"] and len(parts) > 2:
                    found.add(parts[2])
    return found


def test_every_module_is_in_the_order() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)
    assert all(f"records.{name}`" in (doseprint.records.__doc__ or "") for name in ORDER)


def test_imports_run_only_downwards() -> None:
    for position, name in enumerate(ORDER):
        upward = records_imports(name) - set(ORDER[:position])
        assert not upward, f"records/{name}.py imports {sorted(upward)} from above it"
