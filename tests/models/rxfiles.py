"""Small prescriptions as dicts, and writers for them as TOML or JSON.

``tomllib`` only reads, so :func:`toml_dumps` writes the little TOML the tests need:
scalars (with ``nan``/``inf``), lists, inline tables, ``[table]`` and ``[[array]]``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

BASE_RX: dict[str, Any] = {
    "schema": "doseprint.prescription/1",
    "id": "RX-TEST-0001",
    "patient": "PT-7F3A",
    "actives": [
        {"api": "theophylline", "dose_mg": 125.0, "release": "sustained", "t80_h": 8.0},
    ],
    "dispense": {"units": 3},
}
"""A valid one-API sustained prescription of three tablets."""


def base_rx() -> dict[str, Any]:
    """A fresh deep copy of :data:`BASE_RX`, for a test to break."""
    return copy.deepcopy(BASE_RX)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def _table_body(table: dict[str, Any], name: str, lines: list[str]) -> None:
    for k, v in table.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{json.dumps(k)} = {_value(v)}")
    for k, v in table.items():
        child = f"{name}.{json.dumps(k)}" if name else json.dumps(k)
        if isinstance(v, dict):
            lines.append(f"\n[{child}]")
            _table_body(v, child, lines)
        elif _is_table_array(v):
            for item in v:
                lines.append(f"\n[[{child}]]")
                _table_body(item, child, lines)


def toml_dumps(data: dict[str, Any]) -> str:
    """``data`` as TOML text (keys quoted, so any key a test invents is written)."""
    lines: list[str] = []
    _table_body(data, "", lines)
    return "\n".join(lines) + "\n"


def write_rx(folder: Path, data: dict[str, Any], fmt: str = "toml", name: str = "rx") -> Path:
    """Write ``data`` as ``folder/<name>.<fmt>`` (``toml`` or ``json``); return the path."""
    path = folder / f"{name}.{fmt}"
    if fmt == "toml":
        path.write_text(toml_dumps(data), encoding="utf-8")
    elif fmt == "json":
        # Python writes a non-finite float as NaN/Infinity, which JSON lacks: the reader
        # must still refuse it naming the key.
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    else:
        raise ValueError(fmt)
    return path



DROP = object()
"""Value for :func:`edited` that deletes the key instead of setting it."""

Path_ = tuple[str | int, ...]
Edit = tuple[Path_, Any]


def edited(data: dict[str, Any], edits: list[Edit]) -> dict[str, Any]:
    """A copy of ``data`` with each ``(path, value)`` applied: ``("actives", 0, "dose_mg")``
    sets that key, :data:`DROP` deletes it, an index one past a list's end appends."""
    out = copy.deepcopy(data)
    for path, value in edits:
        parent: Any = out
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if value is DROP:
            del parent[last]
        elif isinstance(parent, list) and last == len(parent):
            parent.append(copy.deepcopy(value))
        else:
            parent[last] = copy.deepcopy(value)
    return out
